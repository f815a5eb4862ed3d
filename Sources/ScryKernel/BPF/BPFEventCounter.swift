/// Counts the hits of a uprobe, kprobe or tracepoint with a six-instruction BPF program that adds
/// one to a per-CPU counter and returns 0.
///
/// A perf counter on a dynamic event is dearer than it looks: before counting, the kernel copies
/// the probe's record into a perf buffer (uprobe_perf_func). A BPF program attached to the event
/// runs first, and returning 0 skips that copy, so counting this way costs what bpftrace's
/// `@ = count()` costs. A tracepoint's perf counter likewise waits for the event's record to be
/// built; a raw tracepoint link runs the program without it. Reads sum the CPUs' counters.
public final class BPFEventCounter {
  private let counts: BPFMap
  private let program: BPFProgram
  /// What the program runs on (`PerfEvent`s, an `UprobeLink` or a `RawTracepointLink`); attached
  /// while this is open.
  private let attachment: [AnyObject]

  /// Attaches a counting program to `event` (open, not yet enabled; one event per dynamic
  /// probe suffices: the program runs for the probe's hits on every CPU).
  public init(attachingTo event: PerfEvent, name: String) throws(KernelError) {
    counts = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
    program = try BPFProgram.loadProbeProgram(Self.instructions(countingInto: counts.fd), name: name)
    try event.attach(program)
    attachment = [event]
  }

  /// The same counter on the overflows of sampling events (a timer's, one per CPU): a perf_event
  /// program on each, which counts the samples and returns 0, so none is written.
  public init(samplingOn events: [PerfEvent], name: String) throws(KernelError) {
    counts = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
    program = try BPFProgram.loadPerfEventProgram(Self.instructions(countingInto: counts.fd), name: name)
    for event in events { try event.attach(program) }
    attachment = events
  }

  /// The same counter on a uprobe through a `uprobe_multi` link (cheaper per hit; see `UprobeLink`).
  public init(linkingTo site: UprobeSite, name: String) throws(KernelError) {
    counts = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
    program = try BPFProgram.loadProbeProgram(Self.instructions(countingInto: counts.fd), name: name, forUprobeLink: true)
    attachment = [try UprobeLink(program, at: site)]
  }

  /// The same counter on a kernel tracepoint through a raw tracepoint link (see `RawTracepointLink`).
  public init(linkingTo tracepoint: String, description: String, name: String) throws(KernelError) {
    counts = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
    program = try BPFProgram.loadRawTracepointProgram(Self.instructions(countingInto: counts.fd), name: name)
    attachment = [try RawTracepointLink(program, to: tracepoint, description: description)]
  }

  /// `counts[0] += 1` on this CPU, then return 0 (which skips the event's own perf output).
  static func instructions(countingInto mapFD: Int32) -> [BPFInstruction] {
    var asm = BPFAssembler()
    asm.incrementFirstElement(ofMapFD: mapFD)
    // The dynamic event is Scry's own (its group is the run's): no other consumer to pass it to,
    // and 0 spares the kernel the perf record nobody reads.
    asm.emit(.mov64(.r0, 0))
    asm.emit(.exit)
    return asm.finish()
  }

  /// Hits so far, over every CPU.
  public func total() -> UInt64 {
    (try? counts.perCPUSum(index: 0)) ?? 0
  }
}
