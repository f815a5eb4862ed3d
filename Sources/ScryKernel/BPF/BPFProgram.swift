import CScrySystem
import Glibc

/// A BPF program loaded into the kernel (one fd), verified and ready to attach.
///
/// Closes its fd in deinit; an attached program stays alive in the kernel as long as the
/// perf event it is attached to (see `PerfEvent.attach(_:)`). The kernel call is `bpf(2)`.
public final class BPFProgram {
  private let handle: OwnedFD
  /// The program fd.
  public var fd: Int32 { handle.raw }
  /// The program's name (as given; the kernel keeps a 15-byte [A-Za-z0-9_.] version).
  public let name: String
  /// Instructions (8-byte slots) loaded.
  public let instructionCount: Int

  private init(fd: Int32, name: String, instructionCount: Int) {
    handle = OwnedFD(fd)
    self.name = name
    self.instructionCount = instructionCount
  }

  /// What Scry's tracepoint programs return: non-zero lets `perf_trace_run_bpf_submit` go on
  /// to hand the record to every perf event on the tracepoint (perf, another tracer, another
  /// block's counter). 0 would hide the event from them all. Scry's own event there counts only,
  /// so passing the record on costs a counter increment.
  public static let tracepointPassesOn: Int32 = 1

  /// The most verifier log kept when a load is refused.
  static let verifierLogSize = 1 << 20
  /// How many of the log's last lines an error shows.
  static let verifierLogLines = 20

  /// Loads a BPF_PROG_TYPE_TRACEPOINT program (license "GPL", needed by the probe_read and
  /// perf_event_output helpers).
  ///
  /// On refusal, loads again with a verifier log (level 1, up to 1 MiB) and throws a
  /// `KernelError` whose explanation ends with the last lines of that log, one instruction
  /// per line as the kernel prints it. The first attempt runs without a log because the
  /// log makes the verifier slower and is only needed to explain a failure.
  public static func loadTracepointProgram(_ instructions: [BPFInstruction], name: String) throws(KernelError)
    -> BPFProgram
  {
    try load(type: SCRY_BPF_PROG_TYPE_TRACEPOINT, instructions, name: name)
  }

  /// Loads a BPF_PROG_TYPE_PERF_EVENT program, run on each overflow of the sampling events it is
  /// attached to (software events, timers).
  public static func loadPerfEventProgram(_ instructions: [BPFInstruction], name: String) throws(KernelError)
    -> BPFProgram
  {
    try load(type: SCRY_BPF_PROG_TYPE_PERF_EVENT, instructions, name: name)
  }

  /// Why this process may not load BPF programs (no CAP_BPF, `kernel.unprivileged_bpf_disabled`,
  /// a kernel without BPF), found by loading the smallest program; nil when it may.
  public static func loadingRefusal() -> KernelError? {
    do {
      _ = try loadTracepointProgram([.mov64(.r0, 0), .exit], name: "scry_check")
      return nil
    } catch {
      return error
    }
  }

  /// Loads a BPF_PROG_TYPE_KPROBE program: the type the kernel runs for uprobe and kprobe
  /// events opened through perf (its context is the probed task's registers).
  /// `forUprobeLink`: for `UprobeLink` instead of a perf event (the kernel wants to know which).
  public static func loadProbeProgram(
    _ instructions: [BPFInstruction], name: String, forUprobeLink: Bool = false
  ) throws(KernelError) -> BPFProgram {
    try load(
      type: SCRY_BPF_PROG_TYPE_KPROBE, attachType: forUprobeLink ? SCRY_BPF_TRACE_UPROBE_MULTI : 0, instructions,
      name: name)
  }

  /// Loads a BPF_PROG_TYPE_RAW_TRACEPOINT program that nothing attaches: `runNow` runs it on the
  /// calling thread (BPF_PROG_TEST_RUN), with the tracing helpers (the current task, kernel reads,
  /// the BPF ring). It must not read its context, which is empty.
  public static func loadOnDemandProgram(_ instructions: [BPFInstruction], name: String) throws(KernelError) -> BPFProgram {
    try load(type: SCRY_BPF_PROG_TYPE_RAW_TRACEPOINT, instructions, name: name)
  }

  /// Loads a BPF_PROG_TYPE_RAW_TRACEPOINT program for a `RawTracepointLink`: its context is the
  /// tracepoint's arguments (u64 each), and its return value is ignored.
  public static func loadRawTracepointProgram(_ instructions: [BPFInstruction], name: String) throws(KernelError)
    -> BPFProgram
  {
    try load(type: SCRY_BPF_PROG_TYPE_RAW_TRACEPOINT, instructions, name: name)
  }

