import ScryKernel

/// Empties the rings of a session into the actions: the per-CPU perf rings (samples and task
/// records) and the BPF ring. When order is observable (some route's samples carry time and
/// there is more than one ring), records are staged and merged across rings by time first.
final class RingDrain {
  let dispatcher: RecordDispatcher
  private let perfRings: [PerfRing]
  /// Per perf ring: where the time sits, counted from the end, in its COMM and FORK records (which
  /// carry the owner's sample id fields, `sample_id_all`); nil when its samples carry no time.
  private let taskRecordTimeFromEnd: [Int?]
  private let bpfRing: BPFRing?
  /// One stage per perf ring, then one for the BPF ring.
  let merge: CrossCPUMerge
  /// Some block's output order is visible (its samples carry time): merge the rings by timestamp.
  let mergesByTime: Bool
  /// When the previous drain started: every sample stamped before it has been published by now.
  private var previousDrainStart: UInt64 = 0
  /// PERF_RECORD_LOST totals of the perf rings.
  private(set) var perfLost: UInt64 = 0

  /// `taskRecordTimeFromEnd` has one entry per perf ring; tests pass no rings and as many entries
  /// as stages they feed with `take(_:stage:)`.
  init(dispatcher: RecordDispatcher, perfRings: [PerfRing], taskRecordTimeFromEnd: [Int?], bpfRing: BPFRing?) {
    self.dispatcher = dispatcher
    self.perfRings = perfRings
    self.taskRecordTimeFromEnd = taskRecordTimeFromEnd
    self.bpfRing = bpfRing
    let stageCount = taskRecordTimeFromEnd.count + (bpfRing == nil ? 0 : 1)
    merge = CrossCPUMerge(stageCount: stageCount)
    // Only perf samples need the merge: when every timed sample comes through the BPF ring (in
    // event order, its task named at the event), the perf rings carry task records alone.
    mergesByTime = stageCount > 1 && dispatcher.perfRoutesCarryTime
  }

  /// Runs the action of every sample waiting in the rings. A sample stamped after the previous
  /// drain began may still have an earlier sample on another CPU that is not yet visible, so when
  /// merging it waits for the next drain; `final` (at detach) runs everything.
  func drain(final: Bool = false) {
    let cutoff = final ? UInt64.max : previousDrainStart
    previousDrainStart = Clock.monotonicNanoseconds()
    let merging = mergesByTime
    for (index, ring) in perfRings.enumerated() {
      let stage = merge.stages[index]
      let taskTimeFromEnd = taskRecordTimeFromEnd[index]
      ring.drain { record in take(record, merging: merging, into: stage, taskTimeFromEnd: taskTimeFromEnd) }
    }
    if let bpfRing {
      let stage = merge.stages[perfRings.count]
      bpfRing.drain { body in take(sample: body, merging: merging, into: stage) }
    }
    finish(upTo: cutoff)
  }

  /// One record of perf ring `index`, as a drain hands it over (for tests: recorded data).
  func take(_ record: PerfRecord, stage index: Int) {
    take(record, merging: mergesByTime, into: merge.stages[index], taskTimeFromEnd: taskRecordTimeFromEnd[index])
  }

  /// One record of a perf ring: a sample, a task record, or a count of lost samples.
  @inline(__always)
  private func take(_ record: PerfRecord, merging: Bool, into stage: CrossCPUMerge.Stage, taskTimeFromEnd: Int?) {
    if record.type == PerfRecordType.comm || record.type == PerfRecordType.fork {
      var time: UInt64 = 0
      if let fromEnd = taskTimeFromEnd, record.body.count >= fromEnd {
        time = record.body.loadUnaligned(fromByteOffset: record.body.count - fromEnd, as: UInt64.self)
        // A task record merged by its time names the samples before it by the old name.
        if merging {
          let marker = record.type == PerfRecordType.comm ? CrossCPUMerge.commMarker : CrossCPUMerge.forkMarker
          stage.append(time: time, route: marker, body: record.body)
          return
        }
      }
      dispatcher.apply(taskRecord: record, time: time)
      return
    }
    switch record.type {
    case PerfRecordType.sample:
      take(sample: record.body, merging: merging, into: stage)
    // EXIT records are not acted on: an exited task keeps its name, since samples still
    // waiting in other rings may name it, until its id is reused (a later FORK or COMM).
    case PerfRecordType.lost, PerfRecordType.lostSamples:
      if let lost = PerfLostRecord(record) { perfLost &+= lost.lost }
    case PerfRecordType.mmap2:
      if let mapped = PerfMappingRecord(record) { StackTable.shared.add(mapped.mapping, to: mapped.pid) }
    default:
      break
    }
  }

