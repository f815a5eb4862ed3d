import Glibc
import Testing

/// Real uprobes and uretprobes on a small C program that calls `target(int, const char *)`
/// exactly N times, built by the test as a PIE and as a non-PIE executable.
@Suite(.serialized) struct UprobeTests {
  static let builds: (pie: String, fixed: String)? = {
    let source = scriptsRoot() + "/Tests/Fixtures/uprobe_target.c"
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let pie = "/tmp/scry-uprobe-pie-\(getpid())"
    let fixed = "/tmp/scry-uprobe-nopie-\(getpid())"
    guard Run.program(cc, ["-O2", "-pie", "-fPIE", "-o", pie, source]).status == 0,
      Run.program(cc, ["-O2", "-no-pie", "-fno-PIE", "-o", fixed, source]).status == 0
    else { return nil }
    return (pie, fixed)
  }()

  func buildsOrSkip() -> (pie: String, fixed: String)? {
    guard kernelAvailable("uprobe tests") else { return nil }
    guard let builds = Self.builds else {
      Issue.record("could not build Tests/Fixtures/uprobe_target.c with gcc")
      return nil
    }
    return builds
  }

  /// Lines of uprobe_events that belong to this suite's Scry runs (on its builds). Other suites
  /// run meanwhile, and their live runs' probes are theirs, not leftovers.
  static func scryEvents() -> [Substring] {
    readWhole("/sys/kernel/tracing/uprobe_events").split(separator: "\n").filter {
      $0.contains(":scry_") && $0.contains("/tmp/scry-uprobe-")
    }
  }

  /// `uprobe:BINARY:ADDRESS` (hex or decimal) at a function's start fires as the function's probe.
  @Test func anAddressProbeFiresAtItsFunction() throws {
    guard let builds = buildsOrSkip() else { return }
    let symbols = shell("nm \(builds.fixed) | grep ' T target$' | cut -d' ' -f1").stdout
    let address = try #require(UInt64(symbols.prefix { $0 != "\n" }, radix: 16), "no 'target' in nm's output: \(symbols)")
    for spelling in ["0x" + String(address, radix: 16), String(address)] {
      let run = scry("-c", "\(builds.fixed) 70 x", "-e", "uprobe:\(builds.fixed):\(spelling) { @calls = count(); }")
      #expect(run.status == 0, "\(run.stderr)")
      #expect(run.stdout.hasSuffix("@calls: 70\n"), "\(spelling): \(run.stdout)")
    }
  }

  @Test func countsEveryCallInPIEAndFixedAddressBuilds() throws {
    guard let builds = buildsOrSkip() else { return }
    for binary in [builds.pie, builds.fixed] {
      let run = scry("-c", "\(binary) 700 x", "-e", "uprobe:\(binary):target { @calls = count(); }")
      #expect(run.status == 0, "\(run.stderr)")
      #expect(run.stdout.hasSuffix("@calls: 700\n"), "\(binary): \(run.stdout)")
      // Sampled (not counted by the kernel) as well: the record reaches the actions.
      let sampled = scry("-c", "\(binary) 300 x", "-e", "uprobe:\(binary):target { @[comm] = count(); }")
      #expect(sampled.stdout.contains("]: 300\n"), "\(binary): \(sampled.stdout) \(sampled.stderr)")
    }
    #expect(Self.scryEvents().isEmpty)
  }

  /// Keyed counts in the kernel go through a per-CPU cache of 64 keys: 500 keys in turn evict
  /// one another at every call, and each still counts exactly; five keys never leave it.
  @Test func keyedCountsStayExactWhetherKeysStayCachedOrEvictEachOther() throws {
    guard let builds = buildsOrSkip() else { return }
    let evicting = scry("-c", "\(builds.pie) 5000 x", "-e", "uprobe:\(builds.pie):target { @[arg0 % 500] = count(); }")
    #expect(evicting.status == 0, "\(evicting.stderr)")
    let counts = evicting.stdout.split(separator: "\n").filter { $0.hasPrefix("@[") }
    #expect(counts.count == 500, "\(evicting.stdout)")
    #expect(counts.allSatisfy { $0.hasSuffix("]: 10") }, "\(evicting.stdout)")
    let cached = scry("-c", "\(builds.pie) 5000 x", "-e", "uprobe:\(builds.pie):target { @[arg0 / 1000] = count(); }")
    let lines = cached.stdout.split(separator: "\n").filter { $0.hasPrefix("@[") }.sorted()
    #expect(lines == (0..<5).map { "@[\($0)]: 1000" }, "\(cached.stdout) \(cached.stderr)")
  }

