import Glibc
import Testing

/// SystemTap scripts run live through the SystemTap front end, each with the output SystemTap
/// documents for it (the beginners' guide and language reference idioms).
@Suite(.serialized) struct SystemTapTests {
  /// (script, exact standard output)
  static let exact: [(String, String)] = [
    ("probe begin { println(\"hello world\"); exit() }", "hello world\n"),
    ("probe begin { print(\"hello \"); print(42); print(\"\\n\"); exit() }", "hello 42\n"),
    ("probe begin { printf(\"%d %s %x\\n\", 10, \"ten\", 255); exit() }", "10 ten ff\n"),
    ("probe begin { printf(\"%s\\n\", 5); exit() }", "5\n"),
    ("probe begin { println(\"a\" . \"b\" . \"c\"); exit() }", "abc\n"),
    ("probe begin { printf(\"[%s]\\n\", sprintf(\"%d-%d\", 1, 2)); exit() }", "[1-2]\n"),
    ("probe begin { printdln(\",\", 1, 2, 3); exit() }", "1,2,3\n"),
    ("global n; probe begin { n = 5; exit() }", "n=0x5\n"),
    ("global s; probe begin { s = \"text\"; exit() }", "s=\"text\"\n"),
    ("global a; probe begin { a[\"one\"] = 1; exit() }", "a[\"one\"]=0x1\n"),
    ("global a; probe begin { a[\"two\", 2] = 4; exit() }", "a[\"two\",2]=0x4\n"),
    ("global a; probe begin { a[1] = 1; a[2] = 3; a[3] = 2; exit() }", "a[2]=0x3\na[3]=0x2\na[1]=0x1\n"),
    ("global x; probe begin { if (0) x <<< 1; exit() }", "x @count=0x0\n"),
    ("global x; probe begin { x <<< 1; x <<< 2; x <<< 3; exit() }", "x @count=3 @min=1 @max=3 @sum=6 @avg=2\n"),
    ("global x; probe begin { x <<< 4; x <<< 8; printf(\"%d %d %d %d %d\\n\", @count(x), @sum(x), @min(x), @max(x), @avg(x)); exit() }",
     "2 12 4 8 6\n"),
    ("global x; probe begin { x[\"a\"] <<< 3; x[\"a\"] <<< 5; x[\"b\"] <<< 1; printf(\"%d %d\\n\", @count(x[\"a\"]), @avg(x[\"a\"])); exit() }",
     "2 4\n"),
    ("probe begin { for (i = 0; i < 3; i++) printf(\"%d\", i); println(\"\"); exit() }", "012\n"),
    ("probe begin { i = 3; while (i > 0) { print(i); i-- } println(\"\"); exit() }", "321\n"),
    ("probe begin { x = 7; if (x > 5) println(\"big\") else println(\"small\"); exit() }", "big\n"),
    ("global c; probe begin { c[1] = 10; c[2] = 30; c[3] = 20; foreach (k in c-) printf(\"%d \", k); println(\"\"); exit() }",
     "2 3 1 \n"),
    ("global c; probe begin { c[1] = 10; c[2] = 30; c[3] = 20; foreach (k+ in c) printf(\"%d \", k); println(\"\"); exit() }",
     "1 2 3 \n"),
    ("global c; probe begin { c[1] = 10; c[2] = 30; c[3] = 20; foreach (k in c- limit 2) printf(\"%d=%d \", k, c[k]); println(\"\"); exit() }",
     "2=30 3=20 \n"),
    ("global c; probe begin { c[\"b\", 1] = 1; c[\"a\", 2] = 2; foreach ([s+, n] in c) printf(\"%s%d \", s, n); println(\"\"); exit() }",
     "a2 b1 \n"),
    ("global c; probe begin { c[1] = 1; c[2] = 2; delete c[1]; printf(\"%d %d\\n\", 1 in c, 2 in c); exit() }", "0 1\n"),
    ("global c; probe begin { c[1] = 1; delete c; printf(\"%d\\n\", 1 in c); exit() }", "0\n"),
    ("function add(a:long, b:long) { return a + b } probe begin { println(add(2, 3)); exit() }", "5\n"),
    ("function sign(x) { if (x < 0) return -1; return 1 } probe begin { printf(\"%d %d\\n\", sign(-4), sign(4)); exit() }", "-1 1\n"),
    ("function greet(who:string) { printf(\"hi %s\\n\", who) } probe begin { greet(\"you\"); exit() }", "hi you\n"),
    ("probe begin { println(isinstr(\"systemtap\", \"tap\")); exit() }", "1\n"),
    ("global n; probe timer.ms(10) { n++; if (n == 3) { println(n); exit() } }", "3\n"),
    ("probe begin { println(\"first\") } probe end { println(\"last\") } probe timer.ms(20) { exit() }", "first\nlast\n"),
    ("global x = 10; probe begin { println(x); exit() }", "10\n"),
    ("probe begin { next; println(\"never\") } probe begin { println(\"second\"); exit() }", "second\n"),
    ("probe begin { println(ctime(0)); println(ctime(1234567890)); printf(\"%d\\n\", strlen(ctime())); exit() }",
     "Thu Jan  1 00:00:00 1970\nFri Feb 13 23:31:30 2009\n24\n"),
    ("global n; probe timer.ms(5).randomize(2) { n++; if (n == 3) { println(n); exit() } }", "3\n"),
    // try/catch: error() in the body is caught, its message in the catch variable.
    ("probe begin { try { println(\"a\"); error(\"boom\"); println(\"never\") } catch (msg) { println(\"caught: \" . msg) } println(\"after\"); exit() }",
     "a\ncaught: boom\nafter\n"),
    ("probe begin { try { for (i = 0; i < 5; i++) { if (i == 2) error(sprintf(\"at %d\", i)); print(i) } println(\"never\") } catch (m) { println(\" \" . m) } try { println(\"fine\") } catch { println(\"no\") } exit() }",
     "01 at 2\nfine\n"),
    // Probe aliases: the prologue (`=`) runs before the body, the epilogue (`+=`) after, in one
    // scope; an alias may be defined after its use.
    ("probe later { println(\"body \" . who); exit() } probe later = begin { who = \"me\"; println(\"prologue\") }", "prologue\nbody me\n"),
    ("probe ep += begin { println(\"epilogue\"); exit() } probe ep { println(\"body\") }", "body\nepilogue\n"),
    // text_str: escapes as the runtime's _stp_text_str (C escapes, \ooo, \uXXXX); text_strn quotes.
    ("probe begin { println(text_str(\"a\\tb\\\"c\\\\d\\n\")); println(text_str(\"caf\\303\\251 \\001\")); println(text_strn(\"hello\", 3, 1)); exit() }",
     "a\\tb\\\"c\\\\d\\n\ncaf\\u00e9 \\001\n\"hel\"\n"),
    // Numbers are 64-bit in every conversion, as SystemTap's longs.
    ("global g; probe begin { n = 4999950000; printf(\"%d %x %u\\n\", n, n, n); println(n); g = n; exit() }",
     "4999950000 12a052eb0 4999950000\n4999950000\ng=0x12a052eb0\n"),
    // @variance: SystemTap's integer Welford update (runtime/stat-common.c), read as stat.c reads
    // it: the running mean (1) is 1 from the exact one (2), so S1 = 4 joins S2 = 3 * 4: 16 / 3.
    ("global x; probe begin { x <<< 1; x <<< 2; x <<< 3; x <<< 4; println(@variance(x)); exit() }", "5\n"),
    ("global x; probe begin { x[\"a\"] <<< 10; println(@variance(x[\"a\"])); x[\"a\"] <<< 20; x[\"a\"] <<< 60; printf(\"%d\\n\", @variance(x[\"a\"])); exit() }",
     "0\n700\n"),
    ("global x; probe begin { x <<< 5; x <<< -5; x <<< -7; println(@variance(x)); exit() }", "42\n"),
    // Strings built at the event: sprintf into a variable, `.` and `.=` outside printing.
    ("probe begin { s = sprintf(\"%d-%s\", 42, \"x\"); println(s); exit() }", "42-x\n"),
    ("probe begin { s = \"a\"; for (i = 0; i < 3; i++) s .= sprint(i); println(s); exit() }", "a012\n"),
    ("global g; probe begin { g = execname() . \":\" . sprint(7); g .= \"!\"; println(g); exit() }", "scry:7!\n"),
    ("probe begin { s = sprintf(\"%5d|%-4s|\", 7, \"ab\"); println(s); exit() }", "    7|ab  |\n"),
    ("function tag(x) { return sprintf(\"<%d>\", x) } probe begin { s = tag(3) . tag(4); printf(\"%s %d\\n\", s, strlen(s)); exit() }",
     "<3><4> 6\n"),
    ("global names; probe begin { names[sprintf(\"k%d\", 1)] = 5; foreach (k in names) printf(\"%s=%d\\n\", k, names[k]); exit() }", "k1=5\n"),
    // MAXSTRINGLEN is 128: a built string keeps 127 bytes.
    ("probe begin { s = \"\"; for (i = 0; i < 50; i++) s .= \"abc\"; println(strlen(s)); exit() }", "127\n"),
    ("probe begin { println(strlen(\"\")); println(strlen(\"systemtap\")); exit() }", "0\n9\n"),
    ("probe begin { println(substr(\"systemtap\", 6, 3)); println(substr(\"systemtap\", 0, 6)); println(substr(\"abc\", 5, 2) . \"|\"); exit() }",
     "tap\nsystem\n|\n"),
    ("probe begin { printf(\"%d %d %d %d\\n\", strtol(\"ff\", 16), strtol(\"-12\", 10), strtol(\"0x10\", 0), strtol(\"z\", 10)); exit() }",
     "255 -12 16 0\n"),
    ("probe begin { printf(\"%d %d %d\\n\", gettimeofday_ms() / 1000 - gettimeofday_s() <= 1, gettimeofday_us() / 1000 >= gettimeofday_ms() - 1, gettimeofday_ns() / 1000 >= gettimeofday_us() - 1); exit() }",
     "1 1 1\n"),
  ]

