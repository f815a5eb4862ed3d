import Glibc
import Testing

/// SystemTap's example scripts (Tests/Fixtures/systemtap), each run live, unchanged but for
/// the run's length, with its output checked against the format the script and SystemTap's
/// runtime give it.
@Suite(.serialized) struct SystemTapCorpusTests {
  static func script(_ name: String) -> String { scriptsRoot() + "/Tests/Fixtures/systemtap/" + name }

  static func fixture() throws -> String {
    let binary = "/tmp/scry-stap-corpus-\(getpid())"
    if access(binary, X_OK) != 0 { try buildFixture("uprobe_target.c", into: binary, flags: ["-O1", "-fno-omit-frame-pointer"]) }
    return binary
  }

  /// Lines after the fixture's own `sum=` line.
  static func lines(_ text: String) -> [Substring] { text.split(separator: "\n").filter { !$0.hasPrefix("sum=") } }

  /// `%-10d %-s` rows sorted by decreasing count, the first line and header as the script prints them.
  @Test(arguments: [("syscalls_by_proc.stp", "Process Name"), ("syscalls_by_pid.stp", "PID")])
  func syscallsCounted(_ name: String, _ column: String) {
    guard kernelAvailable("SystemTap \(name)") else { return }
    let run = scry(Self.script(name))
    #expect(run.status == 0, "\(run.stderr)")
    let lines = Self.lines(run.stdout)
    #expect(lines.first == "Collecting data... Type Ctrl-C to exit and display results", "\(run.stdout)")
    #expect(lines.dropFirst().first == "#SysCalls  \(column)", "\(run.stdout)")
    let rows = lines.dropFirst(2)
    #expect(!rows.isEmpty, "\(run.stdout)")
    var counts: [Int] = []
    for row in rows {
      let chars = Array(row)
      let count = Int(String(chars.prefix(10)).trimmingSpaces())
      #expect(count != nil && chars.count > 11 && chars[10] == " ", "\(row)")
      if name == "syscalls_by_pid.stp" { #expect(Int(String(chars.dropFirst(11))) != nil, "\(row)") }
      counts.append(count ?? 0)
    }
    #expect(counts == counts.sorted(by: >), "\(run.stdout)")
    if name == "syscalls_by_proc.stp" { #expect(rows.contains { $0.hasSuffix(" scry") }, "\(run.stdout)") }
  }

  /// topsys: `%25s %10s` header, at most ten `%25s %10d` rows by decreasing count, the rule.
  @Test func topsys() {
    guard kernelAvailable("SystemTap topsys.stp") else { return }
    let run = scry(Self.script("topsys.stp"))
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n")
    try? #require(lines.count >= 3, "\(run.stdout)")
    guard lines.count >= 3 else { return }
    #expect(lines[0] == "                  SYSCALL      COUNT")
    #expect(lines.last == Substring(String(repeating: "-", count: 62)))
    let rows = lines.dropFirst().dropLast()
    #expect(rows.count >= 1 && rows.count <= 10, "\(run.stdout)")
    let counts = rows.map { Int($0.suffix(10).trimmingSpaces()) ?? -1 }
    #expect(rows.allSatisfy { $0.count == 36 }, "\(run.stdout)")
    #expect(counts == counts.sorted(by: >) && !counts.contains(-1), "\(run.stdout)")
  }

  /// iotime: a file the command opens, read and closed, with the bytes read (its size).
  @Test func iotime() {
    guard kernelAvailable("SystemTap iotime.stp") else { return }
    var info = stat()
    stat("/etc/hostname", &info)
    let run = scry("-c", "/bin/cat /etc/hostname", Self.script("iotime.stp"))
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains(" (cat) access /etc/hostname read: \(info.st_size) write: 0\n"), "\(run.stdout)")
  }

  /// para-callgraph: thread_indent() nests the calls one space per level below the first.
  @Test func paraCallgraph() throws {
    guard kernelAvailable("SystemTap para-callgraph.stp") else { return }
    let binary = try Self.fixture()
    let run = scry("-c", "\(binary) 2 tag", Self.script("para-callgraph.stp"), binary)
    #expect(run.status == 0, "\(run.stderr)")
    let name = String(binary.split(separator: "/").last!.prefix(15))
    let calls = Self.lines(run.stdout).map { line -> Substring in
      // `%6d name(tid):` and the indented call.
      #expect(Int(line.prefix(6).trimmingSpaces()) != nil && line.dropFirst(6).hasPrefix(" \(name)("), "\(line)")
      return line[(line.firstIndex(of: ":").map { line.index(after: $0) } ?? line.endIndex)...]
    }
    #expect(calls == [" -> main", "  -> target", "  <- target", "  -> target", "  <- target", " <- main"], "\(run.stdout)")
  }

  /// ubacktrace-top and callcount: user stacks as keys, calls per function.
  @Test func userFunctionScripts() throws {
    guard kernelAvailable("SystemTap ubacktrace-top.stp") else { return }
    let binary = try Self.fixture()
    let stacks = scry("-c", "\(binary) 3 tag", Self.script("ubacktrace-top.stp"), binary)
    #expect(stacks.status == 0, "\(stacks.stderr)")
    let lines = Self.lines(stacks.stdout)
    #expect(lines.first?.hasPrefix(" 0x") == true && lines.first?.contains(" : target+0x0/0x") == true, "\(stacks.stdout)")
    #expect(lines.first?.hasSuffix(" [\(binary)]") == true, "\(stacks.stdout)")
    #expect(lines.last == "3 calls", "\(stacks.stdout)")
    let counts = scry("-c", "\(binary) 3 tag", Self.script("callcount.stp"), binary)
    #expect(counts.stdout.hasSuffix("register_callback    1\ntarget               3\n"), "\(counts.stdout)\(counts.stderr)")
  }

  /// readsize-hist: the count and sum, then SystemTap's @hist_log table.
  @Test func readSizeHistogram() {
    guard kernelAvailable("SystemTap readsize-hist.stp") else { return }
    let run = scry("-c", "/bin/cat /etc/hostname", Self.script("readsize-hist.stp"))
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    guard let summary = lines.firstIndex(where: { $0.hasSuffix(" bytes") && $0.contains(" reads, ") }) else {
      Issue.record("no summary: \(run.stdout)")
      return
    }
    let words = lines[summary].split(separator: " ")
    #expect(Int(words[0]) ?? 0 >= 2, "\(run.stdout)")
    #expect(lines[summary + 1] == "value |\(String(repeating: "-", count: 50)) count", "\(run.stdout)")
    #expect(run.stdout.hasSuffix("\n\n"), "\(run.stdout)")
  }

  /// exec-watch: process.begin names the program and its parent (pexecname).
  @Test func execWatch() {
    guard kernelAvailable("SystemTap exec-watch.stp") else { return }
    let run = scry("-c", "/bin/true", Self.script("exec-watch.stp"))
    #expect(run.stdout == "true started by scry (ppid set)\n", "\(run.stdout)\(run.stderr)")
  }

  /// error-probe: error() ends the run, the error probe runs and the end probe does not.
  @Test func errorProbe() {
    guard kernelAvailable("SystemTap error-probe.stp") else { return }
    let run = scry(Self.script("error-probe.stp"))
    #expect(run.stdout == "ERROR: gave up after 3 ticks\nerror after 3 ticks\n", "\(run.stdout)\(run.stderr)")
  }

  /// jiffies-report: three reports on timer.jiffies, each with its number.
  @Test func jiffiesReport() {
    guard kernelAvailable("SystemTap jiffies-report.stp") else { return }
    let run = scry(Self.script("jiffies-report.stp"))
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n")
    #expect(lines.count == 3, "\(run.stdout)")
    for (i, line) in lines.enumerated() {
      #expect(line.hasPrefix("report \(i + 1): ") && line.hasSuffix(" processes"), "\(line)")
    }
  }

  /// Kernel function probes: the tapset's vfs.read names what to use instead; kernel.function()
  /// gives the kprobe error where the kernel has no kprobes.
  @Test func kprobeScriptsAreRefusedClearly() {
    let vfs = scry("--dry-run", Self.script("vfs-read.stp"))
    #expect(vfs.status == 1)
    #expect(vfs.stderr.contains("vfs-read.stp:3:7: error: 'vfs.read' is a SystemTap tapset alias of kernel.function probes (kprobes)"), "\(vfs.stderr)")
    #expect(vfs.stderr.contains("hint: trace the kernel's tracepoint instead: kernel.trace(\"syscalls:sys_enter_read\")"), "\(vfs.stderr)")
    let function = scry("--dry-run", Self.script("kernel-function.stp"))
    if access("/sys/kernel/tracing/kprobe_events", F_OK) != 0 {
      #expect(function.status == 1)
      #expect(function.stderr.contains("kernel-function.stp:3:7: error: kprobe:vfs_read: this kernel has no kprobe support"), "\(function.stderr)")
    } else {
      #expect(function.status == 0, "\(function.stderr)")
    }
  }
}

extension StringProtocol {
  fileprivate func trimmingSpaces() -> String { String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
