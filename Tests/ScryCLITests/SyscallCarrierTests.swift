import Glibc
import Testing

/// A block's family of syscalls tracepoints rides one raw_syscalls program (the syscall carrier):
/// the counts, the probe names and the fields must be those of the tracepoints themselves, as
/// Scry counts them one by one (`--no-bpf`) and as bpftrace does, under a known workload
/// (Tests/Fixtures/syscall_mix.c: N getppid, read of 7, write of 5, sched_get_priority_max, and N
/// 32-bit getpid calls whose ia32 number is writev's x86-64 number).
@Suite(.serialized) struct SyscallCarrierTests {
  static let calls = 2000

  static let fixture: String = {
    let path = "/tmp/scry-syscall-mix-\(getpid())"
    try? buildFixture("syscall_mix.c", into: path)
    return path
  }()

  /// The `@[...]: n` lines of a run, sorted: maps printed at exit.
  static func entries(_ output: String) -> [String] {
    output.split(separator: "\n").filter { $0.hasPrefix("@") }.map(String.init).sorted()
  }

  static func count(_ key: String, in output: String) -> Int? {
    for line in output.split(separator: "\n") where line.hasPrefix("@[\(key)]: ") {
      return Int(line.split(separator: " ").last!)
    }
    return nil
  }

  static let wildcardByProbe = "tracepoint:syscalls:sys_enter_* { if (pid == cpid) { @[probe] = count(); } }"

  @Test func wildcardCountsMatchTheTracepointsOneByOne() throws {
    guard kernelAvailable("syscall carrier") else { return }
    let command = "\(Self.fixture) \(Self.calls)"
    let plan = scry("--plan", "-c", command, "-e", Self.wildcardByProbe)
    #expect(plan.stdout.contains("tracepoints carried by one BPF program on raw_syscalls:sys_enter"), "\(plan.stdout.suffix(800))")
    let carried = scry("-c", command, "-e", Self.wildcardByProbe)
    #expect(carried.status == 0, "\(carried.stderr)")
    #expect(!carried.stderr.contains("WARNING"), "\(carried.stderr)")
    // One by one: what Scry did before the carrier, and does without BPF.
    let oneByOne = scry("--no-bpf", "-c", command, "-e", Self.wildcardByProbe)
    #expect(oneByOne.status == 0, "\(oneByOne.stderr)")
    #expect(Self.entries(carried.stdout) == Self.entries(oneByOne.stdout))
    for name in ["getppid", "write", "sched_get_priority_max"] {
      #expect(Self.count("tracepoint:syscalls:sys_enter_\(name)", in: carried.stdout) == Self.calls, "\(carried.stdout)")
    }
    #expect((Self.count("tracepoint:syscalls:sys_enter_read", in: carried.stdout) ?? 0) >= Self.calls)
    // The 32-bit getpid calls are syscall 20 on raw_syscalls, and no syscalls event: not writev.
    #expect(Self.count("tracepoint:syscalls:sys_enter_writev", in: carried.stdout) == nil, "\(carried.stdout)")
    let raw = scry("-c", command, "-e", "tracepoint:raw_syscalls:sys_enter { if (pid == cpid) { @[args.id] = count(); } }")
    #expect(Self.count("20", in: raw.stdout) == Self.calls, "\(raw.stdout)")
  }

  /// Counting mode: no ring, one per-CPU counter per syscall number in the carrier.
  @Test func countingByProbeAtEnterAndExit() throws {
    guard kernelAvailable("syscall carrier") else { return }
    for side in ["enter", "exit"] {
      let script = "tracepoint:syscalls:sys_\(side)_* { @[probe] = count(); }"
      let plan = scry("--plan", "-e", script)
      #expect(plan.stdout.contains("counting each syscall's hits in a per-CPU array"), "\(plan.stdout.suffix(800))")
      let run = scry("-c", "\(Self.fixture) \(Self.calls)", "-e", script)
      #expect(run.status == 0, "\(run.stderr)")
      // System-wide: only the fixture calls sched_get_priority_max.
      #expect(Self.count("tracepoint:syscalls:sys_\(side)_sched_get_priority_max", in: run.stdout) == Self.calls, "\(run.stdout)")
      #expect((Self.count("tracepoint:syscalls:sys_\(side)_getppid", in: run.stdout) ?? 0) >= Self.calls)
    }
  }

