import Glibc
import Testing

/// The REPL driven through a pseudo-terminal, as a user types at it, and its non-interactive forms.
@Suite(.serialized) struct REPLTests {
  /// A private HOME per test, so history files never touch the user's.
  static func temporaryHome() -> String {
    var template = Array("/tmp/scry-repl-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
  }

  static func start(home: String = temporaryHome(), _ arguments: [String] = []) throws -> PseudoTerminal {
    let terminal = try #require(
      PseudoTerminal(scryBinary(), arguments, environment: ["TERM": "dumb", "HOME": home, "INPUTRC": "/dev/null"]))
    try #require(terminal.expect("scry> ") != nil, "no prompt: \(terminal.text)")
    return terminal
  }

  @Test func promptIsUpWithinFiftyMilliseconds() throws {
    // The best of a few starts: the machine is shared, a single start can be descheduled.
    var best = Double.infinity
    for _ in 0..<3 {
      let terminal = try #require(PseudoTerminal(scryBinary(), [], environment: ["TERM": "dumb", "HOME": Self.temporaryHome()]))
      let start = terminal.now()
      try #require(terminal.expect("scry> ") != nil)
      best = min(best, terminal.now() - start)
      terminal.send("\u{04}")
      _ = terminal.waitForExit()
    }
    print("REPL prompt after \(Int(best * 1000)) ms")
    #expect(best < 0.05)
  }

  @Test func multiLineProbeRunsWhenItsBlockCloses() throws {
    let t = try Self.start()
    t.send("BEGIN {\r")
    let mark = try #require(t.expect("  ... "))
    t.send("  printf(\"multi %d\\n\", 6 * 7);\r")
    t.send("}\r")
    #expect(t.expect("multi 42", after: mark) != nil, "\(t.text)")
    Self.leave(t)
  }

  @Test func syntaxErrorShowsACaretAndTheSessionSurvives() throws {
    let t = try Self.start()
    t.send("BEGIN { prinf(\"x\"); }\r")
    #expect(t.expect("unknown function 'prinf'") != nil, "\(t.text)")
    #expect(t.expect("^~~~~") != nil, "\(t.text)")
    t.send("BEGIN { @x = 1 + 2 }\r")
    t.send("@x\r")
    #expect(t.expect("@x: 3") != nil, "\(t.text)")
    t.send("1 + 2\r")
    #expect(t.expect("\n3\r\n") != nil, "\(t.text)")
    Self.leave(t)
  }

  @Test func tabCompletesTracepointCategories() throws {
    guard kernelAvailable("REPL tracepoint completion") else { return }
    let t = try Self.start()
    t.send("tracepoint:sch\t")
    let completed = try #require(t.expect("tracepoint:sched:"), "\(t.text)")
    // Ctrl-C clears the line (no probes run); Ctrl-D on the empty line then leaves.
    t.send("\u{03}")
    try #require(t.expect("scry> ", after: completed) != nil, "\(t.text)")
    Self.leave(t)
  }

  @Test func tabCompletesUSDTProbes() throws {
    try #require(access("/usr/bin/python3", X_OK) == 0, "python3 is missing (make deps installs it)")
    let t = try Self.start()
    t.send("usdt:/usr/bin/python3:python:gc__st\t")
    let completed = try #require(t.expect("usdt:/usr/bin/python3:python:gc__start"), "\(t.text)")
    t.send("\u{03}")
    try #require(t.expect("scry> ", after: completed) != nil, "\(t.text)")
    Self.leave(t)
  }

  @Test func printsAMapWhileItsProbeRunsAndCtrlCStopsIt() throws {
    let t = try Self.start()
    t.send("interval:ms:20 { @m = count(); }\r")
    try #require(t.expect("Attaching 1 probe...") != nil, "\(t.text)")
    t.pause(seconds: 0.3)
    t.send("print(@m)\r")
    let printed = try #require(t.expect("@m: "), "\(t.text)")
    t.send("\u{03}")
    // Ctrl-C stops the probe and prints the maps, as the end of a script does; the prompt returns.
    let stopped = try #require(t.expect("\r\n\r\n@m: ", after: printed), "\(t.text)")
    #expect(t.expect("scry> ", after: stopped) != nil)
    Self.leave(t)
  }

