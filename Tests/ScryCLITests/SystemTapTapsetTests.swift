import Glibc
import Testing

/// SystemTap's stacks, string helpers, timers on jiffies, the `error` probe and perf's numbered
/// events, each run live with the output SystemTap's tapset reference and runtime give.
@Suite(.serialized) struct SystemTapTapsetTests {
  /// (script, exact standard output)
  static let exact: [(String, String)] = [
    // A global takes its type from what it is assigned, a string local too (printed at exit).
    ("global g; probe begin { s = \"x\"; g = s; exit() }", "g=\"x\"\n"),
    ("global a; probe begin { k = \"key\"; a[k]++; exit() }", "a[\"key\"]=0x1\n"),
    ("global t; probe begin { k = \"k\"; t[k, 3] <<< 2; exit() }", "t[\"k\",3] @count=1 @min=2 @max=2 @sum=2 @avg=2\n"),
    ("global g; function name() { return \"fn\" } probe begin { v = name(); g = v; exit() }", "g=\"fn\"\n"),
    // str_replace: every occurrence, left to right; an empty target changes nothing.
    ("probe begin { println(str_replace(\"hello world hello\", \"hello\", \"bye\")); println(str_replace(\"aaa\", \"aa\", \"b\")); println(str_replace(\"abc\", \"\", \"x\")); exit() }",
     "bye world bye\nba\nabc\n"),
    ("probe begin { s = \"\"; for (i = 0; i < 40; i++) s .= \"ab\"; println(strlen(str_replace(s, \"a\", \"xyz\"))); exit() }", "127\n"),
    // stringat: the byte at a 0-based position; isdigit: whether the first character is a digit.
    ("probe begin { printf(\"%d %d %d\\n\", stringat(\"abc\", 0), stringat(\"abc\", 2), stringat(\"abc\", 3)); exit() }", "97 99 0\n"),
    ("probe begin { printf(\"%d %d %d %d\\n\", isdigit(\"7up\"), isdigit(\"up7\"), isdigit(\"\"), isdigit(\"0\")); exit() }", "1 0 0 1\n"),
    ("probe begin { println(string_quoted(\"a\\\"b\\n\")); exit() }", "\"a\\\"b\\n\"\n"),
    // tz_ctime is ctime of the local time with the zone's name, as the tapset writes it.
    ("probe begin { println(tz_ctime(1234567890) == ctime(1234567890 - tz_gmtoff()) . \" \" . tz_name()); exit() }", "1\n"),
    // The error probe runs when error() ended the run, and end probes do not; without one, end runs.
    ("probe begin { println(\"a\"); error(\"bad\") } probe end { println(\"end\") } probe error { println(\"error probe\") }",
     "a\nERROR: bad\nerror probe\n"),
    ("probe begin { println(\"a\"); exit() } probe end { println(\"end\") } probe error { println(\"error probe\") }", "a\nend\n"),
    ("probe begin { error(\"x\") } probe end, error { println(\"once\") }", "ERROR: x\nonce\n"),
    ("global n; probe begin { n = 1; error(\"x\") }", "ERROR: x\n"),
    ("probe begin { try { error(\"caught\") } catch (m) { println(m) } exit() } probe end { println(\"end\") } probe error { println(\"no\") }",
     "caught\nend\n"),
    // timer.jiffies(N): every N ticks of the kernel's clock; .randomize as for the other units.
    ("global n; probe timer.jiffies(2) { n++; if (n == 3) { println(n); exit() } }", "3\n"),
    ("global n; probe timer.jiffies(2).randomize(1) { n++; if (n == 3) { println(n); exit() } }", "3\n"),
    // perf.type(1).config(0) is the software cpu-clock event.
    ("global n; probe perf.type(1).config(0).sample(1000000) { n++ } probe timer.ms(200) { println(n > 0); exit() }", "1\n"),
  ]

  @Test func scriptsPrintWhatSystemTapDocuments() {
    guard kernelAvailable("SystemTap tapset functions") else { return }
    for (script, expected) in Self.exact {
      let run = scry("-e", script)
      #expect(run.stdout == expected, "\(script)\n\(run.stdout)\(run.stderr)")
    }
  }