  /// Each member decodes its own format: sys_enter_read's `count`, sys_exit's `ret`.
  @Test func fieldsAreEachTracepointsOwn() throws {
    guard kernelAvailable("syscall carrier") else { return }
    let command = "\(Self.fixture) \(Self.calls)"
    let enter = scry(
      "-c", command, "-e",
      "tracepoint:syscalls:sys_enter_read,tracepoint:syscalls:sys_enter_write,tracepoint:syscalls:sys_enter_pread64,"
        + "tracepoint:syscalls:sys_enter_pwrite64,tracepoint:syscalls:sys_enter_readahead"
        + " { if (pid == cpid) { @[probe, args.count] = count(); } }")
    #expect(enter.status == 0, "\(enter.stderr)")
    #expect(Self.count("tracepoint:syscalls:sys_enter_read, 7", in: enter.stdout) == Self.calls, "\(enter.stdout)")
    #expect(Self.count("tracepoint:syscalls:sys_enter_write, 5", in: enter.stdout) == Self.calls, "\(enter.stdout)")
    let exit = scry("-c", command, "-e", "tracepoint:syscalls:sys_exit_* { if (pid == cpid) { @[probe] = sum(args.ret); } }")
    #expect(exit.status == 0, "\(exit.stderr)")
    #expect(Self.count("tracepoint:syscalls:sys_exit_sched_get_priority_max", in: exit.stdout) == 99 * Self.calls, "\(exit.stdout)")
    #expect(Self.count("tracepoint:syscalls:sys_exit_write", in: exit.stdout) == 5 * Self.calls, "\(exit.stdout)")
    // getppid returns the same parent on every call.
    let parents = Self.count("tracepoint:syscalls:sys_exit_getppid", in: exit.stdout) ?? 0
    #expect(parents % Self.calls == 0 && parents / Self.calls > 1, "\(exit.stdout)")
  }