  /// Runs a program loaded by `loadOnDemandProgram` once, now, on this thread; returns its r0.
  @discardableResult
  public func runNow() throws(KernelError) -> UInt32 {
    var result: UInt32 = 0
    guard scry_bpf_prog_test_run(fd, &result) == 0 else {
      throw BPFMap.error(operation: "bpf(BPF_PROG_TEST_RUN)", subject: "program '\(name)'", errno: Glibc.errno)
    }
    return result
  }

  static func load(
    type: UInt32, attachType: UInt32 = 0, _ instructions: [BPFInstruction], name: String
  ) throws(KernelError) -> BPFProgram {
    let subject = "program '\(name)'"
    guard !instructions.isEmpty, instructions.count <= 1_000_000 else {
      throw KernelError(
        operation: "bpf(BPF_PROG_LOAD)", subject: subject, errno: EINVAL,
        explanation: "a program needs 1 to 1000000 instructions, not \(instructions.count)")
    }
    // `struct bpf_insn` is exactly our four fields in this order, 8 bytes, little-endian.
    var bytes = [UInt8]()
    bytes.reserveCapacity(instructions.count * 8)
    for instruction in instructions { bytes.append(contentsOf: instruction.bytes) }
    let count = UInt32(instructions.count)
    let fd = bytes.withUnsafeBytes { scry_bpf_prog_load(type, attachType, $0.baseAddress, count, "GPL", name, 0, nil, 0) }
    if fd >= 0 { return BPFProgram(fd: fd, name: name, instructionCount: instructions.count) }
    let code = Glibc.errno
    // EPERM/ENOSYS are not the verifier's doing: no log would explain them.
    guard code == EACCES || code == EINVAL || code == E2BIG || code == ENOSPC else {
      throw BPFMap.error(operation: "bpf(BPF_PROG_LOAD)", subject: subject, errno: code)
    }
    var log = [CChar](repeating: 0, count: verifierLogSize)
    let second = bytes.withUnsafeBytes { insns in
      log.withUnsafeMutableBufferPointer { buffer in
        scry_bpf_prog_load(
          type, attachType, insns.baseAddress, count, "GPL", name, 1, buffer.baseAddress, UInt32(buffer.count))
      }
    }
    if second >= 0 {
      // Refused without a log and accepted with one: not expected, but the program is good.
      return BPFProgram(fd: second, name: name, instructionCount: instructions.count)
    }
    let secondCode = Glibc.errno
    let text = log.withUnsafeBufferPointer { buffer in
      let end = buffer.firstIndex(of: 0) ?? buffer.count
      return String(decoding: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<end]), as: UTF8.self)
    }
    throw KernelError(
      operation: "bpf(BPF_PROG_LOAD)", subject: subject, errno: code,
      explanation: verifierExplanation(log: text, instructionCount: instructions.count, errno: secondCode))
  }

  /// "the verifier refused …; its log ends with:" plus the log's last lines.
  static func verifierExplanation(log: String, instructionCount: Int, errno code: Int32) -> String {
    let lines = log.split(separator: "\n", omittingEmptySubsequences: true)
    let tail = lines.suffix(verifierLogLines).map { "  " + $0 }.joined(separator: "\n")
    let head = "the kernel's verifier refused the \(instructionCount)-instruction program"
    if tail.isEmpty {
      return head + " and wrote no log (errno \(code))"
    }
    return head + "; its log ends with:\n" + tail
  }
}

extension PerfEvent {
  /// Runs `program` each time this tracepoint fires. The kernel keeps the program while
  /// the event is open, so `program` may be released afterwards.
  ///
  /// The program is attached to the tracepoint itself, not to this event's CPU: it runs
  /// for hits on every CPU, whether or not the event is enabled, until the event is closed
  /// (measured on 6.18). So attach a program to one event per tracepoint (opened on any
  /// one CPU): the same program again fails with EEXIST, and a second copy would run twice
  /// per hit. A program that returns 0 suppresses the event's own sample.
  /// The corresponding call is `ioctl(PERF_EVENT_IOC_SET_BPF)`.
  public func attach(_ program: BPFProgram) throws(KernelError) {
    guard scry_perf_set_bpf(fd, program.fd) == 0 else {
      let code = Glibc.errno
      let explanation: String? =
        switch code {
        case EINVAL: "only a tracepoint event takes a BPF_PROG_TYPE_TRACEPOINT program"
        case EEXIST: "this program is already attached to this tracepoint (it runs on every CPU: attach it once)"
        case EPERM, EACCES: "attaching BPF needs root (or CAP_BPF and CAP_PERFMON)"
        default: nil
        }
      throw KernelError(
        operation: "PERF_EVENT_IOC_SET_BPF", subject: description, errno: code, explanation: explanation,
        cpu: cpu >= 0 ? cpu : nil)
    }
  }
}
