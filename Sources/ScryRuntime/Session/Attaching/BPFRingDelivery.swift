import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// System-wide tracepoints, software and timer events delivered by Scry's capture program into one
/// BPF ring for every CPU (see `CaptureProgram`), which counts what did not fit in `ringLost`. Refused (no BPF ring buffers in this kernel, or the
/// program refused): `attach` says so on stderr and returns false, and perf delivers the probe.
final class BPFRingDelivery: EventDelivery {
  private(set) var ring: BPFRing?
  private var ringLost: BPFMap?
  /// The ring could not be made: every later tracepoint goes through perf without trying again.
  private var isUnavailable = false

  /// 100 ms of records at the rate this kind of machine can make them, with room to spare:
  /// the ring is drained on the loop's clock, not woken per record.
  static let minimumRingBytes = 32 << 20

  func attach(_ request: AttachRequest, path: DeliveryPath, in context: AttachContext) throws -> Bool {
    guard case .bpfRing(let planned) = path else { return false }
    if attachThroughLink(planned, request, in: context) { return true }
    guard let (program, loaded) = try load(planned, for: request, in: context) else { return false }
    let probe = request.probe
    if case .probe = program.kind {
      // A probe made through the uprobe PMU: gone with its fd, whatever way Scry ends. Like a
      // tracepoint's, its program runs for every task on every CPU from one event.
      guard let dynamic = request.attachment.dynamicProbe, let path = dynamic.binaryPath else { return false }
      var counting = PerfEventOptions()
      counting.countingOnly = true
      let event: PerfEvent
      do {
        event = try PerfEvent.uprobe(
          path: path, fileOffset: dynamic.fileOffset, semaphoreOffset: dynamic.semaphoreOffset, isReturn: dynamic.isReturn, description: probe.name,
          cpu: context.cpus[0], pid: -1, options: counting)
      } catch {
        printToStandardError("WARNING: \(probe.name): made in tracefs instead of through the uprobe PMU: \(error)\n")
        return false
      }
      context.events.append(event)
      try event.attach(loaded)
    } else if program.kind == .tracepoint {
      let event = try PerfEvent.tracepoint(
        id: try context.tracepointID(of: probe), description: probe.name, cpu: -1, pid: getpid(), options: .programCarrier)
      context.events.append(event)
      try event.attach(loaded)
    } else {
      // A perf_event program runs on the overflows of the events it hangs on: one per CPU,
      // sampling at the probe's period or frequency, with no ring of their own.
      var options = request.options
      options.sampleType = []
      for target in request.targets(cpus: context.cpus) {
        let event = try ProbeEvents.open(request, pid: target.pid, cpu: target.cpu, options: &options, in: context)
        context.events.append(event)
        try event.attach(loaded)
      }
    }
    route(request, program, loaded, in: context)
    return true
  }

  /// A user probe's capture program on a `uprobe_multi` link (cheaper per hit than the uprobe
  /// PMU; see `UprobeLink`); false, silently, where the kernel has none, and the PMU takes it.
  private func attachThroughLink(_ planned: CaptureProgram, _ request: AttachRequest, in context: AttachContext) -> Bool {
    guard case .probe = planned.kind, let dynamic = request.attachment.dynamicProbe, let path = dynamic.binaryPath,
      let (ring, ringLost) = makeRing(in: context, probe: request.probe)
    else { return false }
    var program = planned
    program.identifier = context.dispatcher.nextProgramID
    let site = UprobeSite(
      path: path, fileOffset: dynamic.fileOffset, semaphoreOffset: dynamic.semaphoreOffset, isReturn: dynamic.isReturn,
      description: request.probe.name)
    do {
      try program.validate()
      let loaded = try program.load(ringFD: ring.map.fd, lostMapFD: ringLost.fd, forUprobeLink: true)
      context.kernelObjects.append(try UprobeLink(loaded, at: site))
      route(request, program, loaded, in: context)
      return true
    } catch {
      return false
    }
  }

