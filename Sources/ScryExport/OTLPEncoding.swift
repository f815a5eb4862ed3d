import Glibc
import ScryRuntime

/// A snapshot as an OTLP `ExportMetricsServiceRequest` in OTLP's JSON encoding (the protobuf
/// JSON mapping: 64-bit integers as strings, enums as numbers), which OTLP/HTTP accepts as
/// `application/json`. count() and sum() are cumulative monotonic sums, histograms explicit-bucket
/// histograms with the map's bounds, avg() and stats() summaries, everything else gauges.
struct OTLPEncoding {
  let exposition: Exposition
  let startNanoseconds: UInt64

  /// AGGREGATION_TEMPORALITY_CUMULATIVE.
  static let cumulative = 2

  static func nowNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  func json(_ snapshot: MetricsSnapshot, now: UInt64 = OTLPEncoding.nowNanoseconds()) -> String {
    var metrics: [String] = []
    let times = "\"startTimeUnixNano\":\"\(startNanoseconds)\",\"timeUnixNano\":\"\(now)\""
    for (map, name) in zip(snapshot.maps, exposition.familyNames(snapshot.maps)) {
      let labels = exposition.labels(of: map)
      let points = map.series.map { series -> String in
        let attributes = Self.attributes(labels, series.labels)
        switch map.kind {
        case .counter, .gauge:
          return "{\(attributes),\(times),\"asInt\":\"\(series.value)\"}"
        case .summary:
          return "{\(attributes),\(times),\"count\":\"\(series.count)\",\"sum\":\(series.sum)}"
        case .histogram(let bounds):
          let counts = series.buckets.map { "\"\($0)\"" }.joined(separator: ",")
          let limits = bounds.map { String($0) }.joined(separator: ",")
          return "{\(attributes),\(times),\"count\":\"\(series.count)\",\"sum\":\(series.sum),"
            + "\"bucketCounts\":[\(counts)],\"explicitBounds\":[\(limits)]}"
        }
      }.joined(separator: ",")
      let data: String
      switch map.kind {
      case .counter:
        data = "\"sum\":{\"aggregationTemporality\":\(Self.cumulative),\"isMonotonic\":true,\"dataPoints\":[\(points)]}"
      case .gauge: data = "\"gauge\":{\"dataPoints\":[\(points)]}"
      case .summary: data = "\"summary\":{\"dataPoints\":[\(points)]}"
      case .histogram:
        data = "\"histogram\":{\"aggregationTemporality\":\(Self.cumulative),\"dataPoints\":[\(points)]}"
      }
      metrics.append("{\"name\":\(Self.string(name)),\"description\":\(Self.string(Exposition.help(map))),\(data)}")
    }
    metrics.append(contentsOf: runMetrics(snapshot.run, times: times))
    return "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"scry\"}}]},"
      + "\"scopeMetrics\":[{\"scope\":{\"name\":\"scry\"},\"metrics\":[" + metrics.joined(separator: ",") + "]}]}]}"
  }

  func runMetrics(_ run: RunStatistics, times: String) -> [String] {
    func counter(_ name: String, _ points: [(attributes: String, value: UInt64)]) -> String {
      let data = points.map { "{\($0.attributes),\(times),\"asInt\":\"\($0.value)\"}" }.joined(separator: ",")
      return "{\"name\":\"\(name)\",\"sum\":{\"aggregationTemporality\":\(Self.cumulative),\"isMonotonic\":true,"
        + "\"dataPoints\":[\(data)]}}"
    }
    func counter(_ name: String, _ value: UInt64) -> String { counter(name, [("\"attributes\":[]", value)]) }
    func gauge(_ name: String, _ value: UInt64) -> String {
      "{\"name\":\"\(name)\",\"gauge\":{\"dataPoints\":[{\"attributes\":[],\(times),\"asInt\":\"\(value)\"}]}}"
    }
    return [
      counter("scry_events", run.eventsRead), counter("scry_lost_events", run.eventsLost),
      counter("scry_failed_reads", run.failedReads), gauge("scry_probes_attached", UInt64(run.probesAttached)),
      gauge("scry_rss_bytes", run.residentBytes),
      counter("scry_map_dropped_inserts", run.droppedInserts.map { (Self.attributes(["map"], [$0.map]), $0.count) }),
    ]
  }

  static func attributes(_ names: [String], _ values: [String]) -> String {
    let pairs = zip(names, values).map { "{\"key\":\(string($0)),\"value\":{\"stringValue\":\(string($1))}}" }
    return "\"attributes\":[" + pairs.joined(separator: ",") + "]"
  }

  /// A JSON string literal.
  static func string(_ text: String) -> String {
    var out = "\""
    for c in text.unicodeScalars {
      switch c {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if c.value < 0x20 {
          let hex = String(c.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(c)
        }
      }
    }
    return out + "\""
  }
}
