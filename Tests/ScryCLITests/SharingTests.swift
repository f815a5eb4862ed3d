import Glibc
import Testing

/// Scry shares the kernel: its probes hide no event from another consumer (perf, another block
/// of the same script, another Scry); exit() is final; signals end or inform the run cleanly.
@Suite(.serialized) struct SharingTests {
  func workloadOrSkip() -> String? {
    guard kernelAvailable("sharing tests") else { return nil }
    guard let workload = KernelEventTests.workload else {
      Issue.record("could not build the workload with gcc")
      return nil
    }
    return workload
  }

  @Test func twoBlocksOnOneTracepointBothCountEveryEvent() throws {
    guard let workload = workloadOrSkip() else { return }
    // One block counts in the kernel (no ring), the other through the BPF ring: the ring's
    // program must let the record go on to the counter.
    let run = scry(
      "-c", "\(workload) syscall 20000 0", "-e",
      "tracepoint:syscalls:sys_enter_getppid { @a = count(); } tracepoint:syscalls:sys_enter_getppid { @b[pid == cpid] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n")
    #expect(lines.contains { $0.hasPrefix("@a: ") && Int($0.dropFirst(4))! >= 20000 }, "\(run.stdout)")
    // Other tests run the same workload meanwhile: the child's own calls are @b[1].
    #expect(lines.contains("@b[1]: 20000"), "\(run.stdout)")
  }

  @Test(arguments: [[], ["--no-bpf"]])
  func blocksOfOneProbeRunInScriptOrder(flags: [String]) throws {
    guard let workload = workloadOrSkip() else { return }
    let run = Run.program(
      scryBinary(),
      flags + [
        "-c", "\(workload) syscall 3 0", "-e",
        #"tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { printf("first\n"); } tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { printf("second\n"); }"#,
      ])
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n").filter { $0 == "first" || $0 == "second" }
    #expect(lines == ["first", "second", "first", "second", "first", "second"], "\(run.stdout)")
  }

  @Test func perfStillCountsATracepointScryTraces() throws {
    guard let workload = workloadOrSkip() else { return }
    guard access("/usr/bin/perf", X_OK) == 0 else {
      Issue.record("perf is not installed (make test installs linux-perf)")
      return
    }
    let script = "tracepoint:syscalls:sys_enter_getppid { @b[comm] = count(); }"
    let scryRun = try BackgroundScry(script)
    defer { scryRun.stop() }
    let perf = Run.program("/usr/bin/perf", ["stat", "-x", ",", "-e", "syscalls:sys_enter_getppid", "-a", workload, "syscall", "50000", "0"])
    // perf stat -x writes "COUNT,,EVENT,…" on stderr.
    let count = perf.stderr.split(separator: "\n").first { $0.contains("sys_enter_getppid") }
      .flatMap { Int($0.split(separator: ",").first ?? "") }
    #expect((count ?? 0) >= 50000, "perf counted \(count.map(String.init) ?? "nothing") while Scry traced: \(perf.stderr)")
  }

  @Test func exitIsFinal() throws {
    guard kernelAvailable("exit test") else { return }
    // Events drained with the one that called exit() run no action (bpftrace prints 6 or so here).
    let run = scry("-e", "tracepoint:sched:sched_switch { @c++; if (@c == 3) { exit(); } }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@c: 3\n"), "\(run.stdout)")
  }

  @Test func usr1PrintsTheMapsAndTheRunGoesOn() throws {
    guard kernelAvailable("signal test") else { return }
    let scryRun = try BackgroundScry("BEGIN { @a = 1; @b[1] = count(); } interval:ms:50 { @c++; }")
    usleep(300_000)
    kill(scryRun.pid, SIGUSR1)
    usleep(300_000)
    let (status, output) = scryRun.stop()
    #expect(status == 0)
    // Printed once for SIGUSR1 (no blank lines before, as bpftrace), once at exit.
    #expect(output.hasPrefix("Attaching 2 probes...\n@a: 1\n@b[1]: 1\n@c: "), "\(output)")
    #expect(output.split(separator: "\n").filter { $0 == "@b[1]: 1" }.count == 2, "\(output)")
  }
}

/// A Scry run in the background with its output in a file, started once it has attached.
struct BackgroundScry {
  let pid: pid_t
  let outputPath: String

  init(_ script: String, flags: [String] = []) throws {
    outputPath = "/tmp/scry-background-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
    let fd = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv: [UnsafeMutablePointer<CChar>?] = ([scryBinary()] + flags + ["-e", script]).map { strdup($0) } + [nil]
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fd, 1)
    posix_spawn_file_actions_adddup2(&actions, fd, 2)
    var child: pid_t = 0
    let result = posix_spawn(&child, scryBinary(), &actions, nil, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(fd)
    try #require(result == 0, "cannot start scry")
    pid = child
    for _ in 0..<100 where !contents().contains("Attaching") { usleep(50_000) }
    usleep(200_000)
  }

  func contents() -> String { Run.program("/bin/cat", [outputPath]).stdout }

  /// Ends the run with `signal` and returns its exit status and output.
  @discardableResult
  func stop(_ signal: Int32 = SIGINT) -> (Int32, String) {
    kill(pid, signal)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let output = contents()
    unlink(outputPath)
    return ((status >> 8) & 0xff, output)
  }
}
