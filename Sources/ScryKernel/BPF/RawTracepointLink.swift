import CScrySystem
import Glibc

/// A BPF program on a kernel tracepoint through BPF_RAW_TRACEPOINT_OPEN.
///
/// The program runs straight from the tracepoint with its arguments: the kernel builds no perf
/// record (the tracepoint's fields, copied into a per-CPU buffer before a BPF_PROG_TYPE_TRACEPOINT
/// program runs) and walks no perf event list after it. So it suits programs that read no field,
/// such as counting per task. It hides nothing from other consumers of the tracepoint (perf,
/// another tracer): each is called on its own. The link lives as long as its fd.
public final class RawTracepointLink {
  private let handle: OwnedFD
  /// The tracepoint's kernel name (`sched_switch`, `sys_enter`: the event's name without its system).
  public let tracepoint: String
  /// The program, kept while it runs.
  public let program: BPFProgram

  /// Attaches `program` (loaded by `BPFProgram.loadRawTracepointProgram`) to `tracepoint`; throws
  /// when the kernel has no tracepoint of that name (an event whose tracepoint is named otherwise,
  /// or a syscall event, which is no tracepoint) or refuses, and the caller attaches another way.
  public init(_ program: BPFProgram, to tracepoint: String, description: String) throws(KernelError) {
    let fd = tracepoint.withCString { scry_bpf_raw_tracepoint_open($0, program.fd) }
    guard fd >= 0 else {
      let code = Glibc.errno
      let explanation: String? =
        switch code {
        case ENOENT: "the kernel has no raw tracepoint '\(tracepoint)'"
        case EPERM, EACCES: "attaching BPF needs root (or CAP_BPF and CAP_PERFMON)"
        default: nil
        }
      throw KernelError(
        operation: "bpf(BPF_RAW_TRACEPOINT_OPEN)", subject: description, errno: code, explanation: explanation)
    }
    handle = OwnedFD(fd)
    self.tracepoint = tracepoint
    self.program = program
  }
}
