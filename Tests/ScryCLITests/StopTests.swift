import Glibc
import Testing

/// SIGINT and SIGTERM stop a loaded run at once, as bpftrace does: what is still queued in the
/// rings is dropped and counted, END runs and the maps print. SIGUSR1 prints the maps and the
/// run goes on, under load too.
@Suite(.serialized) struct StopTests {
  /// A workload of `events` getppid calls held at a gate (a fifo) until `open()`, so a script
  /// can name its pid before it runs.
  struct GatedWorkload {
    let pid: pid_t
    let gate: String

    init(_ workload: String, events: Int) throws {
      gate = "/tmp/scry-stop-gate-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
      try #require(mkfifo(gate, 0o600) == 0)
      let command = "read go < '\(gate)'; exec '\(workload)' syscall \(events) 0 >/dev/null"
      let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
      var child: pid_t = 0
      try #require(posix_spawn(&child, "/bin/sh", nil, nil, argv, environ) == 0)
      pid = child
    }

    func open() {
      let fd = Glibc.open(gate, O_WRONLY)
      _ = write(fd, "go\n", 3)
      close(fd)
    }

    /// Waits for the workload's end (once).
    func finish() {
      var status: Int32 = 0
      guard waitpid(pid, &status, 0) == pid else { return }
      unlink(gate)
    }
  }

  static func count(_ prefix: String, in output: String) -> Int {
    output.split(separator: "\n").first { $0.hasPrefix(prefix) }
      .flatMap { Int($0.dropFirst(prefix.count).prefix { $0.isNumber }) } ?? 0
  }

  /// Each event runs system(): a few milliseconds apiece, so the queue holds seconds of work.
  /// Output is written after each event (`-B line`), so the test sees the actions run.
  /// Before the stop was checked between records, SIGINT ran the whole queue first (over 10 s).
  @Test(arguments: [SIGINT, SIGTERM])
  func aStopUnderLoadIsPromptAndCountsWhatItDropped(signal: Int32) throws {
    guard kernelAvailable("stop tests"), let workload = KernelEventTests.workload else { return }
    // Enough that a test runner stalled for seconds on a loaded machine still stops mid-queue.
    let events = 20_000
    let gated = try GatedWorkload(workload, events: events)
    defer { gated.finish() }
    let run = try BackgroundScry(
      "tracepoint:syscalls:sys_enter_getppid /pid == \(gated.pid)/ { @n = count(); system(\"echo x\"); } END { printf(\"end\\n\"); }",
      flags: ["--unsafe", "-B", "line", "--lost", "fail"])
    // A failed requirement must not leave Scry running.
    var stopped = false
    defer { if !stopped { run.stop() } }
    gated.open()
    // The actions are under way when the user stops the run.
    for _ in 0..<200 where run.contents().split(separator: "\n").filter({ $0 == "x" }).count < 20 { usleep(25_000) }
    let ran = run.contents().split(separator: "\n").filter { $0 == "x" }.count
    try #require(ran >= 20 && ran < events / 2, "the actions did not start, or ran too fast: \(ran)")

    // SIGUSR1 prints the maps soon, and the run goes on.
    kill(run.pid, SIGUSR1)
    var printedMaps = false
    for _ in 0..<40 where !printedMaps {
      usleep(25_000)
      printedMaps = run.contents().contains("@n: ")
    }
    #expect(printedMaps, "SIGUSR1 printed no map within 1 s")
    let before = run.contents().split(separator: "\n").filter { $0 == "x" }.count
    // A loaded machine may take a while to run the next system(): up to 2 s.
    var after = before
    for _ in 0..<80 where after == before {
      usleep(25_000)
      after = run.contents().split(separator: "\n").filter { $0 == "x" }.count
    }
    #expect(after > before, "the run stopped at SIGUSR1")

    let start = Clock.now()
    let (status, output) = run.stop(signal)
    stopped = true
    let seconds = Clock.now() - start
    // Discarding at the user's stop is no failure, even with `--lost fail`.
    #expect(status == 0, "\(output)")
    #expect(seconds < 2, "\(seconds) s from the signal to the exit")
    let lines = output.split(separator: "\n")
    let printed = lines.filter { $0 == "x" }.count
    let discarded = Self.count("Discarded ", in: output)
    let lost = Self.count("Lost ", in: output)
    let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
    #expect(output.contains("Discarded \(discarded) events still queued at \(name)\n"), "\(output.suffix(300))")
    #expect(discarded > 0, "\(output.suffix(300))")
    // Every event is accounted for: it ran, was lost, or was dropped at the stop.
    #expect(printed + lost + discarded == events, "printed \(printed), lost \(lost), discarded \(discarded)")
    // END ran and the maps printed after it, counting the actions that ran.
    #expect(lines.contains("end"), "\(output.suffix(300))")
    #expect(lines.last { $0.hasPrefix("@n: ") } == "@n: \(printed)", "\(output.suffix(300))")
  }

  /// A stop at light load drops nothing: what is queued runs within the grace.
  @Test func aStopAtLightLoadRunsWhatIsQueued() throws {
    guard kernelAvailable("stop tests"), let workload = KernelEventTests.workload else { return }
    let events = 500
    let gated = try GatedWorkload(workload, events: events)
    defer { gated.finish() }
    let run = try BackgroundScry("tracepoint:syscalls:sys_enter_getppid /pid == \(gated.pid)/ { @n = count(); }")
    gated.open()
    // Stopped as soon as the workload is done, within the drain period: its events are still
    // in the ring.
    gated.finish()
    let (status, output) = run.stop(SIGINT)
    #expect(status == 0, "\(output)")
    #expect(output.hasSuffix("@n: \(events)\n"), "\(output)")
    #expect(!output.contains("Discarded"), "\(output)")
  }
}

enum Clock {
  static func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
  }
}
