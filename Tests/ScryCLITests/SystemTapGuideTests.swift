import Glibc
import Testing

/// The beginners' guide's and the language reference's idioms (Tests/Fixtures/systemtap), each run
/// live with its whole output checked: begin-probe scripts against the text SystemTap's runtime
/// prints for them (histograms as runtime/stat-common.c draws them), event scripts on a workload
/// whose syscalls and calls are known in advance (Tests/Fixtures/stap_workload.c).
@Suite(.serialized) struct SystemTapGuideTests {
  static func script(_ name: String) -> String { scriptsRoot() + "/Tests/Fixtures/systemtap/" + name }

  static func workload() throws -> String {
    let binary = "/tmp/scry-stap-workload-\(getpid())"
    if access(binary, X_OK) != 0 { try buildFixture("stap_workload.c", into: binary, flags: ["-O1", "-fno-omit-frame-pointer"]) }
    return binary
  }

  /// Scripts that run in their begin probe (and timers) and print the same text every time.
  @Test(arguments: [
    ("hello.stp", [], "hello world\n"),
    ("timer-ticks.stp", [], "5 ticks\n"),
    ("foreach-sort.stp", [], "ant 1 10\nbee 2 50\ncat 3 30\ndog 4 20\n--\nbee 50\ncat 30\n--\n4:dog=20\n3:cat=30\n2:bee=50\n1:ant=10\n"),
    ("strings.stp", [], "12\nhello|world\n1 0\nhell0, w0rld\n42 255 -17\nhello, world!3\ntab\\there\nho\n"),
    ("functions.stp", [],
      "gcd(84, 36)=12\nfib(1)=1 odd\nfib(2)=1 odd\nfib(3)=2 even\nfib(4)=3 odd\nfib(5)=5 odd\nfib(6)=8 even\nfib(7)=13 odd\n"
        + "fib(8)=21 odd\nfib(9)=34 even\nfib(10)=55 odd\n"),
    ("alias.stp", [], "tick 3\nafter the body: 3 ticks\n"),
    ("try-catch.stp", [], "ok 1\nok 2\ncaught too big: 3\ncaught too big: 4\n"),
    ("globals-at-exit.stp", [],
      "count=0x5\nlast=\"done\"\nby_name[\"two\",2]=0x4\nby_name[\"one\",1]=0x1\nsizes @count=3 @min=1 @max=3 @sum=6 @avg=2\n"),
    ("script-args.stp", ["21", "name"], "2 arguments: 21 * 2 = 42, name name\n"),
    ("printf-formats.stp", [],
      "[42] [   42] [42   ] [00042]\n[ff] [FF] [10] [0xff] [7]\n[ab] [        ab] [ab        ]\n[A] [%] [-1]\n[0x1000]\n"),
    // runtime/stat.c's variance for data on one CPU: Welford's running variance over integers,
    // corrected by the running mean's distance from the exact one, >> 2 * shift.
    ("variance.stp", [], "count=10 sum=385 min=1 max=100 avg=38 variance=1240\nvariance with a shift of 4: 1174\n"),
    ("linear-hist.stp", [], linearTable),
    ("log-hist.stp", [], logTable),
  ] as [(String, [String], String)])
  func printsWhatSystemTapPrints(_ name: String, _ arguments: [String], _ expected: String) {
    guard kernelAvailable("SystemTap \(name)") else { return }
    let run = Run.program(scryBinary(), [Self.script(name)] + arguments)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == expected, "\(name):\n\(run.stdout)")
  }

  /// Syscalls of the traced command counted by name: sorted by name, and the top three by count.
  @Test func syscallCounts() throws {
    guard kernelAvailable("SystemTap syscall-counts.stp") else { return }
    let command = "\(try Self.workload()) getppid:40 getuid:30 getgid:20 yield:10"
    let byName = scry("-c", command, Self.script("syscall-counts.stp"))
    #expect(byName.stdout == "getgid     20\ngetppid    40\ngetuid     30\n", "\(byName.stdout)\(byName.stderr)")
    let top = scry("-c", command, Self.script("syscall-top.stp"))
    #expect(top.stdout == "getppid 40\ngetuid 30\ngetgid 20\n", "\(top.stdout)\(top.stderr)")
  }

  /// write()'s sizes as a @hist_log with elided rows, and read()'s returns by the size asked.
  @Test func readAndWriteSizes() throws {
    guard kernelAvailable("SystemTap write-sizes.stp") else { return }
    let workload = try Self.workload()
    let writes = scry("-c", "\(workload) write:5:3 write:100:2 write:65536:1", Self.script("write-sizes.stp"))
    #expect(writes.stdout == writeSizesTable, "\(writes.stdout)\(writes.stderr)")
    let reads = scry("-c", "\(workload) read:7:4 read:300:2", Self.script("read-return.stp"))
    #expect(reads.stdout.contains("asked 7: 4 reads, 28 bytes\nasked 300: 2 reads, 600 bytes\n"), "\(reads.stdout)\(reads.stderr)")
    // The read `-c`'s child waits in before it runs the command began before the probes attached:
    // its return has no entry, and a return probe runs only for entries it saw (no @entry of 0).
    #expect(!reads.stdout.contains("asked 0:"), "\(reads.stdout)")
  }

  /// openat's filename read at the entry and kept for the return, and the return's sign.
  @Test func openedFiles() throws {
    guard kernelAvailable("SystemTap open-files.stp") else { return }
    let workload = try Self.workload()
    let name = String(workload.split(separator: "/").last!.prefix(15))
    let run = scry("-c", "\(workload) open:/etc/hostname open:/nonexistent/x", Self.script("open-files.stp"))
    #expect(run.stdout.contains("\(name)(/etc/hostname) = fd\n\(name)(/nonexistent/x) = error\n"), "\(run.stdout)\(run.stderr)")
  }

  /// process.begin and process.end of the traced command.
  @Test func processLifetime() throws {
    guard kernelAvailable("SystemTap process-lifetime.stp") else { return }
    let workload = try Self.workload()
    let name = String(workload.split(separator: "/").last!.prefix(15))
    let run = scry("-c", "\(workload) yield:1", Self.script("process-lifetime.stp"))
    #expect(run.stdout == "begin \(name)\nend \(name)\n", "\(run.stdout)\(run.stderr)")
  }

  /// A user function's argument and return value, its latency with @entry, and its caller's stack
  /// as text.
  @Test func userFunctions() throws {
    guard kernelAvailable("SystemTap uprobe-args.stp") else { return }
    let workload = try Self.workload()
    let args = scry("-c", "\(workload) work:5", Self.script("uprobe-args.stp"), workload)
    #expect(args.stdout == "calls 5, sum of i 10, sum of i*i 30, max 16\n", "\(args.stdout)\(args.stderr)")
    let latency = scry("-c", "\(workload) nap:20", Self.script("uprobe-latency.stp"), workload)
    #expect(latency.stdout == "nap(20) took at least that\n", "\(latency.stdout)\(latency.stderr)")
    let stacks = scry("-c", "\(workload) work:3", Self.script("ustack-text.stp"), workload)
    let base = workload.split(separator: "/").last!
    // sprint_ustack's brief lines: the function, its offset and the module's base name.
    #expect(stacks.stdout.hasPrefix("3 calls from:\nwork+0x0 [\(base)]\n"), "\(stacks.stdout)\(stacks.stderr)")
  }

  /// `--plan` of a SystemTap script and of its bpftrace twin: the same attachments, delivered the
  /// same way, with the same actions (SystemTap's printing of globals at exit, an END block of its
  /// own, aside).
  @Test(arguments: [
    ("global c; probe syscall.* { c[execname()]++ }", "tracepoint:raw_syscalls:sys_enter { @c[comm]++ }"),
    ("global c; probe syscall.getppid { c++ }", "tracepoint:syscalls:sys_enter_getppid { @c++ }"),
    ("global start; probe syscall.read { start[tid()] = local_clock_ns() }", "tracepoint:syscalls:sys_enter_read { @start[tid] = nsecs }"),
    ("global files; probe syscall.openat { files[user_string($filename)]++ }",
      "tracepoint:syscalls:sys_enter_openat { @files[str(args->filename)]++ }"),
    ("global n; probe timer.ms(100) { n++ }", "interval:ms:100 { @n++ }"),
    ("global c; probe process(\"BIN\").function(\"work\") { c[pid()]++ }", "uprobe:BIN:work { @c[pid]++ }"),
  ])
  func planMatchesTheBpftraceTwin(_ stap: String, _ bpftrace: String) throws {
    guard kernelAvailable("SystemTap plan parity") else { return }
    let binary = try Self.workload()
    let stapPlan = scry("--plan", "-e", stap.replacingOccurrences(of: "BIN", with: binary))
    let bpftracePlan = scry("--plan", "-e", bpftrace.replacingOccurrences(of: "BIN", with: binary))
    #expect(stapPlan.status == 0 && bpftracePlan.status == 0, "\(stapPlan.stderr)\(bpftracePlan.stderr)")
    let stapEntries = Self.planEntries(stapPlan.stdout)
    #expect(!stapEntries.isEmpty && stapEntries == Self.planEntries(bpftracePlan.stdout), "\(stapPlan.stdout)\n\(bpftracePlan.stdout)")
  }

  /// The entries of a plan's attachments and actions sections but END's, without the uprobe
  /// fallback line (it names the run's pid).
  static func planEntries(_ plan: String) -> [String] {
    var entries: [String] = []
    var section = ""
    for line in plan.split(separator: "\n").map(String.init) {
      if !line.hasPrefix(" ") { section = line; continue }
      guard section == "attachments:" || section == "actions:" || section == "maps:" else { continue }
      if line.hasPrefix("  [") || !line.hasPrefix("    ") { entries.append(section + line) } else if !entries.isEmpty {
        entries[entries.count - 1] += "\n" + line
      }
    }
    return entries.filter { !$0.contains("] END") }.map {
      $0.split(separator: "\n").filter { !$0.contains("uprobe_events (if BPF is refused)") }.joined(separator: "\n")
    }
  }
}