  /// The histogram text of SystemTap's language reference (8.4.1, @hist_linear), for data shaped
  /// like its example, and a @hist_log drawn by the same rules.
  @Test func histogramsAsSystemTapDrawsThem() {
    guard kernelAvailable("SystemTap histograms") else { return }
    let linear = scry("-e", """
      global reads
      probe begin {
        for (i = 0; i < 1650; i++) reads <<< 50
        for (i = 0; i < 8; i++) reads <<< 300
        reads <<< 1500
        print(@hist_linear(reads, 0, 10240, 200))
        exit()
      }
      """)
    let bar = String(repeating: "@", count: 50)
    let gap = String(repeating: " ", count: 50)
    #expect(linear.stdout == """
      value |\(String(repeating: "-", count: 50)) count
          0 |\(bar) 1650
        200 |\(gap)    8
        400 |\(gap)    0
        600 |\(gap)    0
            ~
       1000 |\(gap)    0
       1200 |\(gap)    0
       1400 |\(gap)    1
       1600 |\(gap)    0
       1800 |\(gap)    0


      """, "\(linear.stdout)\(linear.stderr)")
    let log = scry("-e", "global l; probe begin { l <<< 0; l <<< 3; l <<< 3; print(@hist_log(l)); exit() }")
    #expect(log.stdout == """
      value |\(String(repeating: "-", count: 50)) count
          0 |@\(String(repeating: " ", count: 50))1
          1 |\(gap) 0
          2 |@@\(String(repeating: " ", count: 49))2
          4 |\(gap) 0
          8 |\(gap) 0


      """, "\(log.stdout)\(log.stderr)")
  }

  /// `print(@hist_log(x[k]))` in a foreach: each key's own histogram.
  @Test func oneKeysHistogram() {
    guard kernelAvailable("SystemTap per-key histogram") else { return }
    let run = scry("-e", """
      global x
      probe begin { x["a"] <<< 1; x["a"] <<< 3; x["b"] <<< 100; foreach (k+ in x) { printf("%s:\\n", k); print(@hist_log(x[k])) } exit() }
      """)
    let gap = String(repeating: " ", count: 50)
    let header = "value |\(String(repeating: "-", count: 50)) count\n"
    #expect(run.stdout == "a:\n" + header + """
          0 |\(gap) 0
          1 |@\(String(repeating: " ", count: 50))1
          2 |@\(String(repeating: " ", count: 50))1
          4 |\(gap) 0
          8 |\(gap) 0

      b:

      """ + header + """
         16 |\(gap) 0
         32 |\(gap) 0
         64 |@\(String(repeating: " ", count: 50))1
        128 |\(gap) 0
        256 |\(gap) 0


      """, "\(run.stdout)\(run.stderr)")
  }

  /// @hist_linear's edges as runtime/stat-common.c buckets them: the last row holds
  /// [high, high + width), the overflow row (labelled `>high`) what is past it, `<low` what is below.
  @Test func linearHistogramEdges() {
    guard kernelAvailable("SystemTap @hist_linear edges") else { return }
    let run = scry("-e", "global x; probe begin { x <<< 0; x <<< 100; x <<< 105; x <<< 110; x <<< 500; x <<< -1; print(@hist_linear(x, 0, 100, 10)); exit() }")
    let gap = String(repeating: " ", count: 50)
    let one = "@" + String(repeating: " ", count: 50)
    let two = "@@" + String(repeating: " ", count: 49)
    #expect(run.stdout == """
      value |\(String(repeating: "-", count: 50)) count
         <0 |\(one)1
          0 |\(one)1
         10 |\(gap) 0
         20 |\(gap) 0
            ~
         80 |\(gap) 0
         90 |\(gap) 0
        100 |\(two)2
       >100 |\(two)2


      """, "\(run.stdout)\(run.stderr)")
  }

  @Test func scriptsPrintWhatSystemTapDocuments() {
    guard kernelAvailable("SystemTap scripts") else { return }
    for (script, expected) in Self.exact {
      let run = scry("-e", script)
      #expect(run.status == 0, "\(script)\n\(run.stderr)")
      #expect(run.stdout == expected, "\(script)\n\(run.stdout)")
    }
  }

  @Test func theHeadlineLineRunsUnchanged() {
    guard kernelAvailable("kernel.trace(\"sys_enter\")") else { return }
    let run = scry("-c", "/bin/true", "-e", "probe kernel.trace(\"sys_enter\") { if (pid() == target()) println(execname()) }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("true\n"), "\(run.stdout)")
  }

  @Test func aProbeAliasOfATracepoint() {
    guard kernelAvailable("SystemTap probe alias") else { return }
    let run = scry("-c", "/bin/true", "-e", """
      probe myexec = kernel.trace("sched:sched_process_exec") { who = execname() }
      probe myexec { if (pid() == target()) println("exec " . who) }
      """)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "exec true\n", "\(run.stdout)")
  }

  @Test func syscallAliasesCountByName() {
    guard kernelAvailable("syscall.*") else { return }
    let script = """
      global calls
      probe syscall.openat, syscall.close { if (pid() == target()) calls[name]++ }
      probe end { foreach (n+ in calls) printf("%s %d\\n", n, calls[n] > 0) }
      """
    let run = scry("-c", "/bin/cat /etc/hostname", "-e", script)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("close 1\nopenat 1\n"), "\(run.stdout)")
  }

  /// `argstr`: the arguments in order (an `int` as one, `const char *` quoted, other pointers in hex).
  @Test func argstrListsTheArguments() {
    guard kernelAvailable("syscall argstr") else { return }
    let run = scry("-c", "/bin/cat /etc/hostname", "-e", """
      probe syscall.openat { if (pid() == target() && isinstr(argstr, "hostname")) printf("%s(%s)\\n", name, argstr) }
      global last
      probe syscall.close { if (pid() == target()) last = name . "(" . argstr . ")" }
      """)
    #expect(run.status == 0, "\(run.stderr)")
    // cat's own output comes first; `last` is printed at exit, as SystemTap prints globals.
    #expect(run.stdout.contains("openat(-100, \"/etc/hostname\", 0, 0)\n"), "\(run.stdout)")
    #expect(run.stdout.contains("last=\"close("), "\(run.stdout)")
    let misuse = scry("--dry-run", "-e", "probe begin { println(argstr) }")
    #expect(misuse.stderr.contains("'argstr' is read in a syscall's entry probe"), "\(misuse.stderr)")
  }

  @Test func syscallReturnReadsTheReturnValue() {
    guard kernelAvailable("syscall.NAME.return") else { return }
    let run = scry("-c", "/bin/cat /nonexistent", "-e",
      "probe syscall.openat.return { if (pid() == target() && $return < 0) printf(\"%s %d\\n\", name, $return) }")
    #expect(run.stdout.contains("openat -2\n"), "\(run.stdout)\(run.stderr)")
  }

  @Test func processFunctionOnAFixture() throws {
    guard kernelAvailable("process().function()") else { return }
    let binary = NSTemporaryPath("stap_uprobe_target")
    try buildFixture("uprobe_target.c", into: binary)
    defer { unlink(binary) }
    let script = """
      global calls, total
      probe process("\(binary)").function("target") { calls++; total <<< uint_arg(1) }
      probe end { printf("calls=%d sum=%d\\n", calls, @sum(total)) }
      """
    let run = scry("-c", "\(binary) 5 tag", "-e", script)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("calls=5 sum=10\n"), "\(run.stdout)")
  }

  /// Probe points beyond begin/end: process.begin, perf.sw, timer.hz, timer.profile, $$vars, @entry.
  @Test func moreProbePoints() {
    guard kernelAvailable("SystemTap probe points") else { return }
    let cases: [([String], String, String)] = [
      (["-c", "/bin/true"], "probe process.begin { if (pid() == target()) println(execname()) }", "true\n"),
      ([], "global n; probe perf.sw.cpu_clock.sample(1000000) { n++ } probe timer.ms(200) { println(n > 0); exit() }", "1\n"),
      ([], "global n; probe timer.hz(100) { n++; if (n == 5) { println(\"five\"); exit() } }", "five\n"),
      ([], "probe timer.profile { println(cpu() >= 0); exit() }", "1\n"),
      (["-c", "/bin/true"], "probe kernel.trace(\"sched:sched_process_exec\") { if (pid() == target()) println($$vars) }",
       "filename=/bin/true pid=0x"),
      (["-c", "/bin/cat /etc/hostname"],
       "global lat; probe syscall.openat.return { if (pid() == target()) lat <<< local_clock_ns() - @entry(local_clock_ns()) } probe end { printf(\"%d\\n\", @count(lat) > 0 && @min(lat) >= 0) }",
       "1\n"),
    ]
    for (options, script, expected) in cases {
      let run = Run.program(scryBinary(), options + ["-e", script])
      #expect(run.status == 0, "\(script)\n\(run.stderr)")
      #expect(run.stdout.hasPrefix(expected) || run.stdout.hasSuffix(expected), "\(script)\n\(run.stdout)")
    }
  }

  /// `-x PID`: `target()` is that pid, and the run follows the process until it exits.
  @Test func targetIsTheDashXProcess() throws {
    guard kernelAvailable("stap -x") else { return }
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = (["/bin/sh", "-c", "sleep 1; exec /bin/cat /etc/hostname"] as [String]).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    try #require(posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0)
    let run = scry("-x", "\(pid)", "-e", "global n; probe syscall.openat { if (pid() == target()) n++ } probe end { println(n > 0 && target() == \(pid)) }")
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "1\n", "\(run.stdout)")
  }

  @Test func stpFilesAndTheLangOption() throws {
    let path = NSTemporaryPath("hello.stp")
    try #require(writeFile(path, "probe begin { println(\"from a file\"); exit() }\n"))
    defer { unlink(path) }
    #expect(scry(path).stdout == "from a file\n")
    #expect(scry("--lang", "stap", "-e", "probe begin { println(1); exit() }").stdout == "1\n")
    #expect(scry("--lang", "bpftrace", "-e", "probe begin { exit() }").status == 1)
  }

  @Test func planMatchesTheBpftraceEquivalent() {
    guard kernelAvailable("SystemTap plan") else { return }
    let stap = scry("--plan", "-e", "global c; probe kernel.trace(\"sched:sched_switch\") { c[execname()]++ }")
    let bpftrace = scry("--plan", "-e", "tracepoint:sched:sched_switch { @c[comm]++ }")
    // The SystemTap script adds an END block that prints `c` at exit, as SystemTap does.
    func attachments(_ text: String) -> [Substring] {
      text.split(separator: "\n").filter { $0.hasPrefix("  [") && !$0.hasSuffix("END") }
    }
    #expect(attachments(stap.stdout) == attachments(bpftrace.stdout), "\(stap.stdout)\n\(bpftrace.stdout)")
    #expect(stap.stdout.contains("eval (post-add @c[comm] 1)"), "\(stap.stdout)")
    #expect(bpftrace.stdout.contains("eval (post-add @c[comm] 1)"), "\(bpftrace.stdout)")
  }

  @Test func errorsAreLocatedWithHints() {
    let cases: [(String, String)] = [
      ("probe begin { x = excname() }", "did you mean 'execname'"),
      ("probe kernel.trac(\"x\") { }", "did you mean 'kernel.trace'?"),
      ("probe begin { println(strlen(5)) }", "strlen() takes a string, not int64"),
      ("function f(n) { return f(n - 1) } probe begin { println(f(3)) }", "calls itself"),
      ("probe begin { println(str_repalce(\"a\", \"a\", \"b\")) }", "did you mean 'str_replace'?"),
      ("probe begin { while (1) { try { break } catch { } } }", "'break' and 'continue' directly inside 'try' are not supported"),
      ("probe begin { try { } println(1) }", "expected 'catch' after the 'try' block"),
      ("probe a.b(1) = begin { } probe begin { }", "an alias's name is one probe point without arguments"),
      ("probe begin { printf(\"%d\\n\" }", "expected ')'"),
    ]
    for (script, message) in cases {
      let run = scry("--dry-run", "-e", script)
      #expect(run.status == 1, "\(script)")
      #expect(run.stderr.contains(message), "\(script)\n\(run.stderr)")
      #expect(run.stderr.contains("-e:1:"), "\(run.stderr)")
    }
  }

  /// gettimeofday_s() is the wall clock: within a second or two of the test's own clock.
  @Test func gettimeofdayIsTheWallClock() {
    guard kernelAvailable("gettimeofday_s()") else { return }
    let before = time(nil)
    let run = scry("-e", "probe timer.ms(10) { println(gettimeofday_s()); exit() }")
    let after = time(nil)
    #expect(run.status == 0, "\(run.stderr)")
    let seconds = Int(run.stdout.split(separator: "\n").first ?? "") ?? 0
    #expect(seconds >= before - 1 && seconds <= after + 1, "\(run.stdout) not in \(before)...\(after)")
  }

  /// SystemTap's string functions are not bpftrace's: a bpftrace program naming one is refused.
  @Test func systemTapFunctionsAreRefusedInBpftrace() {
    let run = scry("--dry-run", "-e", "BEGIN { printf(\"%d\\n\", strlen(\"abc\")) }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("'strlen()' is SystemTap's"), "\(run.stderr)")
  }

  @Test func kprobesGiveTheClearError() {
    guard kernelAvailable("kernel.function") else { return }
    let run = scry("--dry-run", "-e", "probe kernel.function(\"do_sys_open\") { }")
    if run.status == 1 { #expect(run.stderr.contains("kprobe"), "\(run.stderr)") }
  }
}

private func NSTemporaryPath(_ name: String) -> String { "/tmp/scry-stap-\(getpid())-\(name)" }

private func writeFile(_ path: String, _ text: String) -> Bool {
  guard let file = fopen(path, "w") else { return false }
  defer { fclose(file) }
  return fputs(text, file) >= 0
}
