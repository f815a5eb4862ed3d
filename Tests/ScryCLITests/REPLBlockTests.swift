import Glibc
import Testing

/// The REPL changes its program block by block: a block added or detached attaches or detaches
/// only its own probes, while the others count every event of a real workload across the change.
@Suite(.serialized) struct REPLBlockTests {
  /// The workload under a name of its own, so blocks can pick its events by `comm`.
  static let workloadName = "scryrb\(getpid() % 100_000)"
  /// Runs of the workload, and getppid calls in each: `runs × calls` events in all.
  static let runs = 40
  static let calls = 5_000

  func workloadOrSkip() -> String? {
    guard kernelAvailable("REPL block-by-block changes") else { return nil }
    let binary = "/tmp/" + Self.workloadName
    guard (try? buildFixture("workload.c", into: binary)) != nil else {
      Issue.record("could not build the workload with cc")
      return nil
    }
    return binary
  }

  /// Starts the workload `runs` times in a row, a short sleep between runs, so it spans about two
  /// seconds, at a pace a debug build's actions keep up with; returns the shell's pid.
  static func startWorkload(_ binary: String) -> pid_t {
    let loop = "i=0; while [ $i -lt \(runs) ]; do '\(binary)' syscall \(calls) >/dev/null; sleep 0.05; i=$((i+1)); done"
    var pid: pid_t = 0
    let words: [String] = ["/bin/sh", "-c", loop]
    let argv = words.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    #expect(posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0)
    return pid
  }

  /// Reads the REPL's output until `pid` has exited (30 s at most).
  static func wait(for pid: pid_t, reading t: PseudoTerminal) {
    var status: Int32 = 0
    let deadline = t.now() + 30
    while t.now() < deadline {
      let reaped = waitpid(pid, &status, WNOHANG)
      if reaped == pid || (reaped < 0 && errno != EINTR) { break }
      t.pause(seconds: 0.05)
    }
    #expect(kill(pid, 0) != 0, "the workload is still running")
  }

  /// The integer after `prefix` in the output (the last occurrence from `from` on).
  static func number(after prefix: String, in t: PseudoTerminal, from: Int) -> UInt64? {
    let text = String(decoding: t.output[from...], as: UTF8.self)
    guard let range = text.range(of: prefix) else { return nil }
    return UInt64(text[range.upperBound...].prefix { $0.isNumber })
  }

  @Test func blocksCountEveryEventWhileAnotherIsAddedAndDetached() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    let total = UInt64(Self.runs * Self.calls)
    let t = try REPLTests.start()
    // Block 1, through the BPF ring: every getppid on the machine, counted per task name at the event.
    t.send("tracepoint:syscalls:sys_enter_getppid { @a[comm] = count(); }\r")
    try #require(t.expect("Attaching 1 probe...") != nil, "\(t.text)")
    // Block 2, through a perf ring whose kernel filter keeps the workload's calls only.
    var mark = t.output.count
    t.send("tracepoint:syscalls:sys_enter_getppid /comm == \"\(Self.workloadName)\"/ { @p = count(); }\r")
    try #require(t.expect("Attaching 1 probe...", after: mark) != nil, "\(t.text)")
    t.pause(seconds: 0.2)
    let before = REPLTests.perfEvents(of: t.pid)
    let worker = Self.startWorkload(workload)
    t.pause(seconds: 0.5)
    // Block 3, added while the workload runs: counted by the kernel, on two probes.
    mark = t.output.count
    t.send("tracepoint:syscalls:sys_enter_getppid, tracepoint:syscalls:sys_enter_getpid { @b = count(); }\r")
    // The prompt shares the CPU with the workload and two blocks' events: on a loaded machine the
    // line takes a while to be read.
    try #require(t.expect("Attaching 2 probes...", after: mark, seconds: 20) != nil, "\(t.text)")
    t.pause(seconds: 0.5)
    let withThird = REPLTests.perfEvents(of: t.pid)
    mark = t.output.count
    t.send(".detach 3\r")
    t.send("@b\r")
    try #require(t.expect("@b: ", after: mark, seconds: 10) != nil, "\(t.text)")
    t.pause(seconds: 0.1)
    let afterDetach = REPLTests.perfEvents(of: t.pid)
    let countedByThird = Self.number(after: "@b: ", in: t, from: mark)
    Self.wait(for: worker, reading: t)
    t.pause(seconds: 0.3)