  /// tz_name() is the zone Scry runs in, as the C library names it.
  @Test func timeZoneIsTheLocalOne() {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    let zone = parts.tm_zone.map { String(cString: $0) } ?? "UTC"
    let run = scry("-e", "probe begin { printf(\"%s %d\\n\", tz_name(), tz_gmtoff()); exit() }")
    #expect(run.stdout == "\(zone) \(-Int(parts.tm_gmtoff))\n", "\(run.stdout)\(run.stderr)")
  }

  /// print_backtrace(): one line per frame, ` 0x<16 digits> : symbol+0xoff/0xsize [kernel]`, as
  /// SystemTap's runtime prints a full symbol (`_STP_SYM_FULL`); sprint_backtrace() the brief form.
  @Test func kernelBacktraces() {
    guard kernelAvailable("print_backtrace()") else { return }
    let run = scry("-c", "/bin/true", "-e", """
      probe kernel.trace("sched:sched_process_exec") {
        if (pid() == target()) { print_backtrace(); println("--"); printf("%s", sprint_backtrace()); exit() }
      }
      """)
    #expect(run.status == 0, "\(run.stderr)")
    guard let middle = run.stdout.firstRange(of: "--\n") else {
      Issue.record("no separator: \(run.stdout)")
      return
    }
    let full = run.stdout[..<middle.lowerBound].split(separator: "\n")
    let brief = run.stdout[middle.upperBound...].split(separator: "\n")
    #expect(!full.isEmpty && full.count == brief.count, "\(run.stdout)")
    for (line, short) in zip(full, brief) {
      #expect(isFullFrame(line, module: "kernel"), "\(line)")
      // The brief line is the full one's symbol and offset, without address and size.
      let symbol = line.split(separator: " ")[2]
      let withoutSize = symbol[..<(symbol.lastIndex(of: "/") ?? symbol.endIndex)]
      #expect(short == "\(withoutSize) [kernel]", "\(short) vs \(line)")
    }
    #expect(run.stdout.contains("execve"), "\(run.stdout)")
  }

  /// print_ubacktrace() in a uprobe: the function, its caller, each with its ELF size and the
  /// binary's path; a stack kept as an array key prints with print_ustack().
  @Test func userBacktraces() throws {
    guard kernelAvailable("print_ubacktrace()") else { return }
    let binary = "/tmp/scry-stap-\(getpid())-ubacktrace"
    try buildFixture("uprobe_target.c", into: binary, flags: ["-O1", "-fno-omit-frame-pointer"])
    defer { unlink(binary) }
    let sizes = Run.program("/usr/bin/nm", ["-S", binary]).stdout.split(separator: "\n").reduce(into: [String: String]()) { map, line in
      let f = line.split(separator: " ")
      if f.count == 4, let size = UInt64(f[1], radix: 16) { map[String(f[3])] = String(size, radix: 16) }
    }
    let targetSize = try #require(sizes["target"])
    let run = scry("-c", "\(binary) 3 tag", "-e", """
      global stacks
      probe process("\(binary)").function("target") {
        if (++calls == 1) { print_ubacktrace(); printf("%s", sprint_ubacktrace()) }
        stacks[ubacktrace()] <<< 1
      }
      global calls
      probe end { foreach (s in stacks) { print_ustack(s); printf("count %d\\n", @count(stacks[s])) } }
      """)
    #expect(run.status == 0, "\(run.stderr)")
    // The fixture's own `sum=` line comes first.
    let lines = run.stdout.split(separator: "\n").filter { !$0.hasPrefix("sum=") }
    try #require(lines.count >= 4, "\(run.stdout)")
    #expect(lines[0].hasSuffix(" : target+0x0/0x\(targetSize) [\(binary)]"), "\(lines[0])")
    #expect(isFullFrame(lines[0], module: binary), "\(lines[0])")
    #expect(lines[1].contains(" : main+0x") && lines[1].hasSuffix("/0x\(sizes["main"] ?? "?") [\(binary)]"), "\(lines[1])")
    let name = String(binary.split(separator: "/").last!)
    #expect(run.stdout.contains("\ntarget+0x0 [\(name)]\nmain+0x"), "\(run.stdout)")
    // The three calls share one stack: printed once at the end, with its count; `calls`, only
    // incremented, is printed at exit (SystemTap counts `++` as a write alone).
    let firstTwo = "\(lines[0])\n\(lines[1])\n"
    #expect(run.stdout.contains(firstTwo), "\(run.stdout)")
    #expect(run.stdout.hasSuffix("count 3\ncalls=0x3\n"), "\(run.stdout)")
  }

