import Glibc
import ScryLanguage
import ScryPlan

/// The maps and the run's own counters as plain values, copied in one go on the thread that runs the
/// actions, so an exporter renders a consistent picture (no histogram half-updated) while events
/// keep flowing. Exporters (ScryExport) see only these values, never the language or the kernel.
public struct MetricsSnapshot: Sendable {
  public var maps: [MapSnapshot]
  public var run: RunStatistics

  public init(maps: [MapSnapshot], run: RunStatistics) {
    self.maps = maps
    self.run = run
  }
}

/// The session's own health, as counters and gauges.
public struct RunStatistics: Sendable {
  public var eventsRead: UInt64 = 0
  public var eventsLost: UInt64 = 0
  public var failedReads: UInt64 = 0
  public var probesAttached = 0
  /// Inserts dropped because their map was full, by map name.
  public var droppedInserts: [(map: String, count: UInt64)] = []

  /// Resident memory of the process, from /proc/self/statm.
  public var residentBytes: UInt64 = 0

  public init() {}
}

/// One map as a metric family.
public struct MapSnapshot: Sendable {
  public enum Kind: Sendable, Equatable {
    /// count() and sum(): only grow (a sum of negatives aside, which the exporter cannot know).
    case counter
    /// Any other integer value, min() and max().
    case gauge
    /// hist() and lhist(): `upperBounds` are the inclusive upper bounds of every bucket but the
    /// last, which is open (+Inf).
    case histogram(upperBounds: [Int64])
    /// avg() and stats(): a sum and a count.
    case summary
  }

  public struct Series: Sendable {
    /// One text per key component.
    public var labels: [String]
    /// Counter or gauge value.
    public var value: Int64 = 0
    /// Histogram buckets, not cumulative, one per bound plus the open one.
    public var buckets: [UInt64] = []
    public var sum: Int64 = 0
    public var count: UInt64 = 0
  }

  /// `@name` as in the script.
  public var name: String
  /// Headers of the probe blocks that write the map.
  public var writers: [String]
  public var keyCount: Int
  public var kind: Kind
  public var series: [Series]
}

extension Session {
  /// Copies every exportable map and the run's counters; maps whose values or keys have no metric
  /// form (strings, stacks) are left out. Runs on the actions' thread, between events.
  func metricsSnapshot(run: RunStatistics) -> MetricsSnapshot {
    machine.foldCounters?(machine)
    var snapshots: [MapSnapshot] = []
    let writers = MapWriters.blocks(plan)
    for (index, map) in maps.enumerated() {
      guard !map.info.isInternal, let kind = MetricsSnapshot.kind(of: map.info),
        !map.info.keyTypes.contains(where: { if case .stack = $0 { return true } else { return false } })
      else { continue }
      var series: [MapSnapshot.Series] = []
      series.reserveCapacity(map.count)
      let text = OutputBuffer(capturing: ())
      map.forEach { key, value in
        var labels: [String] = []
        var offset = 0
        for type in map.info.keyTypes {
          text.reset()
          ValueFormatter.appendText(key + offset, type: type, to: text, stackIndent: 0, inKey: true)
          labels.append(text.capturedString)
          offset += type.byteSize
        }
        if let entry = MetricsSnapshot.series(labels: labels, value: UnsafeRawPointer(value), info: map.info) {
          series.append(entry)
        }
      }
      let headers = writers[index].map { plan.actions[$0].header }
      snapshots.append(
        MapSnapshot(name: map.info.name, writers: headers, keyCount: map.info.keyTypes.count, kind: kind, series: series))
    }
    var run = run
    run.probesAttached = plan.attachments.count
    run.droppedInserts = maps.map { ($0.info.name, UInt64($0.droppedInserts)) }
    return MetricsSnapshot(maps: snapshots, run: run)
  }
}