  /// A C declaration typed at the prompt serves later entries, and `.save` keeps it first.
  @Test func declarationsServeLaterEntries() throws {
    let home = Self.temporaryHome()
    let t = try Self.start(home: home)
    t.send("struct Foo { int m; long n; };\r")
    t.send("#define N 7\r")
    t.send("BEGIN { printf(\"size %d %d\\n\", sizeof(struct Foo), N); exit(); }\r")
    #expect(t.expect("size 16 7") != nil, "\(t.text)")
    t.send(".save \(home)/declared.trace\r")
    #expect(t.expect("saved 1 block") != nil, "\(t.text)")
    Self.leave(t)
    let run = scry("\(home)/declared.trace")
    #expect(run.stdout.contains("size 16 7"), "\(run.stdout)\(run.stderr)")
  }

  @Test func savedSessionRunsAsAScript() throws {
    let home = Self.temporaryHome()
    let t = try Self.start(home: home)
    t.send("BEGIN { @x = 42; }\r")
    t.send("interval:ms:30 { printf(\"tick\\n\"); exit(); }\r")
    #expect(t.expect("@x: 42") != nil, "\(t.text)")
    t.send(".save \(home)/saved.trace\r")
    #expect(t.expect("saved 2 blocks") != nil, "\(t.text)")
    Self.leave(t)
    let run = scry("\(home)/saved.trace")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 2 probes...\ntick\n\n\n@x: 42\n", "\(run.stdout)")
  }

  @Test func ctrlDReleasesEveryKernelResource() throws {
    guard kernelAvailable("REPL kernel teardown") else { return }
    let t = try Self.start()
    t.send("tracepoint:syscalls:sys_enter_getppid { @c[comm] = count(); }\r")
    try #require(t.expect("Attaching 1 probe...") != nil, "\(t.text)")
    t.pause(seconds: 0.2)
    #expect(Self.perfEvents(of: t.pid) > 0)
    t.send("\u{03}")
    // The block's loop closes its events when it has stopped: on a loaded machine, a while later.
    for _ in 0..<50 where Self.perfEvents(of: t.pid) != 0 { t.pause(seconds: 0.1) }
    #expect(Self.perfEvents(of: t.pid) == 0, "perf events left open after Ctrl-C")
    let mark = t.output.count
    t.send("tracepoint:sched:sched_process_exec { @e = count(); }\r")
    try #require(t.expect("Attaching 1 probe...", after: mark) != nil, "\(t.text)")
    Self.leave(t)
    let events = (try? String(contentsOfFileAt: "/sys/kernel/tracing/dynamic_events")) ?? ""
    #expect(!events.contains("scry_\(t.pid)"), "\(events)")
  }

  @Test func historySurvivesARestartAndIsPrivate() throws {
    let home = Self.temporaryHome()
    let first = try Self.start(home: home)
    first.send("100 + 23\r")
    try #require(first.expect("123") != nil)
    Self.leave(first)
    var info = stat()
    try #require(stat(home + "/.scry_history", &info) == 0)
    #expect(info.st_mode & 0o777 == 0o600)
    let second = try Self.start(home: home)
    let mark = second.output.count
    second.send("\u{10}\r")  // Ctrl-P: the previous history entry
    #expect(second.expect("123", after: mark) != nil, "\(second.text)")
    Self.leave(second)
  }