  /// The capture program of `request`, with its identifier and common type filled in, loaded;
  /// nil when the ring cannot be made or the kernel refuses the program (said on stderr).
  func load(_ planned: CaptureProgram, for request: AttachRequest, in context: AttachContext) throws -> (CaptureProgram, BPFProgram)? {
    guard let (ring, ringLost) = makeRing(in: context, probe: request.probe) else { return nil }
    var program = planned
    program.identifier = context.dispatcher.nextProgramID
    if program.kind == .tracepoint {
      program.commonType = UInt16(truncatingIfNeeded: try context.tracepointID(of: request.probe))
    }
    do {
      try program.validate()
      return (program, try program.load(ringFD: ring.map.fd, lostMapFD: ringLost.fd))
    } catch {
      printToStandardError("WARNING: \(request.probe.name): delivered through perf instead of BPF: \(error)\n")
      return nil
    }
  }

  /// Keeps the loaded program and sends its records to the attachment's block.
  func route(_ request: AttachRequest, _ program: CaptureProgram, _ loaded: BPFProgram, in context: AttachContext) {
    context.kernelObjects.append(loaded)
    context.addRoute(
      id: program.identifier, to: request.attachment, sampleType: program.sampleType, skipPredicate: false,
      commOffset: program.includesComm ? program.commOffset : nil,
      credentialsOffset: program.includesCredentials ? program.credentialsOffset : nil,
      kernelStackOffset: program.kernelStackDepth > 0 ? program.kernelStackOffset : nil,
      userStackOffset: program.userStackDepth > 0 ? program.userStackOffset : nil,
      failedReads: failedReadReport(program, request.attachment, source: context.session.plan.source))
  }

  /// What `-kk` says of the program's failed reads: the reads area's codes in RAW, where the plan put them.
  private func failedReadReport(_ program: CaptureProgram, _ attachment: Attachment, source: SourceFile?) -> FailedReadReport? {
    if case .probe(let layout) = program.kind {
      // A probe's record is RAW from its first byte; its fields' codes follow its strings.
      guard layout.reportsFailures, let sites = attachment.dynamicProbe?.capture.sites, sites.count == layout.fields.count
      else { return nil }
      return FailedReadReport(codesOffset: layout.failureCodesOffset, sites: sites, source: source)
    }
    guard program.reads.reportsFailures, program.readsInRecordAt == attachment.eventReadsOffset,
      attachment.eventReadSites.count == program.reads.reads.count
    else { return nil }
    return FailedReadReport(
      codesOffset: attachment.eventReadFailureCodesOffset, sites: attachment.eventReadSites, source: source)
  }

  /// The ring and its lost counter, made on first use; nil when this kernel cannot make them.
  private func makeRing(in context: AttachContext, probe: ResolvedProbe) -> (BPFRing, BPFMap)? {
    if let ring, let ringLost { return (ring, ringLost) }
    guard !isUnavailable else { return nil }
    do {
      let lost = try CaptureProgram.makeCounters()
      let made = try BPFRing(bytes: max(context.ringPages * 4096 * context.cpus.count, Self.minimumRingBytes))
      ring = made
      ringLost = lost
      return (made, lost)
    } catch {
      isUnavailable = true
      printToStandardError("WARNING: \(probe.name): no BPF ring (\(error)): tracepoints are delivered through perf\n")
      return nil
    }
  }

  /// Records the ring had no room for, over every CPU.
  func lostRecords() throws(KernelError) -> UInt64 {
    guard let ringLost else { return 0 }
    return try CaptureProgram.total(of: .lostRecords, in: ringLost)
  }

  /// Reads of memory the capture programs could not make, over every CPU.
  func failedReads() throws(KernelError) -> UInt64 {
    guard let ringLost else { return 0 }
    return try CaptureProgram.total(of: .failedReads, in: ringLost)
  }

  func release() {
    ring = nil
    ringLost = nil
  }
}