  @Test func fetchesArgumentsAndStringsAtTheProbe() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry(
      "-c", "\(builds.pie) 5 hello", "-e",
      "uprobe:\(builds.pie):target { printf(\"%d %s %s\\n\", arg0, str(arg1), str(arg1, 3)); }")
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n").filter { $0.first?.isNumber ?? false }
    #expect(lines == (0..<5).map { "\($0) hello-\($0) hel" }, "\(run.stdout)")
  }

  @Test func readsIntegersThroughPointers() throws {
    guard let builds = buildsOrSkip() else { return }
    // The first four bytes of "abcd-0" as a little-endian u32, and one byte at an offset.
    let run = scry(
      "-c", "\(builds.fixed) 2 abcd", "-e",
      "uprobe:\(builds.fixed):target { printf(\"%x %c %r\\n\", *(uint32 *)arg1, *(uint8 *)(arg1 + 4), buf(arg1 + 1, 3)); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("64636261 - bcd\n64636261 - bcd\n"), "\(run.stdout)")
  }

  @Test func uretprobeSeesTheReturnValue() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry("-c", "\(builds.fixed) 4 ab", "-e", "uretprobe:\(builds.fixed):target { printf(\"%d\\n\", retval); }")
    #expect(run.status == 0, "\(run.stderr)")
    let values = run.stdout.split(separator: "\n").compactMap { Int($0) }
    // target(i, "ab-i") returns 2i + strlen("ab-i").
    #expect(values == [4, 6, 8, 10], "\(run.stdout)")
  }

  @Test func dashPLimitsTheProbeToOneOfTwoCopies() throws {
    guard let builds = buildsOrSkip() else { return }
    var first: pid_t = 0
    var second: pid_t = 0
    for (pid, tag) in [(withUnsafeMutablePointer(to: &first) { $0 }, "alpha"), (withUnsafeMutablePointer(to: &second) { $0 }, "beta")] {
      let argv: [UnsafeMutablePointer<CChar>?] = ([builds.pie, "50", tag, "1500"] as [String]).map { strdup($0) } + [nil]
      defer { for p in argv { free(p) } }
      try #require(posix_spawn(pid, builds.pie, nil, nil, argv, environ) == 0)
    }
    let run = scry("-p", "\(first)", "-e", "uprobe:\(builds.pie):target { @[str(arg1, 5)] = count(); }")
    var status: Int32 = 0
    waitpid(first, &status, 0)
    waitpid(second, &status, 0)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@[alpha]: 50\n"), "\(run.stdout)")
    #expect(!run.stdout.contains("beta"), "\(run.stdout)")
  }

  @Test func libraryFunctionsResolveThroughTheLinkerCache() throws {
    guard let builds = buildsOrSkip() else { return }
    // Every snprintf in the target is a call into libc.
    let run = scry("-c", "\(builds.fixed) 20 x", "-e", "uprobe:libc:snprintf /pid == cpid/ { @calls = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@calls: 20\n"), "\(run.stdout)")
  }

  @Test func unknownFunctionSuggestsCloseNames() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry("-e", "uprobe:\(builds.pie):targt { }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("no function matching 'targt'"), "\(run.stderr)")
    #expect(run.stderr.contains("'target'"), "\(run.stderr)")
  }

  @Test func errorAfterCreatingTheProbeLeavesNothingBehind() throws {
    guard let builds = buildsOrSkip() else { return }
    // The hardware event fails (no PMU here) after the uprobe was created.
    let run = scry("-e", "uprobe:\(builds.pie):target { } hardware:cycles:1000000 { }")
    #expect(run.status == 1)
    #expect(Self.scryEvents().isEmpty, "\(Self.scryEvents())")
  }

  @Test func signalsRemoveTheProbes() throws {
    guard let builds = buildsOrSkip() else { return }
    for signal in [SIGINT, SIGTERM] {
      // Without BPF the count is a perf counter on a tracefs uprobe.
      let pid = try startScry("uprobe:\(builds.pie):target { @c = count(); }", flags: ["--no-bpf"])
      #expect(Self.scryEvents().contains { $0.contains("scry_\(pid)/") }, "probe not created")
      kill(pid, signal)
      var status: Int32 = 0
      waitpid(pid, &status, 0)
      #expect((status & 0x7f) == 0, "killed by signal \(status & 0x7f)")
      #expect(Self.scryEvents().isEmpty, "\(Self.scryEvents())")
    }
  }

  /// With BPF a count's uprobe is a uprobe_multi link (or a PMU event): SIGKILL leaves nothing.
  @Test func aCountedUprobeLeavesNothingInTraceFSEvenAfterSIGKILL() throws {
    guard let builds = buildsOrSkip() else { return }
    let pid = try startScry("uprobe:\(builds.pie):target { @c = count(); } uprobe:\(builds.pie):target { @k[arg0 % 2] = count(); }")
    #expect(!Self.scryEvents().contains { $0.contains("scry_\(pid)/") }, "\(Self.scryEvents())")
    kill(pid, SIGKILL)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    #expect(!Self.scryEvents().contains { $0.contains("scry_\(pid)/") }, "\(Self.scryEvents())")
  }

  /// A run killed with SIGKILL while its count probe (made in tracefs) is attached: its pid.
  func killedRunLeavingProbes(_ binary: String) throws -> pid_t {
    let pid = try startScry("uprobe:\(binary):target { @c = count(); }", flags: ["--no-bpf"])
    kill(pid, SIGKILL)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    #expect(Self.scryEvents().contains { $0.contains("scry_\(pid)/") }, "nothing was left behind to clean")
    return pid
  }

  @Test func leftoversOfAKilledRunAreRemovedByTheNext() throws {
    guard let builds = buildsOrSkip() else { return }
    let pid = try killedRunLeavingProbes(builds.pie)
    let next = scry("-c", "\(builds.pie) 3 x", "-e", "uprobe:\(builds.pie):target { @c = count(); }")
    // Every run cleans up, so a run of another suite may have done it first: the message is
    // this run's only when the leftovers were still there.
    #expect(next.stderr.contains("scry_\(pid)") || !next.stderr.contains("Removed probes"), "\(next.stderr)")
    #expect(next.stdout.hasSuffix("@c: 3\n"), "\(next.stdout)")
    #expect(Self.scryEvents().isEmpty, "\(Self.scryEvents())")
  }

  @Test func anyRunCleansUpAfterAKilledOne() throws {
    guard let builds = buildsOrSkip() else { return }
    let pid = try killedRunLeavingProbes(builds.pie)
    // A run that traces nothing dynamic (here, nothing at all) removes them too.
    let next = scry("-e", "BEGIN { exit(); }")
    #expect(next.status == 0, "\(next.stderr)")
    // As above: another suite's run may have cleaned them first; either way they are gone.
    #expect(next.stderr.contains("scry_\(pid)") || !next.stderr.contains("Removed probes"), "\(next.stderr)")
    #expect(Self.scryEvents().isEmpty, "\(Self.scryEvents())")
  }

  @Test func aClosedOutputEndsTheRunAndLeavesNothing() throws {
    guard let builds = buildsOrSkip() else { return }
    // `scry … | head -1`: the reader goes away while probes fire and print.
    let run = Run.program(
      "/bin/bash",
      ["-c", "'\(scryBinary())' -c '\(builds.pie) 200000 x' -e 'uprobe:\(builds.pie):target { printf(\"%d\\n\", arg0); }' | head -1; echo \"status=${PIPESTATUS[0]}\""])
    #expect(run.stdout.contains("status=0"), "\(run.stdout) \(run.stderr)")
    #expect(Self.scryEvents().isEmpty, "\(Self.scryEvents())")
  }

  @Test func funcNamesTheProbedFunction() throws {
    guard let builds = buildsOrSkip() else { return }
    for flags in [[], ["--no-bpf"]] {
      let run = Run.program(
        scryBinary(), flags + ["-c", "\(builds.pie) 2 x", "-e", "uprobe:\(builds.pie):targ* { @[func] = count(); }"])
      #expect(run.status == 0, "\(run.stderr)")
      #expect(run.stdout.hasSuffix("@[target]: 2\n"), "\(flags): \(run.stdout)")
    }
  }

  @Test func planShowsTheDefinitionLines() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry("--plan", "-e", "uretprobe:\(builds.fixed):target { printf(\"%s\\n\", str(retval)); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("uprobe_events (if BPF is refused): r:scry_"), "\(run.stdout)")
    #expect(run.stdout.contains("a0=+0($retval):ustring"), "\(run.stdout)")
    #expect(run.stdout.contains("delivered by: a BPF kprobe-type (on a uprobe made through the uprobe PMU)"), "\(run.stdout)")
    let perfOnly = scry("--plan", "--no-bpf", "-e", "uretprobe:\(builds.fixed):target { printf(\"%s\\n\", str(retval)); }")
    #expect(perfOnly.stdout.contains("uprobe_events: r:scry_"), "\(perfOnly.stdout)")
  }

  /// Every uprobe test again with --no-bpf lives in the tests that pass it; here the two paths
  /// must agree on arguments, strings, memory reads, stack arguments and return values.
  @Test func captureProgramAndTracefsAgree() throws {
    guard let builds = buildsOrSkip() else { return }
    for script in [
      "uprobe:\(builds.pie):target { printf(\"%d %s %s %d\\n\", arg0, str(arg1), str(arg1, 3), *(uint8 *)arg1); }",
      "uretprobe:\(builds.pie):target { printf(\"%d\\n\", retval); }",
    ] {
      let bpf = scry("-c", "\(builds.pie) 3 hello", "-e", script)
      let tracefs = scry("--no-bpf", "-c", "\(builds.pie) 3 hello", "-e", script)
      #expect(bpf.status == 0 && tracefs.status == 0, "\(bpf.stderr) \(tracefs.stderr)")
      #expect(bpf.stdout == tracefs.stdout, "\nbpf:\n\(bpf.stdout)\ntracefs:\n\(tracefs.stdout)")
      #expect(bpf.stdout.split(separator: "\n").count >= 4, "\(bpf.stdout)")
    }
  }

  @Test func kprobeOnThisKernelSaysWhy() throws {
    guard kernelAvailable("uprobe tests") else { return }
    guard access("/sys/kernel/tracing/kprobe_events", F_OK) != 0 else {
      print("note: this kernel has kprobes; the no-kprobe message is not reachable")
      return
    }
    let run = scry("-e", "kprobe:do_sys_open { }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("no kprobe support"), "\(run.stderr)")
    #expect(run.stderr.contains("tracepoint:syscalls:sys_enter_openat"), "\(run.stderr)")
  }

  /// Starts scry in the background with output to a file, and waits until it has attached.
  func startScry(_ program: String, flags: [String] = []) throws -> pid_t {
    let out = "/tmp/scry-uprobe-bg-\(getpid()).txt"
    let argv: [UnsafeMutablePointer<CChar>?] = ([scryBinary()] + flags + ["-o", out, "-e", program]).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    try #require(posix_spawn(&pid, scryBinary(), nil, nil, argv, environ) == 0)
    for _ in 0..<100 where !readWhole(out).contains("Attaching") { usleep(50_000) }
    unlink(out)
    return pid
  }

  @Test func listingFollowsWildcardsInTheBinaryPathAndAProcess() throws {
    guard let builds = buildsOrSkip() else { return }
    // Both builds, each under its path as matched (glob order), as bpftrace lists them.
    let wildcard = scry("-l", "uprobe:/tmp/scry-uprobe-*-\(getpid()):tar*")
    #expect(wildcard.status == 0, "\(wildcard.stderr)")
    #expect(wildcard.stdout == "uprobe:\(builds.fixed):target\nuprobe:\(builds.pie):target\n", "\(wildcard.stdout)")
    // `-p`: the functions of the process's executable, through its root.
    var child: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ([builds.pie, "1", "x", "2000"] as [String]).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    try #require(posix_spawn(&child, builds.pie, nil, nil, argv, environ) == 0)
    usleep(200_000)
    let listed = scry("-l", "-p", "\(child)", "uprobe:*:register_c*")
    kill(child, SIGKILL)
    var status: Int32 = 0
    waitpid(child, &status, 0)
    #expect(listed.status == 0, "\(listed.stderr)")
    #expect(listed.stdout == "uprobe:/proc/\(child)/root\(builds.pie):register_callback\n", "\(listed.stdout)")
  }
}