  /// returnval() is a return probe's value; usymname() names the function at a user address.
  @Test func returnValuesAndSymbolNames() throws {
    guard kernelAvailable("returnval(), usymname()") else { return }
    let failed = scry("-c", "/bin/cat /nonexistent", "-e",
      "probe syscall.openat.return { if (pid() == target() && returnval() < 0) { printf(\"%d\\n\", returnval()); exit() } }")
    #expect(failed.stdout == "-2\n", "\(failed.stdout)\(failed.stderr)")
    let binary = "/tmp/scry-stap-\(getpid())-usymname"
    try buildFixture("uprobe_target.c", into: binary)
    defer { unlink(binary) }
    let named = scry("-c", "\(binary) 1 tag", "-e",
      "probe process(\"\(binary)\").function(\"register_callback\") { printf(\"%s from %s\\n\", usymname(pointer_arg(1)), ppfunc()) }")
    #expect(named.stdout.hasSuffix("target from register_callback\n"), "\(named.stdout)\(named.stderr)")
  }

  /// `syscall.*` that reads only `name` is the one raw_syscalls tracepoint, the name looked up by
  /// the syscall's number; one that reads an argument is a tracepoint per syscall.
  @Test func everySyscallOnOneTracepoint() {
    guard kernelAvailable("syscall.* on raw_syscalls") else { return }
    let script = "global c; probe syscall.* { if (pid() == target()) c[name]++ } probe end { foreach (n+ in c) if (n == \"openat\" || n == \"close\" || n == \"read\") printf(\"%s %d\\n\", n, c[n] > 0) }"
    let plan = scry("--plan", "-e", script)
    #expect(plan.stdout.contains("tracepoint:raw_syscalls:sys_enter") && !plan.stdout.contains("sys_enter_openat"), "\(plan.stdout)")
    let run = scry("-c", "/bin/cat /etc/hostname", "-e", script)
    #expect(run.stdout.hasSuffix("close 1\nopenat 1\nread 1\n"), "\(run.stdout)\(run.stderr)")
    let fields = scry("--plan", "-e", "probe syscall.* { if (pid() == 1) printf(\"%s(%s)\\n\", name, argstr) }")
    #expect(fields.stdout.contains("sys_enter_write") && !fields.stdout.contains("raw_syscalls"), "\(fields.stdout)\(fields.stderr)")
  }

  /// `timer.jiffies(N)` is an interval of N ticks: the kernel's tick is the coarse clock's resolution.
  @Test func jiffiesAreTheKernelsTick() {
    var tick = timespec()
    clock_getres(CLOCK_MONOTONIC_COARSE, &tick)
    let run = scry("--plan", "-e", "probe timer.jiffies(25) { exit() }")
    #expect(run.stdout.contains("interval:ns:\(25 * tick.tv_nsec)"), "\(run.stdout)\(run.stderr)")
  }

  @Test func errorsAreLocatedWithHints() {
    let cases: [(String, String)] = [
      ("probe perf.type(4).config(0) { }", "perf event type 4 is not one Scry's probes attach"),
      ("probe perf.type(1).config(40) { }", "perf software event 40 is not known"),
      ("probe begin { println(str_replace(\"a\", \"b\")) }", "'str_replace()' takes 3 argument(s)"),
      ("probe begin { println(stringat(1, 1)) }", "stringat() takes a string, not int64"),
      ("probe begin { print_backtrace(1) }", "'print_backtrace()' takes no arguments"),
      // A stack kept in a variable has no text (sprint_stack(backtrace()) is sprint_backtrace()).
      ("probe begin { bt = backtrace(); println(sprint_stack(bt)) }", "'sprint_stack()' is not supported"),
      ("probe syscall.openat { println(user_string($filename, \"?\")) }", "'user_string()' with a default for an unreadable address is not supported"),
      ("global v; probe begin { v <<< 1; println(@variance(v, 2)); println(@variance(v)) }", "'v' is read with two different @variance shifts"),
      ("global v; probe begin { v <<< 1; println(@variance(v, 99)) }", "@variance's bit shift is a literal number from 0 to 62"),
      ("probe timer.jiffie(1) { }", "did you mean 'timer.jiffies'?"),
    ]
    for (script, message) in cases {
      let run = scry("--dry-run", "-e", script)
      #expect(run.status == 1, "\(script)")
      #expect(run.stderr.contains(message), "\(script)\n\(run.stderr)")
      #expect(run.stderr.contains("-e:1:"), "\(run.stderr)")
    }
  }