  /// bpftrace attaches each tracepoint; the carried family must count what it counts.
  @Test func countsMatchBpftrace() throws {
    guard kernelAvailable("syscall carrier bpftrace"), let bpftrace = bpftraceBinary() else { return }
    let command = "\(Self.fixture) \(Self.calls)"
    let names = ["getppid", "read", "write", "writev", "sched_get_priority_max", "getpid", "close", "mmap"]
    let probes = names.map { "tracepoint:syscalls:sys_enter_\($0)" }.joined(separator: ",")
    let script = probes + " /pid == cpid/ { @[probe] = count(); }"
    // The same script: the pid predicate makes the carrier keep the child's syscalls only.
    let plan = scry("--plan", "-c", command, "-e", script)
    #expect(plan.stdout.contains("drops other processes' syscalls"), "\(plan.stdout.suffix(800))")
    let carried = scry("-c", command, "-e", script)
    #expect(carried.status == 0, "\(carried.stderr)")
    let reference = Run.program(bpftrace, ["-c", command, "-e", script])
    #expect(reference.status == 0, "\(reference.stderr)")
    #expect(Self.entries(carried.stdout) == Self.entries(reference.stdout), "scry:\n\(carried.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  /// The fixture, started now, waiting `delayMilliseconds` before its calls (for `-p` to attach).
  static func startFixture(calls: Int, delayMilliseconds: Int) throws -> pid_t {
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ([fixture, "\(calls)", "\(delayMilliseconds)"] as [String]).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    try #require(posix_spawn(&pid, fixture, nil, nil, argv, environ) == 0)
    return pid
  }

  /// Runs `arguments` with `-p` on a delayed fixture while a second fixture makes the same calls
  /// five times over (its syscalls must not be counted).
  static func followingFixture(_ arguments: [String]) throws -> Run {
    let noise = try startFixture(calls: 5 * calls, delayMilliseconds: 4000)
    let followed = try startFixture(calls: calls, delayMilliseconds: 4000)
    let run = Run.program(scryBinary(), ["-p", "\(followed)"] + arguments)
    var status: Int32 = 0
    waitpid(followed, &status, 0)
    waitpid(noise, &status, 0)
    return run
  }

  /// `-p`: the carrier keeps the followed process's syscalls (its tgid test runs first); the
  /// counts are those of the per-task tracepoints one by one, and the other process's calls are out.
  @Test func followedProcessCountsMatchTheTracepointsOneByOne() throws {
    guard kernelAvailable("syscall carrier -p") else { return }
    let script = "tracepoint:syscalls:sys_enter_* { @[probe] = count(); }"
    let plan = scry("--plan", "-p", "\(getpid())", "-e", script)
    #expect(plan.stdout.contains("counting each syscall's hits in a per-CPU array"), "\(plan.stdout.suffix(900))")
    #expect(plan.stdout.contains("drops other processes' syscalls (a compare of the tgid: the -p process"), "\(plan.stdout.suffix(900))")
    #expect(plan.stdout.contains("the followed process only"))
    let carried = try Self.followingFixture(["-e", script])
    #expect(carried.status == 0, "\(carried.stderr)")
    #expect(!carried.stderr.contains("WARNING"), "\(carried.stderr)")
    for name in ["getppid", "read", "write", "sched_get_priority_max"] {
      #expect(Self.count("tracepoint:syscalls:sys_enter_\(name)", in: carried.stdout) == Self.calls, "\(carried.stdout)")
    }
    #expect(Self.count("tracepoint:syscalls:sys_enter_writev", in: carried.stdout) == nil, "\(carried.stdout)")
    let oneByOne = try Self.followingFixture(["--no-bpf", "-e", script])
    #expect(oneByOne.status == 0, "\(oneByOne.stderr)")
    #expect(Self.entries(carried.stdout) == Self.entries(oneByOne.stdout), "carried:\n\(carried.stdout)\none by one:\n\(oneByOne.stdout)")
  }

  /// `-p` with records: each member's capture program, behind the carrier's process test.
  @Test func followedProcessFieldsThroughTheCaptureProgram() throws {
    guard kernelAvailable("syscall carrier -p capture") else { return }
    let script = "tracepoint:syscalls:sys_exit_* { @[probe] = sum(args.ret); }"
    let plan = scry("--plan", "-p", "\(getpid())", "-e", script)
    #expect(plan.stdout.contains("tail-calling each tracepoint's capture program"), "\(plan.stdout.suffix(900))")
    #expect(plan.stdout.contains("drops other processes' syscalls"), "\(plan.stdout.suffix(900))")
    let carried = try Self.followingFixture(["-e", script])
    #expect(carried.status == 0, "\(carried.stderr)")
    #expect(!carried.stderr.contains("WARNING"), "\(carried.stderr)")
    #expect(Self.count("tracepoint:syscalls:sys_exit_sched_get_priority_max", in: carried.stdout) == 99 * Self.calls, "\(carried.stdout)")
    #expect(Self.count("tracepoint:syscalls:sys_exit_write", in: carried.stdout) == 5 * Self.calls, "\(carried.stdout)")
    #expect(Self.count("tracepoint:syscalls:sys_exit_read", in: carried.stdout) == 7 * Self.calls, "\(carried.stdout)")
    let oneByOne = try Self.followingFixture(["--no-bpf", "-e", script])
    #expect(oneByOne.status == 0, "\(oneByOne.stderr)")
    #expect(Self.entries(carried.stdout) == Self.entries(oneByOne.stdout), "carried:\n\(carried.stdout)\none by one:\n\(oneByOne.stdout)")
  }

  /// A constant pid in the predicate: the carrier keeps that process's syscalls, as bpftrace's
  /// predicate does (`countsMatchBpftrace` runs one script under both).
  @Test func pidPredicateKeepsOneProcess() throws {
    guard kernelAvailable("syscall carrier pid predicate") else { return }
    let noise = try Self.startFixture(calls: 5 * Self.calls, delayMilliseconds: 4000)
    let followed = try Self.startFixture(calls: Self.calls, delayMilliseconds: 4000)
    let script = "tracepoint:syscalls:sys_enter_* /pid == \(followed)/ { @[probe] = count(); }"
    let plan = scry("--plan", "-e", script)
    #expect(plan.stdout.contains("drops other processes' syscalls (a compare of the tgid: pid \(followed)"), "\(plan.stdout.suffix(900))")
    let run = scry("-e", script + " interval:s:9 { exit(); }")
    var status: Int32 = 0
    waitpid(followed, &status, 0)
    waitpid(noise, &status, 0)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(!run.stderr.contains("WARNING"), "\(run.stderr)")
    for name in ["getppid", "read", "write", "sched_get_priority_max"] {
      #expect(Self.count("tracepoint:syscalls:sys_enter_\(name)", in: run.stdout) == Self.calls, "\(run.stdout)\n\(run.stderr)")
    }
    #expect(Self.count("tracepoint:syscalls:sys_enter_writev", in: run.stdout) == nil, "\(run.stdout)")
  }

  @Test func planSaysWhyAFamilyIsAttachedOneByOne() {
    guard kernelAvailable("syscall carrier plan") else { return }
    let narrow = scry("--plan", "-e", "tracepoint:syscalls:sys_enter_read,tracepoint:syscalls:sys_enter_write { @[probe] = count(); }")
    #expect(narrow.stdout.contains("2 syscalls:sys_enter_* tracepoints attached one by one: fewer than 5"), "\(narrow.stdout)")
    let noBPF = scry("--plan", "--no-bpf", "-e", "tracepoint:syscalls:sys_exit_* { @[probe] = count(); }")
    #expect(noBPF.stdout.contains("syscalls:sys_exit_* tracepoints attached one by one: BPF is not allowed (--no-bpf)"))
    #expect(!noBPF.stdout.contains("carried by:"))
  }
}