  /// A sample body (perf's or the BPF ring's, laid out alike): run now, or staged for the merge.
  @inline(__always)
  private func take(sample body: UnsafeRawBufferPointer, merging: Bool, into stage: CrossCPUMerge.Stage) {
    guard let route = dispatcher.route(ofID: body.count >= 8 ? body.loadUnaligned(as: UInt64.self) : 0) else { return }
    if merging, let offset = dispatcher.routes[route].timeOffset, offset + 8 <= body.count {
      stage.append(time: body.loadUnaligned(fromByteOffset: offset, as: UInt64.self), route: route, body: body)
    } else {
      dispatcher.dispatch(body, route: route)
    }
  }

  /// Runs what was staged up to `cutoff` in time order, and forgets the last sample's pointers.
  /// A drain a signal stopped (`CaughtSignals.arePending`) leaves records unread in some ring,
  /// maybe older than what is staged: the staged records then wait for the next drain.
  func finish(upTo cutoff: UInt64) {
    if mergesByTime && !CaughtSignals.arePending { dispatchMerged(upTo: cutoff) }
    dispatcher.clearEvent()
  }

  /// Drops every sample still in the rings or staged, running no action, and returns how many
  /// there were: what a stop discarded. Task records are dropped too; counts of lost samples are
  /// still added up.
  func discardRemaining() -> UInt64 {
    var discarded: UInt64 = 0
    for ring in perfRings {
      ring.drain(yieldingToSignals: false) { record in
        switch record.type {
        case PerfRecordType.sample:
          if isRouted(record.body) { discarded &+= 1 }
        case PerfRecordType.lost, PerfRecordType.lostSamples:
          if let lost = PerfLostRecord(record) { perfLost &+= lost.lost }
        default:
          break
        }
      }
    }
    bpfRing?.drain(yieldingToSignals: false) { body in if isRouted(body) { discarded &+= 1 } }
    for stage in merge.stages {
      discarded &+= UInt64(stage.entries[stage.next...].lazy.filter { $0.route >= 0 }.count)
      stage.next = stage.entries.count
    }
    merge.compact()
    dispatcher.clearEvent()
    return discarded
  }

  private func isRouted(_ body: UnsafeRawBufferPointer) -> Bool {
    dispatcher.route(ofID: body.count >= 8 ? body.loadUnaligned(as: UInt64.self) : 0) != nil
  }

  /// Runs the staged records of every ring stamped up to `cutoff`, oldest first, and keeps the
  /// rest for the next drain.
  private func dispatchMerged(upTo cutoff: UInt64) {
    // A caught signal stops it between two actions, as it stops the ring drains.
    while !CaughtSignals.arePending, let best = merge.oldestStage(upTo: cutoff) {
      let stage = merge.stages[best]
      let entry = stage.entries[stage.next]
      stage.next += 1
      stage.bytes.withUnsafeBytes {
        let body = UnsafeRawBufferPointer(rebasing: $0[entry.offset..<entry.offset + entry.length])
        if entry.route < 0 {
          let type = entry.route == CrossCPUMerge.commMarker ? PerfRecordType.comm : PerfRecordType.fork
          dispatcher.apply(taskRecord: PerfRecord(type: type, misc: 0, body: body), time: entry.time)
        } else {
          dispatcher.dispatch(body, route: entry.route)
        }
      }
    }
    merge.compact()
  }
}
