import Glibc
import Testing

/// What exists only at the event is captured there: a task's name under a fork-and-exec loop,
/// whose tasks are gone before any process table could name them.
@Suite(.serialized) struct CaptureTests {
  /// A shell loop that forks and execs /bin/true for `seconds`.
  static func forkLoop(seconds: Int) -> pid_t {
    let script = "end=$((SECONDS+\(seconds))); while [ $SECONDS -lt $end ]; do /bin/true; done"
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(script), nil]
    var child: pid_t = 0
    _ = posix_spawn(&child, "/bin/bash", nil, nil, argv, environ)
    return child
  }

  @Test(arguments: [
    "software:page-faults:1 { @[comm] = count(); }",
    "profile:hz:999 { @[comm] = count(); }",
    "tracepoint:syscalls:sys_enter_execve { @[comm] = count(); }",
  ])
  func commIsNeverEmptyUnderForkAndExec(script: String) throws {
    guard kernelAvailable("capture tests") else { return }
    let loop = Self.forkLoop(seconds: 2)
    defer {
      var status: Int32 = 0
      waitpid(loop, &status, 0)
    }
    let run = scry("-e", script + " interval:ms:1500 { exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let entries = run.stdout.split(separator: "\n").filter { $0.hasPrefix("@[") }
    #expect(!entries.isEmpty, "\(run.stdout)")
    #expect(!entries.contains { $0.hasPrefix("@[]") }, "\(run.stdout)")
    #expect(entries.contains { $0.hasPrefix("@[true]") || $0.hasPrefix("@[bash]") }, "\(run.stdout)")
  }
}
