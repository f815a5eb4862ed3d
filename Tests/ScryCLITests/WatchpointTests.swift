import Glibc
import Testing

/// `watchpoint:` probes: hardware breakpoints on the memory of the traced process, on a small C
/// program that writes a known number of times (Tests/Fixtures/watch_target.c).
@Suite(.serialized) struct WatchpointTests {
  static let binary = "/tmp/scry-watch-target-\(getpid())"

  func buildOrSkip() throws -> String? {
    guard kernelAvailable("watchpoint tests") else { return nil }
    if access(Self.binary, X_OK) != 0 { try buildFixture("watch_target.c", into: Self.binary) }
    return Self.binary
  }

  /// Every write the traced process makes to the watched byte is one hit, of that process.
  @Test func anAddressWatchpointSeesEveryWriteOfTheTracedProcess() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry(
      "-c", "\(binary) fixed 50", "-e",
      "watchpoint:0x10000000:1:w { @hits = count(); @who[pid == cpid, comm, probe] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@hits: 50\n"), "\(run.stdout)")
    let name = String(Self.binary.split(separator: "/").last!.prefix(15))
    #expect(run.stdout.contains("@who[1, \(name), watchpoint:\(binary):268435456:1:w]: 50\n"), "\(run.stdout)")
  }

  /// bpftrace's runtime test "watchpoint - absolute address", on this suite's fixture.
  @Test func theCorpusAbsoluteAddressProbeExitsOnItsFirstHit() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry("-c", "\(binary) fixed 100000", "-e", "watchpoint:0x10000000:8:w { printf(\"hit!\\n\"); exit() }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 1 probe...\nhit!\n\n\n", "\(run.stdout)")
  }

  /// bpftrace 0.17's checks of a watchpoint's spec, in its words, before anything is attached.
  @Test func refusesTheSpecsBpftraceRefuses() {
    let cases: [(String, String)] = [
      ("watchpoint:0x10000000:3:w", "watchpoint length must be one of (1,2,4,8)"),
      ("watchpoint:0x10000000:4:rx", "invalid watchpoint mode: rx"),
      ("watchpoint:0x10000000:4:r", "invalid watchpoint mode: r"),
      ("watchpoint:0x10000000:4:ww", "watchpoint modes may not be duplicated"),
      ("watchpoint:0x10000000:4:q", "watchpoint mode must be combination of (r,w,x)"),
      ("watchpoint:0:4:w", "watchpoint must be attached to a non-zero address"),
      ("watchpoint:0x1000:4", "watchpoint probe type requires 3 arguments"),
      ("watchpoint:increment+arg1:4:w", "-p PID or -c CMD required for watchpoint"),
      ("watchpoint:increment+1:4:w", "Invalid function argument"),
      ("asyncwatchpoint:0x1000:4:w", "asyncwatchpoint requires a function name"),
    ]
    for (spec, message) in cases {
      let run = scry("--dry-run", "-e", "\(spec) { exit() }")
      #expect(run.status == 1, "\(spec): \(run.stdout)")
      #expect(run.stderr.contains("error: \(message)"), "\(spec): \(run.stderr)")
    }
  }

  /// `--plan` says what the breakpoint is and whose memory it watches.
  @Test func thePlanDescribesTheBreakpoint() {
    let run = scry("--plan", "-c", "/bin/true", "-e", "watchpoint:0x10000000:8:wr { exit() }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("[0] watchpoint:/bin/true:268435456:8:rw\n"), "\(run.stdout)")
    #expect(
      run.stdout.contains(
        "kind: hardware breakpoint (perf, PERF_TYPE_BREAKPOINT), mode rw, on 8 bytes at 0x10000000 of the traced process (/bin/true)"),
      "\(run.stdout)")
    #expect(run.stdout.contains("scope: traced process"), "\(run.stdout)")
  }

  /// `watchpoint:FUNC+argN`: the uprobe stops the task until the breakpoint is open, so every
  /// write after the call is seen. The probed instruction itself (increment's `(*i)++`) usually
  /// runs before the stop takes effect (the kernel holds signals while it steps over a uprobe),
  /// so the first call's write is missed, as bpftrace 0.17 misses it (39 of 40 for both when run
  /// from a shell). But the uprobe's record may reach Scry, and the breakpoint open, before the
  /// task has stepped over that instruction (under this test process it often did: 40), so either
  /// is taken.
  @Test func aFunctionArgumentWatchpointStopsTheTaskUntilItsBreakpointIsOpen() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry(
      "-c", "\(binary) arg 20", "-e",
      "watchpoint:increment+arg1:4:w { @hits = count(); @who[pid == cpid, probe] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@hits: 39\n") || run.stdout.contains("@hits: 40\n"), "\(run.stdout) \(run.stderr)")
    #expect(run.stdout.contains("@who[1, watchpoint:\(binary):increment:1:4:w]: "), "\(run.stdout)")
    // Nothing is left behind: the guardian that would continue the task ends with the run.
    usleep(500_000)
    #expect(!shell("ps -eo args").stdout.contains("__scry_continue_guardian"))
  }

  /// `asyncwatchpoint:` does not stop the task: hits still come once the breakpoint is open.
  @Test func anAsyncWatchpointSeesWritesAfterItOpens() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry("-c", "\(binary) arg 200", "-e", "asyncwatchpoint:increment+arg1:4:w { @hits = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let hits = run.stdout.split(separator: "\n").first { $0.hasPrefix("@hits: ") }.flatMap { Int($0.dropFirst(7)) }
    #expect((hits ?? 0) > 300, "\(run.stdout)")
  }

  /// x86-64 has four debug registers: the fifth address is refused in bpftrace's words, the run
  /// goes on, and the task is continued each time.
  @Test func aFifthAddressIsOutOfWatchpointRegisters() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry("-c", "\(binary) many 8", "-e", "watchpoint:bump+arg0:4:w { @hits = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let refusals = run.stdout.split(separator: "\n").filter {
      $0 == "Failed to attach watchpoint probe. You are out of watchpoint registers."
    }
    #expect(refusals.count == 4, "\(run.stdout)")
    // With -f json, bpftrace's lost_events record.
    let json = scry("-f", "json", "-c", "\(binary) many 5", "-e", "watchpoint:bump+arg0:4:w { @hits = count(); }")
    #expect(
      json.stdout.contains(
        "{\"type\": \"lost_events\", \"data\": \"Failed to attach watchpoint probe. You are out of watchpoint registers.\"}\n"),
      "\(json.stdout)")
  }

  /// A task stopped by a watchpoint's uprobe is continued even when Scry is killed outright.
  @Test func aKilledRunLeavesNoTaskStopped() throws {
    guard let binary = try buildOrSkip() else { return }
    // Scry is stopped itself, so the task stays stopped at its next call; then Scry is killed.
    // (All in one shell: the harness's pipes leak into the traced task, which must end with it.)
    let run = shell(
      "\(scryBinary()) -e 'watchpoint:increment+arg1:4:w { @ = count(); }' -c '\(binary) arg 100000' >/dev/null 2>&1 &"
        + " S=$!; sleep 1; kill -STOP $S; sleep 0.3; C=$(pgrep -P $S -f 'arg 100000'); grep State /proc/$C/status;"
        + " kill -KILL $S; sleep 0.8; grep State /proc/$C/status; kill -KILL $C")
    let states = run.stdout.split(separator: "\n")
    #expect(states.count == 2, "\(run.stdout) \(run.stderr)")
    #expect(states.first?.contains("stopped") == true, "the task was not stopped while Scry was: \(run.stdout)")
    #expect(states.last?.contains("stopped") == false, "the task stayed stopped after Scry was killed: \(run.stdout)")
  }

  /// With --no-bpf the setup program cannot run: refused before anything is attached.
  @Test func aFunctionWatchpointNeedsBPF() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry("--no-bpf", "--dry-run", "-c", "\(binary) arg 1", "-e", "watchpoint:increment+arg1:4:w { exit() }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("--no-bpf forbids BPF programs"), "\(run.stderr)")
  }

  /// When the write comes after the uprobed instruction, the stop catches every call's write.
  @Test func everyWriteAfterTheStopIsSeen() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry("-c", "\(binary) touch 30", "-e", "watchpoint:touch+arg1:4:w { @hits = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@hits: 30\n"), "\(run.stdout) \(run.stderr)")
  }

  /// `unwatch(addr)` closes the address's breakpoint; the same address again stays unwatched (as
  /// in bpftrace). The task's next stop waits for the actions before it, so exactly one hit.
  @Test func unwatchClosesTheBreakpoint() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry(
      "-c", "\(binary) touch 30", "-e",
      "uprobe:\(binary):touch { @addr = arg1; } watchpoint:touch+arg1:4:w { @hits = count(); unwatch(@addr); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@hits: 1\n"), "\(run.stdout) \(run.stderr)")
    // An address nothing watches is no error; unwatch() takes one integer.
    let quiet = scry("-c", "\(binary) touch 3", "-e", "watchpoint:touch+arg1:4:w { unwatch(12345); }")
    #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet.stderr)")
    let wrong = scry("--dry-run", "-e", "BEGIN { unwatch(\"x\"); }")
    #expect(wrong.status == 1, "\(wrong.stderr)")
  }

  /// Without -p or -c the address is the kernel's, watched on every CPU (through the capture
  /// program, as a software event is): here a sleeping task's context-switch count, which the
  /// kernel writes at each of its sleeps.
  @Test func aKernelAddressIsWatchedOnEveryCPU() throws {
    guard let binary = try buildOrSkip() else { return }
    let script = #"""
      \#(binary) touch 100000 & P=$!
      sleep 0.3
      A=$("$SCRY" -q -e "tracepoint:syscalls:sys_enter_clock_nanosleep /pid == $P/ {
        printf(\"%lx\\n\", (uint64)curtask + offsetof(struct task_struct, nvcsw)); exit(); }" | head -1)
      "$SCRY" -e "watchpoint:0x$A:8:w { @[pid == $P, comm] = count(); if (@[pid == $P, comm] >= 3) { exit(); } }"
      kill -KILL $P
      """#
    let run = shell(script)
    let name = String(binary.split(separator: "/").last!.prefix(15))
    #expect(run.stdout.contains("@[1, \(name)]: 3\n"), "\(run.stdout) \(run.stderr)")
  }

  /// The setup uprobe is on a file other processes may run: only the traced one is stopped.
  @Test func anotherProcessOfTheSameBinaryIsNotStopped() throws {
    guard let binary = try buildOrSkip() else { return }
    let script = #"""
      \#(binary) touch 100000 & O=$!
      "$SCRY" -e 'watchpoint:touch+arg1:4:w { @hits = count(); }' -c '\#(binary) touch 300' > /dev/null 2>&1 &
      sleep 0.6; grep State /proc/$O/status; wait %2; kill -KILL $O
      """#
    let run = shell(script)
    #expect(run.stdout.hasPrefix("State:") && !run.stdout.contains("stopped"), "\(run.stdout) \(run.stderr)")
  }
}