  /// SystemTap's stack modes are its own: a bpftrace program cannot name them.
  @Test func systemTapStackModesAreNotBpftraces() {
    let run = scry("--dry-run", "-e", "BEGIN { print(kstack(systemtap)) }")
    #expect(run.status == 1, "\(run.stdout)")
    #expect(run.stderr.contains("kstack() takes a mode (bpftrace, perf, raw)"), "\(run.stderr)")
  }

  /// perf.type(0) is hardware: refused where there is no PMU, as perf.hw is.
  @Test func hardwareTypeIsHardware() {
    let run = scry("--plan", "-e", "probe perf.type(0).config(1) { }")
    #expect(run.stdout.contains("hardware:instructions"), "\(run.stdout)\(run.stderr)")
  }
}

/// The REPL in SystemTap's language: entries whose first word is `probe`, `global` or `function`
/// join a SystemTap session; statements run once as a `probe begin`; bpftrace blocks are refused.
@Suite(.serialized) struct SystemTapREPLTests {
  static func replay(_ session: String) -> Run {
    let path = "/tmp/scry-stap-repl-\(getpid()).txt"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = session.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    defer { unlink(path) }
    return Run.program("/bin/sh", ["-c", "'\(scryBinary())' -i < '\(path)'"])
  }

  @Test func aSystemTapSession() {
    guard kernelAvailable("SystemTap REPL") else { return }
    let saved = "/tmp/scry-stap-repl-\(getpid()).stp"
    defer { unlink(saved) }
    let run = Self.replay("""
      global n
      function twice(x) { return 2 * x }
      probe timer.ms(10) {
        n++
        if (n == 3) { printf("n=%d twice=%d\\n", n, twice(n)); exit() }
      }
      printf("typed %d\\n", twice(4))
      BEGIN { printf("bpftrace\\n") }
      .save \(saved)

      """)
    #expect(run.status == 0, "\(run.stderr)")
    // The statement runs while the timer is attached; the run ends at exit(); globals are not
    // printed as Scry's maps when the probes stop.
    #expect(run.stdout == "Attaching 1 probe...\ntyped 8\nsaved 1 block to \(saved)\nn=3 twice=6\n", "\(run.stdout)")
    #expect(run.stderr.contains("error: this session runs SystemTap's language (its first entry did): a bpftrace block cannot join it"), "\(run.stderr)")
    // `.save` writes the entries as typed: a script that runs alone.
    #expect(readWhole(saved).hasPrefix("global n\nfunction twice(x) { return 2 * x }\nprobe timer.ms(10) {\n"), "\(readWhole(saved))")
    #expect(scry(saved).stdout == "n=3 twice=6\n")
  }

  @Test func aBpftraceSessionRefusesSystemTap() {
    let run = Self.replay("BEGIN { @x = 1; }\nprobe begin { println(1) }\n.clear\nprobe begin { println(\"after clear\") }\n")
    #expect(run.stderr.contains("error: this session runs bpftrace's language (its first entry did): a SystemTap entry cannot join it"), "\(run.stderr)")
    #expect(run.stdout.contains("after clear\n"), "\(run.stdout)")
  }

  @Test func errorsPointIntoTheEntry() {
    let run = Self.replay("global c\nprobe begin { c[1] = excname() }\n")
    #expect(run.stderr.contains("unknown function 'excname'"), "\(run.stderr)")
    #expect(run.stderr.contains("repl:1:"), "\(run.stderr)")
  }
}

/// ` 0x<16 hex digits> : name+0x<hex>/0x<hex> [module]`
private func isFullFrame(_ line: Substring, module: String) -> Bool {
  let fields = line.split(separator: " ", omittingEmptySubsequences: false)
  guard fields.count == 5, fields[0].isEmpty, fields[1].hasPrefix("0x"), fields[1].count == 18, fields[2] == ":",
    fields[4] == "[\(module)]"
  else { return false }
  let symbol = fields[3]
  guard let plus = symbol.lastIndex(of: "+"), let slash = symbol.lastIndex(of: "/"), plus < slash else { return false }
  return symbol[symbol.index(after: plus)...].hasPrefix("0x") && symbol[symbol.index(after: slash)...].hasPrefix("0x")
}