/// linear-hist.stp: its summary, then @hist_linear(agg, 20, 200, 20) with the rows below and past
/// the range, as stat-common.c draws them.
private let linearTable = "count=120\nsum=8580\nmin=0\nmax=273\navg=71\nvalue |-------------------------------------------------- count\n  <20 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                     30\n   20 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                     30\n   40 |@@@@@@@@@                                           9\n   60 |@@@@@@@@@@                                         10\n   80 |@@@@@@@@@@                                         10\n  100 |@@@@@@@@@                                           9\n  120 |@@                                                  2\n  140 |@@@                                                 3\n  160 |@@@                                                 3\n  180 |@@@                                                 3\n  200 |@@@                                                 3\n >200 |@@@@@@@@                                            8\n\n"

/// log-hist.stp: two rows of zeros past the data, none below 0 (no negative values).
private let logTable = "value |-------------------------------------------------- count\n    0 |@@@@@                                              5\n    1 |@                                                  1\n    2 |@@@                                                3\n    4 |@@                                                 2\n    8 |@@                                                 2\n   16 |@@                                                 2\n   32 |@@                                                 2\n   64 |@@                                                 2\n  128 |@@                                                 2\n  256 |@@                                                 2\n  512 |@@                                                 2\n 1024 |                                                   0\n 2048 |                                                   0\n\n"

/// write-sizes.stp: the summary, then the rows between 256 and 16384 elided to `~`.
private let writeSizesTable = "6 writes, 65751 bytes, min 5, max 65536, avg 10958\n value |-------------------------------------------------- count\n     1 |                                                   0\n     2 |                                                   0\n     4 |@@@                                                3\n     8 |                                                   0\n    16 |                                                   0\n    32 |                                                   0\n    64 |@@                                                 2\n   128 |                                                   0\n   256 |                                                   0\n       ~\n 16384 |                                                   0\n 32768 |                                                   0\n 65536 |@                                                  1\n131072 |                                                   0\n262144 |                                                   0\n\n"