    mark = t.output.count
    t.send("@a\r")
    try #require(t.expect("@a[\(Self.workloadName)]: ", after: mark, seconds: 10) != nil, "\(t.text)")
    t.send("@p\r")
    try #require(t.expect("@p: ", after: mark) != nil, "\(t.text)")
    t.send("@b\r")
    try #require(t.expect("@b: ", after: mark) != nil, "\(t.text)")
    t.pause(seconds: 0.1)
    // Blocks 1 and 2 ran on through both changes and missed none of the workload's calls.
    #expect(Self.number(after: "@a[\(Self.workloadName)]: ", in: t, from: mark) == total, "\(t.text)")
    #expect(Self.number(after: "@p: ", in: t, from: mark) == total, "\(t.text)")
    // Block 3 counted while attached, and nothing once detached.
    let finalThird = Self.number(after: "@b: ", in: t, from: mark)
    #expect(countedByThird != nil && countedByThird! > 0, "\(t.text)")
    #expect(finalThird == countedByThird, "block 3 counted after it was detached: \(t.text)")
    // Its perf events opened when it attached and closed when it detached; the others' stayed.
    #expect(withThird > before, "block 3 opened no perf event: \(before) then \(withThird)")
    #expect(afterDetach == before, "perf events: \(before) before block 3, \(withThird) with it, \(afterDetach) after .detach 3")