extension MetricsSnapshot {
  static func kind(of info: MapInfo) -> MapSnapshot.Kind? {
    switch info.valueType {
    case .aggregate(.count), .aggregate(.sum): return .counter
    case .aggregate(.min), .aggregate(.max), .integer, .boolean: return .gauge
    case .aggregate(.avg), .aggregate(.stats): return .summary
    case .aggregate(.hist):
      // bpftrace's buckets: negatives, 0, then [2^k, 2^(k+1)); the last one also takes every
      // value from 2^31 up (see Aggregation.histBucket), so it is the open bucket. Negatives are
      // folded into `le="0"` (see `foldsNegatives`).
      var bounds: [Int64] = [0]
      for k in 0..<31 { bounds.append((Int64(1) << (k + 1)) - 1) }
      return .histogram(upperBounds: bounds)
    case .aggregate(.lhist(let lo, let hi, let step)):
      // Below min, one per step ([lo + i*step, lo + (i+1)*step)), then at or above max.
      let steps = Int((hi - lo) / step)
      let bounds = (0...steps).map { lo + Int64($0) * step - 1 }
      return .histogram(upperBounds: lo == 0 ? Array(bounds.dropFirst()) : bounds)
    default: return nil
    }
  }

  /// A histogram whose lowest bucket holds only negatives (hist, and lhist from 0) exports it
  /// merged into the next one: cumulative counts mean the same, and OpenMetrics lets a histogram
  /// with a negative bound have no `_sum`.
  static func foldsNegatives(_ kind: AggregateKind) -> Bool {
    switch kind {
    case .hist: return true
    case .lhist(let lo, _, _): return lo == 0
    default: return false
    }
  }

  static func series(labels: [String], value: UnsafeRawPointer, info: MapInfo) -> MapSnapshot.Series? {
    var series = MapSnapshot.Series(labels: labels)
    let word = { (i: Int) in value.load(fromByteOffset: i * 8, as: UInt64.self) }
    switch info.valueType {
    case .aggregate(.min), .aggregate(.max):
      // An unset min or max has no value yet (bpftrace does not print it either).
      guard word(1) != 0 else { return nil }
      series.value = Int64(bitPattern: word(0))
    case .aggregate(.avg), .aggregate(.stats):
      series.sum = Int64(bitPattern: word(0))
      series.count = word(1)
    case .aggregate(let kind) where kind.isHistogram:
      let buckets = HistogramPrinter.bucketCount(kind)
      series.buckets = (0..<buckets).map(word)
      if foldsNegatives(kind) {
        series.buckets[1] &+= series.buckets[0]
        series.buckets.removeFirst()
      }
      series.count = series.buckets.reduce(0, &+)
      series.sum = Int64(bitPattern: word(Aggregation.histogramSumWord(kind)))
    default:
      series.value = Int64(bitPattern: word(0))
    }
    return series
  }
}

extension AggregateKind {
  var isHistogram: Bool {
    switch self {
    case .hist, .lhist: return true
    default: return false
    }
  }
}

/// Which probe blocks write which map, for `# HELP`.
enum MapWriters {
  static func blocks(_ plan: Plan) -> [[Int]] {
    var writers = [[Int]](repeating: [], count: plan.maps.count)
    for (block, action) in plan.actions.enumerated() {
      var written = Set<Int>()
      collect(action.body, into: &written)
      for map in written.sorted() where map < writers.count { writers[map].append(block) }
    }
    return writers
  }

  static func collect(_ statements: [IRStatement], into written: inout Set<Int>) {
    for statement in statements {
      switch statement {
      case .mapStore(let map, _, _), .mapStoreBytes(let map, _, _), .aggregate(let map, _, _, _):
        written.insert(map)
      case .evaluate(.mapUpdate(let map, _, _, _, _)):
        written.insert(map)
      case .ifElse(_, let then, let otherwise):
        collect(then, into: &written)
        collect(otherwise ?? [], into: &written)
      case .loop(_, _, let body), .rangeLoop(_, _, _, let body), .mapLoop(_, _, let body, _), .block(let body):
        collect(body, into: &written)
      default: break
      }
    }
  }
}
