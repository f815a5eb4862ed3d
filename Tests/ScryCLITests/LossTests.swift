import Glibc
import Testing

/// Nothing is lost silently: with the output blocked, the events printed plus the `Lost` count
/// account for every event, and `--lost fail` makes that an error.
@Suite(.serialized) struct LossTests {
  /// Runs scry with its output into a pipe nobody reads for 3 s, so the rings overflow.
  func blocked(_ flags: [String], script: String, workload: String, events: Int) -> (lines: [Substring], stderr: String, status: Int32) {
    let errors = "/tmp/scry-loss-\(getpid()).err"
    defer { unlink(errors) }
    let quoted = (flags + ["--lost", "fail", "--buffer-pages", "1", "-c", "\(workload) syscall \(events) 0", "-e", script])
      .map { "'" + $0 + "'" }.joined(separator: " ")
    let run = Run.program(
      "/bin/bash",
      ["-c", "'\(scryBinary())' \(quoted) 2>\(errors) | (sleep 3; cat); echo \"status=${PIPESTATUS[0]}\""])
    let stderr = Run.program("/bin/cat", [errors]).stdout
    let status = Int32(run.stdout.split(separator: "\n").last { $0.hasPrefix("status=") }?.dropFirst(7) ?? "") ?? -1
    return (run.stdout.split(separator: "\n"), stderr, status)
  }

  static func lost(_ stderr: String) -> Int {
    stderr.split(separator: "\n").first { $0.hasPrefix("Lost ") }.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
  }

  @Test func perfRingsCountEveryLostSample() throws {
    guard kernelAvailable("loss tests"), let workload = KernelEventTests.workload else { return }
    let events = 200_000
    let run = blocked(
      ["--no-bpf"], script: #"tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { printf("x\n"); }"#,
      workload: workload, events: events)
    let printed = run.lines.filter { $0 == "x" }.count
    #expect(Self.lost(run.stderr) > 0, "\(run.stderr)")
    #expect(printed + Self.lost(run.stderr) == events, "printed \(printed), \(run.stderr)")
    #expect(run.status == 1, "\(run.stderr)")
  }

  @Test func theBPFRingCountsEveryLostRecord() throws {
    guard kernelAvailable("loss tests"), let workload = KernelEventTests.workload else { return }
    // More records than the 32 MiB ring holds while the output is blocked. System-wide (the
    // capture program's path): other processes' calls may be lost too.
    let events = 4_000_000
    let run = blocked(
      [], script: #"tracepoint:syscalls:sys_enter_getppid { printf("%d\n", pid == cpid); }"#,
      workload: workload, events: events)
    let mine = run.lines.filter { $0 == "1" }.count
    let lost = Self.lost(run.stderr)
    #expect(lost > 0, "\(run.stderr)")
    #expect(mine <= events && mine + lost >= events, "printed \(mine), \(run.stderr)")
    #expect(run.status == 1, "\(run.stderr)")
  }
}
