import CScrySystem
import Glibc

/// A process that sends SIGCONT to a traced process when Scry ends, however it ends.
///
/// A `watchpoint:FUNC+argN` probe stops the task that calls FUNC (SIGSTOP from its uprobe's
/// program) until Scry has opened the breakpoint and continued it. Scry continues it on every
/// way out it runs code on; the guardian covers the others (SIGKILL, a crash): it is Scry's own
/// executable, started in a mode that only waits for EOF on a pipe whose write end only Scry
/// holds, then signals the process through a pidfd (never a reused pid). It holds no other fd of
/// Scry's, so Scry's probes still go away with Scry.
public final class ContinueGuardian {
  private var keep: OwnedFD
  private let pidfd: OwnedFD
  /// The guardian's pid (it exits soon after Scry closes the pipe).
  public let pid: Int32

  /// Starts the guardian of process `target`.
  public init(of target: Int32) throws(KernelError) {
    let raw = scry_pidfd_open(target)
    guard raw >= 0 else { throw KernelError(operation: "pidfd_open", subject: "pid \(target)", errno: Glibc.errno) }
    pidfd = OwnedFD(raw)
    var keepFD: Int32 = -1
    let spawned = scry_spawn_continue_guardian("/proc/self/exe", raw, &keepFD)
    guard spawned > 0 else {
      throw KernelError(
        operation: "posix_spawn", subject: "the SIGCONT guardian of pid \(target)", errno: Glibc.errno,
        explanation: "a task a watchpoint stops would stay stopped if Scry were killed")
    }
    pid = spawned
    keep = OwnedFD(keepFD)
  }

  /// Runs the guardian when this process was started as one; returns otherwise.
  public static func runIfRequested(_ arguments: [String]) {
    guard arguments.count == 2, arguments[1] == SCRY_CONTINUE_GUARDIAN else { return }
    scry_continue_guardian_main()
  }

  /// Released on Scry's ordinary way out, after Scry has closed what could stop the process and
  /// continued it itself: the guardian has nothing left to do and is ended and reaped now (left
  /// to itself it would linger 200 ms and stay a zombie of a long-lived Scry, the REPL's).
  deinit {
    kill(pid, SIGKILL)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let fd = keep.take()
    if fd >= 0 { close(fd) }
  }
}
