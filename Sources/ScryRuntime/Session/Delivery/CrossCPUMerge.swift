/// Samples copied out of the rings during a drain, merged by their CLOCK_MONOTONIC time before
/// their actions run, when order is observable. One stage per ring; each ring is already in
/// time order, so the merge only picks the oldest head among the stages.
///
/// Buffers keep their capacity between drains, so the steady state allocates nothing.
final class CrossCPUMerge {
  /// One staged sample or task record: its time, its route (or a task-record marker), and where
  /// its bytes sit in the stage's buffer.
  struct Entry {
    var time: UInt64
    var route: Int
    var offset: Int
    var length: Int
  }

  /// The staged records of one ring.
  final class Stage {
    var bytes: [UInt8] = []
    var entries: [Entry] = []
    var next = 0
    init() { bytes.reserveCapacity(1 << 16) }

    /// Copies `body` in, to run at `time` along `route`.
    @inline(__always)
    func append(time: UInt64, route: Int, body: UnsafeRawBufferPointer) {
      entries.append(Entry(time: time, route: route, offset: bytes.count, length: body.count))
      bytes.append(contentsOf: body)
    }

    /// Drops what was taken, keeping the rest for the next drain.
    func compact() {
      guard next > 0 else { return }
      let keptFrom = next < entries.count ? entries[next].offset : bytes.count
      entries.removeSubrange(0..<next)
      bytes.removeSubrange(0..<keptFrom)
      for i in entries.indices { entries[i].offset -= keptFrom }
      next = 0
    }
  }

  /// Staged task records, told from samples by these route numbers.
  static let commMarker = -1
  static let forkMarker = -2

  let stages: [Stage]

  init(stageCount: Int) {
    stages = (0..<stageCount).map { _ in Stage() }
  }

  /// The stage whose next entry is the oldest stamped up to `cutoff`, or nil when none is.
  func oldestStage(upTo cutoff: UInt64) -> Int? {
    var best = -1
    var bestTime = UInt64.max
    for (index, stage) in stages.enumerated() where stage.next < stage.entries.count {
      let time = stage.entries[stage.next].time
      if time <= cutoff && (best < 0 || time < bestTime) {
        best = index
        bestTime = time
      }
    }
    return best >= 0 ? best : nil
  }

  /// Keeps, in every stage, only what was not taken.
  func compact() {
    for stage in stages { stage.compact() }
  }
}