    mark = t.output.count
    t.send(".probes\r")
    try #require(t.expect("events: ", after: mark) != nil, "\(t.text)")
    t.pause(seconds: 0.1)
    let listing = String(decoding: t.output[mark...], as: UTF8.self)
    // Both saw every getppid of the machine (hits, before the predicate), the workload's among them.
    let seenBy1 = Self.number(after: "1: tracepoint:syscalls:sys_enter_getppid  [attached]  ", in: t, from: mark)
    #expect(seenBy1 != nil && seenBy1! >= total, "\(listing)")
    let seenBy2 = Self.number(after: "2: tracepoint:syscalls:sys_enter_getppid  [attached]  ", in: t, from: mark)
    #expect(seenBy2 != nil && seenBy2! >= total, "\(listing)")
    // Block 3 lists each probe's own count (kernel counters), its total what @b counted.
    let third = "3: tracepoint:syscalls:sys_enter_getppid,tracepoint:syscalls:sys_enter_getpid  [detached]  "
    #expect(listing.contains(third + "\(finalThird ?? 0) events\r\n"), "\(listing)")
    let getppid = Self.number(after: "     tracepoint:syscalls:sys_enter_getppid  ", in: t, from: mark)
    let getpid = Self.number(after: "     tracepoint:syscalls:sys_enter_getpid  ", in: t, from: mark)
    #expect(getppid != nil && getpid != nil && getppid! + getpid! == finalThird, "\(listing)")
    REPLTests.leave(t)
  }

  /// A timer block keeps its timer through a change: its runs since it was added match its map.
  @Test func aTimerBlockRunsOnWhileBlocksComeAndGo() throws {
    guard kernelAvailable("REPL block-by-block changes") else { return }
    let t = try REPLTests.start()
    t.send("interval:ms:20 { @ticks = count(); }\r")
    try #require(t.expect("Attaching 1 probe...") != nil, "\(t.text)")
    t.pause(seconds: 0.2)
    for round in 0..<3 {
      let mark = t.output.count
      t.send("tracepoint:sched:sched_switch { @s\(round) = count(); }\r")
      try #require(t.expect("Attaching 1 probe...", after: mark) != nil, "\(t.text)")
      t.pause(seconds: 0.1)
      t.send(".detach \(round + 2)\r")
      t.pause(seconds: 0.1)
    }
    let mark = t.output.count
    t.send(".detach 1\r")
    t.pause(seconds: 0.1)
    t.send(".probes\r")
    try #require(t.expect("events: ", after: mark) != nil, "\(t.text)")
    t.send("@ticks\r")
    try #require(t.expect("@ticks: ", after: mark) != nil, "\(t.text)")
    t.pause(seconds: 0.1)
    let ticks = Self.number(after: "@ticks: ", in: t, from: mark)
    let listed = Self.number(after: "1: interval:ms:20  [detached]  ", in: t, from: mark)
    // Every run of the timer since it was added is counted by .probes, across six changes.
    #expect(ticks != nil && ticks! > 0 && ticks == listed, "\(t.text)")
    REPLTests.leave(t)
  }

  /// `.edit` changing one block replaces that block alone: the other runs on, and the changed
  /// block's map keeps what it counted.
  @Test func editReplacesOnlyTheChangedBlock() throws {
    guard kernelAvailable("REPL block-by-block changes") else { return }
    let home = REPLTests.temporaryHome()
    let session = """
      interval:ms:10 { @a = count(); }
      interval:ms:15 { @b = count(); }
      .wait 300
      @b
      .edit
      .wait 300
      .probes
      .quit

      """
    let fd = open(home + "/edit.txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = session.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    let run = Run.program(
      "/bin/sh", ["-c", "'\(scryBinary())' -i < '\(home)/edit.txt'"], environment: ["VISUAL": "sed -i s/ms:15/ms:30/", "HOME": home])
    #expect(run.status == 0, "\(run.stderr)")
    // Nothing had to be attached again as a whole.
    #expect(!run.stderr.contains("note:"), "\(run.stderr)")
    #expect(run.stdout.contains("Attaching 1 probe...\nAttaching 1 probe...\n"), "\(run.stdout)")
    let lines = run.stdout.split(separator: "\n").map(String.init)
    let beforeEdit = lines.first { $0.hasPrefix("@b: ") }.flatMap { UInt64($0.dropFirst(4)) }
    let atExit = lines.last { $0.hasPrefix("@b: ") }.flatMap { UInt64($0.dropFirst(4)) }
    let ranA = lines.last { $0.hasPrefix("@a: ") }.flatMap { UInt64($0.dropFirst(4)) }
    let listedA = lines.first { $0.hasPrefix("1: interval:ms:10  [attached]  ") }.flatMap { UInt64($0.split(separator: " ")[3]) }
    // Block 2 became `interval:ms:30`, attached anew (announced once more), its map going on.
    #expect(run.stdout.contains("Attaching 1 probe...\n"), "\(run.stdout)")
    #expect(lines.contains { $0.hasPrefix("2: interval:ms:30  [attached]  ") }, "\(run.stdout)")
    #expect(beforeEdit != nil && atExit != nil && atExit! > beforeEdit!, "\(run.stdout)")
    // Block 1 ran through the edit: every run since it was added is in its map.
    #expect(listedA != nil && ranA != nil && listedA! > 0 && listedA! <= ranA!, "\(run.stdout)")
  }

  /// A change the maps cannot follow (a map's value grows) attaches every block again, and says so.
  @Test func aMapChangingItsTypeReattachesEverythingAndSaysSo() throws {
    guard kernelAvailable("REPL block-by-block changes") else { return }
    let t = try REPLTests.start()
    t.send("tracepoint:sched:sched_switch { @last = comm; @n = count(); }\r")
    try #require(t.expect("Attaching 1 probe...") != nil, "\(t.text)")
    t.pause(seconds: 0.2)
    let mark = t.output.count
    t.send("BEGIN { @last = \"a string longer than any task name\"; }\r")
    #expect(
      t.expect("note: @last changed its type, so every block was attached again: events during the switch were missed", after: mark)
        != nil, "\(t.text)")
    t.pause(seconds: 0.2)
    let listing = t.output.count
    t.send(".probes\r")
    #expect(t.expect("1: tracepoint:sched:sched_switch  [attached]  ", after: listing) != nil, "\(t.text)")
    // The count went on from where it was: the map moved into the new program.
    t.send("@n\r")
    #expect(t.expect("@n: ", after: listing) != nil, "\(t.text)")
    t.pause(seconds: 0.1)
    #expect((Self.number(after: "@n: ", in: t, from: listing) ?? 0) > 0, "\(t.text)")
    REPLTests.leave(t)
  }
}