  @Test func readsAScriptFromStandardInput() {
    // bash's echo, as the issue writes it (dash's would turn the \n into a newline inside the string).
    let run = Run.program("/bin/bash", ["-c", "echo 'BEGIN { printf(\"hi\\n\"); exit(); }' | '\(scryBinary())'"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("hi\n"), "\(run.stdout)")
  }

  @Test func replaysREPLInput() throws {
    let home = Self.temporaryHome()
    let session = "BEGIN { @a = 5; }\n@a\nBEGIN {\n  @b[1] = 2;\n}\n1 + 2\n.quit\n"
    let fd = open(home + "/session.txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = session.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    let run = Run.program("/bin/sh", ["-c", "'\(scryBinary())' -i < '\(home)/session.txt'"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 1 probe...\n@a: 5\nAttaching 1 probe...\n3\n\n\n@a: 5\n@b[1]: 2\n", "\(run.stdout)")
  }

  @Test func helpExplainsFunctionsFromTheOneTable() throws {
    let home = Self.temporaryHome()
    let fd = open(home + "/help.txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let session = ".help hist\n.help comm\n.help histt\n.list software:page*\n.quit\n"
    _ = session.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    let run = Run.program("/bin/sh", ["-c", "'\(scryBinary())' -i < '\(home)/help.txt'"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@map = hist(value)\n  power-of-two histogram of the values, per key\n"), "\(run.stdout)")
    #expect(run.stdout.contains("comm: a builtin"), "\(run.stdout)")
    #expect(run.stdout.contains("no function, builtin or probe type named 'histt'; perhaps 'hist'"), "\(run.stdout)")
    #expect(run.stdout.contains("software:page-faults:"), "\(run.stdout)")
  }

  @Test func helpWithoutItsDotAndEditInTheEditor() throws {
    let home = Self.temporaryHome()
    // The "editor" renames the map in the file it is given; the session must become the edited script.
    let session = "help hist\nBEGIN { @ops = 7; }\n.edit\n.probes\n.save \(home)/after.trace\nquit\n"
    let fd = open(home + "/edit.txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = session.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
    let run = Run.program(
      "/bin/sh", ["-c", "'\(scryBinary())' -i < '\(home)/edit.txt'"], environment: ["VISUAL": "sed -i s/ops/opens/", "HOME": home])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@map = hist(value)"), "\(run.stdout)")
    #expect(run.stdout.contains("1: BEGIN  [ran]"), "\(run.stdout)")
    #expect(run.stdout.hasSuffix("@opens: 7\n"), "\(run.stdout)")
    let saved = try String(contentsOfFileAt: home + "/after.trace")
    #expect(saved.contains("@opens = 7"), "\(saved)")
  }

  @Test func aStatementReadingEventBuiltinsSaysItRunsOnce() throws {
    let run = Run.program("/bin/sh", ["-c", "printf 'count[comm]++\\n.quit\\n' | '\(scryBinary())' -i"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("runs once, now, as in BEGIN: 'comm' is Scry's own here"), "\(run.stderr)")
    #expect(run.stdout.contains("count[scry]: 1"), "\(run.stdout)")
  }

  /// Ctrl-D once the prompt is back: keys typed while an entry is being run reach the terminal in
  /// cooked mode, where a Ctrl-D would be taken by the line discipline instead of readline.
  static func leave(_ t: PseudoTerminal, sourceLocation: SourceLocation = #_sourceLocation) {
    let mark = t.output.count
    t.send("\r")
    _ = t.expect("scry> ", after: mark)
    t.send("\u{04}")
    #expect(t.waitForExit() == 0, "\(t.text)", sourceLocation: sourceLocation)
  }

  static func perfEvents(of pid: pid_t) -> Int {
    guard let dir = opendir("/proc/\(pid)/fd") else { return 0 }
    defer { closedir(dir) }
    var count = 0
    var target = [CChar](repeating: 0, count: 256)
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
      let n = readlink("/proc/\(pid)/fd/\(name)", &target, target.count - 1)
      guard n > 0 else { continue }
      target[n] = 0
      if String(cString: target).contains("perf_event") { count += 1 }
    }
    return count
  }
}

extension String {
  /// A whole small file (tracefs lists), without Foundation.
  init(contentsOfFileAt path: String) throws {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw REPLTestError.cannotRead(path) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = read(fd, &chunk, chunk.count)
      if n <= 0 { break }
      bytes += chunk[0..<n]
    }
    self = String(decoding: bytes, as: UTF8.self)
  }
}

enum REPLTestError: Error { case cannotRead(String) }
