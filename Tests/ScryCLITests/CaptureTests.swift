import Glibc
import Testing

/// What exists only at the event is captured there: a task's name under a fork-and-exec loop,
/// whose tasks are gone before any process table could name them.
@Suite(.serialized) struct CaptureTests {
  /// A copy of /bin/true under a name of its own, so other tests counting `true` are not disturbed.
  static let loopBinary: String = {
    let path = "/tmp/scry-looptrue-\(getpid())"
    _ = Run.program("/bin/cp", ["/bin/true", path])
    return path
  }()

  /// A shell loop that forks and execs `loopBinary` for `seconds`.
  static func forkLoop(seconds: Int) -> pid_t {
    let script = "end=$((SECONDS+\(seconds))); while [ $SECONDS -lt $end ]; do \(loopBinary); done"
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
    // The kernel keeps 15 bytes of a task's name.
    let name = String(Self.loopBinary.split(separator: "/").last!.prefix(15))
    #expect(entries.contains { $0.hasPrefix("@[\(name)]") || $0.hasPrefix("@[bash]") }, "\(run.stdout)")
  }

  /// A timer's whole count is counted by a BPF program on its events (a perf counter of a clock
  /// counts time, not samples): about 99 samples a second on each CPU, as the ring's samples
  /// counted by the actions (`--no-bpf`) and bpftrace count them.
  @Test func aTimersWholeCountIsCountedInTheKernel() throws {
    guard kernelAvailable("capture tests") else { return }
    let plan = scry("--plan", "-e", "profile:hz:99 { @c = count(); }")
    #expect(plan.stdout.contains("a BPF program counts each sample on each CPU"), "\(plan.stdout)")
    let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    for flags: [String] in [[], ["--no-bpf"]] {
      let run = Run.program(scryBinary(), flags + ["-e", "profile:hz:99 { @c = count(); } interval:ms:1000 { exit(); }"])
      #expect(run.status == 0, "\(flags) \(run.stderr)")
      let count = run.stdout.split(separator: "\n").last.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
      // A CPU the timer finds idle may skip a sample; none takes more than its 99.
      #expect(count >= 50 && count <= 99 * cpus + 2, "\(flags) \(run.stdout)")
    }
  }
}
