import ScryKernel
import ScryPlan

/// Perf samples into one ring per CPU, shared by every sampled event on that CPU. Each ring is
/// owned by a `bpf-output` event that samples nothing and reports task names (COMM, FORK) stamped
/// with their time, so `comm` stays right for processes that exec, even when an exec and the fork
/// before it land in different CPUs' rings; the sampled events write into its ring and pay for no
/// field they do not use.
final class PerfRingDelivery: EventDelivery {
  private(set) var rings: [PerfRing] = []
  /// The sampled events and the task-record carriers, whose own counts of records the full ring
  /// refused (PERF_FORMAT_LOST) are exact: PERF_RECORD_LOST comes only when a later record fits.
  private var sampled: [PerfEvent] = []
  private var carriers: [PerfEvent] = []
  /// Per ring: where the time sits, counted from the end, in its task records (see `RingDrain`).
  private(set) var taskRecordTimeFromEnd: [Int?] = []
  private var ringOfCPU: [Int32: PerfRing] = [:]
  /// Whether any event samples into the rings (else they carry task records alone, which wait
  /// for their watermark: nothing reads them before a print).
  private(set) var carriesSamples = false

  func attach(_ request: AttachRequest, path: DeliveryPath, in context: AttachContext) throws -> Bool {
    let attachment = request.attachment
    var options = request.options
    options.readLostCount = true
    for target in request.targets(cpus: context.cpus) {
      let event = try ProbeEvents.open(request, pid: target.pid, cpu: target.cpu, options: &options, in: context)
      context.events.append(event)
      sampled.append(event)
      var skipPredicate = false
      if let filter = attachment.kernelFilter {
        // A filter the kernel refuses leaves the predicate to user space: slower, never wrong,
        // so the refusal is not an error.
        if (try? event.setFilter(filter)) != nil { skipPredicate = attachment.kernelFilterIsWholePredicate }
      }
      try route(event, cpu: target.cpu, to: attachment, sampleType: options.sampleType, skipPredicate: skipPredicate, in: context)
    }
    return true
  }

  /// Opens the ring owners of every CPU (before any sampled event).
  func openTaskRecordCarriers(in context: AttachContext) throws {
    for cpu in context.cpus where ringOfCPU[cpu] == nil {
      var options = PerfEventOptions()
      options.sampleType = [.time]
      options.recordComm = true
      options.recordTasks = true
      // Executable mappings as they are made, so user stacks of short-lived processes get names.
      options.recordMappings = context.session.plan.blocks.contains(where: \.readsUserMappings)
      options.wakeupWatermarkBytes = UInt32(clamping: context.ringPages * 4096 / 4)
      options.readLostCount = true
      let carrier = try PerfEvent.software(named: "bpf-output", description: "task records", cpu: cpu, pid: -1, options: options)
      context.events.append(carrier)
      carriers.append(carrier)
      try share(ringOf: cpu, with: carrier, sampleType: options.sampleType, in: context)
    }
  }

  /// Sends `event`'s samples into its CPU's ring and routes them to the attachment's block.
  func route(
    _ event: PerfEvent, cpu: Int32, to attachment: Attachment, sampleType: PerfSampleType, skipPredicate: Bool,
    in context: AttachContext
  ) throws {
    try share(ringOf: cpu, with: event, sampleType: sampleType, in: context)
    carriesSamples = true
    context.addRoute(id: try event.kernelID(), to: attachment, sampleType: sampleType, skipPredicate: skipPredicate)
  }

  /// Points `event` at its CPU's ring, or makes it the ring's owner when it is the first.
  private func share(ringOf cpu: Int32, with event: PerfEvent, sampleType: PerfSampleType, in context: AttachContext) throws {
    if let ring = ringOfCPU[cpu] {
      try event.setOutput(to: ring.event)
      return
    }
    let ring = try PerfRing(event: event, dataPages: context.ringPages)
    rings.append(ring)
    // Task records end with the owner's sample id fields: TIME, then CPU, then IDENTIFIER.
    taskRecordTimeFromEnd.append(
      sampleType.contains(.time) ? 8 + (sampleType.contains(.cpu) ? 8 : 0) + (sampleType.contains(.identifier) ? 8 : 0) : nil)
    ringOfCPU[cpu] = ring
  }

  /// Counts `event`'s lost samples with the sampled events' (a BPF program's output event).
  func countLosses(of event: PerfEvent) { sampled.append(event) }

  /// Samples the rings had no room for, over every sampled event.
  var lostSamples: UInt64 { sampled.reduce(0) { $0 &+ $1.readCounts().lost } }

  /// Task records (COMM, FORK, MMAP2) the rings had no room for: names may be stale after them.
  var lostTaskRecords: UInt64 { carriers.reduce(0) { $0 &+ $1.readCounts().lost } }

  func release() {
    rings.removeAll()
    ringOfCPU.removeAll()
    sampled.removeAll()
    carriers.removeAll()
  }
}
