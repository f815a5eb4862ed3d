import ScryKernel
import ScryPlan

/// The event of a block Scry runs itself (BEGIN, END, interval) when the block reads memory at
/// it (`curtask->pid`, `curtask->comm`, `@t = curtask`). These blocks have no kernel event, so Scry
/// makes one: a capture program of the raw tracepoint type, attached to nothing, that
/// BPF_PROG_TEST_RUN runs on Scry's own thread just before the block. Its current task is then
/// Scry's, as bpftrace's BEGIN and END run from a uprobe on bpftrace's own process. The program is
/// the capture compiler's (the same reads a software event's program makes) and writes one record
/// through a BPF ring of its own, which the block's action reads as it reads any event's RAW data.
///
/// Why not a uprobe on Scry's own process, as bpftrace does: it would need a probe created in
/// tracefs (or through the uprobe PMU) on a function of Scry's binary, a trap into the kernel on
/// each call, and cleanup of the probe on every way out; the test run is one bpf(2) call and
/// leaves nothing behind.
final class OnDemandCapture {
  private let program: BPFProgram
  private let ring: BPFRing
  private let counters: BPFMap
  private let capture: CaptureProgram
  /// The last run's RAW data, owned here while the block runs (the ring's space is freed at once).
  private let raw: UnsafeMutableRawBufferPointer

  init(reads: [EventRead], reportsFailures: Bool = false) throws(KernelError) {
    guard let kernelReads = AttachmentFacts.kernelReads(reads, reportsFailures: reportsFailures) else {
      throw KernelError(
        operation: "build capture program", subject: "memory reads", errno: 0,
        explanation: "a read starts from something a block without an event has no value for")
    }
    var capture = CaptureProgram(sampleType: [.raw], identifier: 0, recordSize: 0, commonType: 0, kind: .onDemand)
    capture.reads = kernelReads
    capture.readsInRecordAt = 0
    try capture.validate()
    ring = try BPFRing(bytes: capture.sampleSize + 64)
    counters = try CaptureProgram.makeCounters()
    program = try capture.load(ringFD: ring.map.fd, lostMapFD: counters.fd)
    self.capture = capture
    raw = .allocate(byteCount: capture.rawSize, alignment: 8)
    raw.initializeMemory(as: UInt8.self, repeating: 0)
  }

  deinit { raw.deallocate() }

  /// Runs the program on this thread now and loads its reads into the machine as the event's RAW data.
  func load(into machine: Machine) throws(KernelError) {
    try program.runNow()
    let start = capture.readsOffset
    let count = raw.count
    let written = ring.drain { body in
      guard body.count >= start + count else { return }
      raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: body[start..<start + count]))
    }
    guard written == 1 else {
      throw KernelError(
        operation: "bpf(BPF_PROG_TEST_RUN)", subject: "program '\(program.name)'", errno: 0,
        explanation: "the program wrote \(written) records instead of 1 (the ring was full or not drained)")
    }
    machine.raw = UnsafeRawPointer(raw.baseAddress)
    machine.rawSize = count
  }

  /// Reads of the chains that failed (an unmapped address): each read as 0 or empty.
  var failedReads: UInt64 { (try? CaptureProgram.total(of: .failedReads, in: counters)) ?? 0 }
}
