import Glibc
import Testing

/// Kernel and user stacks, captured at the event by the capture program and printed as bpftrace
/// 0.17 prints them.
@Suite(.serialized) struct StackTests {
  /// A copy of the workload under a name of its own: other suites run the shared one meanwhile,
  /// and these tests filter on the name.
  static let workload: String? = KernelEventTests.workload.flatMap { shared in
    let copy = "/tmp/scry-stackwl-\(getpid())"
    return Run.program("/bin/cp", [shared, copy]).status == 0 ? copy : nil
  }

  func workloadOrSkip() -> String? {
    guard kernelAvailable("stack tests") else { return nil }
    guard let workload = Self.workload else {
      Issue.record("could not build the workload with gcc")
      return nil
    }
    return workload
  }

  /// The tracer's output without the workload's own timing line.
  static func traced(_ output: String) -> String {
    output.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("mode=") }.joined(separator: "\n")
  }

  @Test func kernelStacksMatchBpftrace() throws {
    guard let workload = workloadOrSkip(), let bpftrace = bpftraceBinary() else { return }
    // One deterministic kernel path (getppid through the syscall tracepoint), in every mode.
    let name = String(workload.split(separator: "/").last!.prefix(15))
    let script = """
      tracepoint:syscalls:sys_enter_getppid /comm == "\(name)"/ { @[kstack] = count(); @d[kstack(3)] = count(); \
      @p[kstack(perf, 3)] = count(); }
      """
    // The kernel calls a tracepoint's one callback directly and goes through `__traceiter_sys_enter`
    // only while another consumer (a test running beside this one) is attached too: the two
    // runs agree only when they saw the same, so a run that differs is tried again.
    var reference = Run.program(bpftrace, ["-c", "\(workload) syscall 300 0", "-e", script])
    var ours = scry("-c", "\(workload) syscall 300 0", "-e", script)
    for _ in 0..<4 where Self.traced(ours.stdout) != Self.traced(reference.stdout) {
      reference = Run.program(bpftrace, ["-c", "\(workload) syscall 300 0", "-e", script])
      ours = scry("-c", "\(workload) syscall 300 0", "-e", script)
    }
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(ours.stdout.contains("]: 300\n"), "\(ours.stdout)")
    #expect(Self.traced(ours.stdout) == Self.traced(reference.stdout), "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  @Test func stacksAsValuesPrintWithBpftracesIndent() throws {
    guard let workload = workloadOrSkip(), let bpftrace = bpftraceBinary() else { return }
    let name = String(workload.split(separator: "/").last!.prefix(15))
    let script = """
      tracepoint:syscalls:sys_enter_getppid /comm == "\(name)"/ { if (@n == 0) { print(kstack(2)); \
      printf("[%s]\\n", kstack(perf, 2)); } @n = 1; }
      """
    let reference = Run.program(bpftrace, ["-c", "\(workload) syscall 5 0", "-e", script])
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = scry("-c", "\(workload) syscall 5 0", "-e", script)
    #expect(Self.traced(ours.stdout) == Self.traced(reference.stdout), "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  /// The entries of a printed map whose key ends in the task `name`.
  static func entries(of output: String, task name: String) -> [String] {
    output.split(separator: "\n@", omittingEmptySubsequences: false).map(String.init).filter { $0.contains(", \(name)]: ") }
  }

  /// A block that only counts per stack is counted in the kernel (stack ids, named at print
  /// time); the same keys through the ring (a scratch variable keeps the block off the kernel
  /// counter) must print the same text.
  @Test func stacksCountedInTheKernelPrintAsTheRingPathDoes() throws {
    guard let workload = workloadOrSkip() else { return }
    let name = String(workload.split(separator: "/").last!.prefix(15))
    let kernel = """
      tracepoint:syscalls:sys_enter_getppid { @[kstack, ustack, comm] = count(); }
      tracepoint:syscalls:sys_enter_getppid { @p[kstack(perf, 3), ustack(perf, 2), comm] = count(); }
      tracepoint:syscalls:sys_enter_getppid { @d[ustack(1), kstack(2), comm] = count(); }
      """
    let ring = kernel.replacingOccurrences(of: "{ @", with: "{ $x = 1; @")
    let kernelPlan = scry("--plan", "-e", kernel)
    #expect(kernelPlan.stdout.components(separatedBy: "mode: counting per stack in the kernel").count == 4, "\(kernelPlan.stdout)")
    #expect(!scry("--plan", "-e", ring).stdout.contains("counting per stack"))
    // User addresses (perf mode) differ between the two processes: ASLR.
    func masked(_ entries: [String]) -> [String] {
      entries.map { entry in
        entry.split(separator: "\n", omittingEmptySubsequences: false).map { line in
          line.hasPrefix("\t") && !line.hasPrefix("\tffff") ? String(line.drop { $0 != " " }) : String(line)
        }.joined(separator: "\n")
      }
    }
    // As in kernelStacksMatchBpftrace: another consumer of sys_enter attached meanwhile puts
    // `__traceiter_sys_enter` in one run's stacks only; such a pair is run again.
    var counted = scry("-c", "\(workload) syscall 300 0", "-e", kernel)
    var sampled = scry("-c", "\(workload) syscall 300 0", "-e", ring)
    for _ in 0..<4 where masked(Self.entries(of: counted.stdout, task: name)) != masked(Self.entries(of: sampled.stdout, task: name)) {
      counted = scry("-c", "\(workload) syscall 300 0", "-e", kernel)
      sampled = scry("-c", "\(workload) syscall 300 0", "-e", ring)
    }
    #expect(counted.status == 0 && sampled.status == 0, "\(counted.stderr)\n\(sampled.stderr)")
    let ours = Self.entries(of: counted.stdout, task: name)
    #expect(ours.count == 3 && ours.allSatisfy { $0.hasSuffix("]: 300") || $0.contains("]: 300\n") }, "\(counted.stdout)")
    #expect(ours.contains { $0.contains("do_syscall_64+") }, "\(counted.stdout)")
    #expect(masked(ours) == masked(Self.entries(of: sampled.stdout, task: name)), "\nkernel:\n\(counted.stdout)\nring:\n\(sampled.stdout)")
  }

  /// A profile counted per stack in the kernel names the kernel path of a busy process and the
  /// process's own frames, with its name in the key.
  @Test func profileCountedPerStackInTheKernelNamesBothSides() throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-kprofile-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("workload.c", into: binary, flags: ["-O0", "-fno-omit-frame-pointer"])
    let name = String(binary.split(separator: "/").last!.prefix(15))
    let script = "profile:hz:999 { @[kstack, ustack, comm] = count(); }"
    #expect(scry("--plan", "-e", script).stdout.contains("mode: counting per stack in the kernel"))
    let run = scry("-c", "\(binary) syscall 3000000 0", "-e", script)
    #expect(run.status == 0, "\(run.stderr)")
    let ours = Self.entries(of: run.stdout, task: name)
    #expect(ours.contains { $0.contains("do_syscall_64+") && $0.contains("__libc_start_call_main+") }, "\(run.stdout)")
  }

  /// Under --no-bpf the stacks are perf's callchain (PERF_SAMPLE_CALLCHAIN).
  @Test(arguments: [[], ["--no-bpf"]])
  func profileNamesTheKernelPathOfABusyLoop(flags: [String]) throws {
    guard let workload = workloadOrSkip() else { return }
    let run = Run.program(scryBinary(),
      flags + ["-c", "\(workload) syscall 3000000 0", "-e",
      "profile:hz:999 { @[kstack] = count(); }"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("do_syscall_64+") || run.stdout.contains("entry_SYSCALL_64"), "\(run.stdout)")
  }

  @Test(arguments: ["-pie", "-no-pie"], [[], ["--no-bpf"]])
  func userStacksAreNamedAfterTheProcessExits(linking: String, flags: [String]) throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-ustack\(linking)\(flags.count)-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("uprobe_target.c", into: binary, flags: ["-O0", "-fno-omit-frame-pointer", linking])
    // The process is gone when the maps print: its mappings were kept from MMAP2 records.
    let run = Run.program(scryBinary(), flags + ["-c", "\(binary) 3 x", "-e", "uprobe:\(binary):target { @[ustack] = count(); @p[ustack(perf, 2)] = count(); }"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@[\n    target+0\n    main+"), "\(run.stdout)")
    #expect(run.stdout.contains(" target+0 (\(binary))\n"), "\(run.stdout)")
    #expect(run.stdout.contains("]: 3\n"), "\(run.stdout)")
  }

  @Test func foldedOutputRoundTripsIntoTheCounts() throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-folded-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("uprobe_target.c", into: binary, flags: ["-O0", "-fno-omit-frame-pointer"])
    let run = scry("-f", "folded", "-c", "\(binary) 7 x", "-e", "uprobe:\(binary):target { @[ustack, comm] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let name = String(binary.split(separator: "/").last!.prefix(15))
    let folded = run.stdout.split(separator: "\n").filter { $0.hasPrefix(name + ";") }
    // One line: the task, then frames from the outermost to `target`, then the count.
    #expect(folded.count == 1, "\(run.stdout)")
    let line = try #require(folded.first)
    #expect(line.hasSuffix(";main;target 7"), "\(line)")
  }

  @Test func flameGraphIsValidSVGWithItsScript() throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-flame-\(getpid())"
    let svg = binary + ".svg"
    defer {
      unlink(binary)
      unlink(svg)
    }
    try buildFixture("uprobe_target.c", into: binary, flags: ["-O0", "-fno-omit-frame-pointer"])
    let run = scry("--flamegraph", svg, "-c", "\(binary) 7 x", "-e", "uprobe:\(binary):target { @[ustack, comm] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("Wrote a flame graph of 7 samples"), "\(run.stderr)")
    // An XML parser reads it whole; the root frame holds every sample; the frames of the
    // stack are there with tooltips; the zoom and search script is inside.
    let check = """
      import sys, xml.dom.minidom as m
      d = m.parse(sys.argv[1])
      titles = [t.firstChild.data for t in d.getElementsByTagName("title")]
      scripts = d.getElementsByTagName("script")
      print("\\n".join(titles))
      print("script" if scripts and "function zoom" in scripts[0].firstChild.data else "no script")
      """
    let parsed = Run.program("/usr/bin/env", ["python3", "-c", check, svg])
    #expect(parsed.status == 0, "\(parsed.stderr)")
    #expect(parsed.stdout.contains("all (7 samples, 100%)"), "\(parsed.stdout)")
    #expect(parsed.stdout.contains("main (7 samples, 100%)"), "\(parsed.stdout)")
    #expect(parsed.stdout.contains("target (7 samples, 100%)"), "\(parsed.stdout)")
    #expect(parsed.stdout.hasSuffix("script\n"), "\(parsed.stdout)")
  }

  @Test(arguments: [[], ["--no-bpf"]])
  func usymNamesAFunctionOfAProcessThatHasExited(flags: [String]) throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-usym-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("uprobe_target.c", into: binary)
    let run = Run.program(
      scryBinary(), flags + ["-c", "\(binary) 1 x", "-e", "uprobe:\(binary):register_callback { @[usym(arg0)] = count(); }"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@[target]: 1\n"), "\(flags): \(run.stdout)")
  }

  @Test(arguments: [[], ["--no-bpf"]])
  func usymNamesJITCodeThroughThePerfMap(flags: [String]) throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-jit-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("jit_target.c", into: binary)
    let run = Run.program(scryBinary(), flags + ["-c", binary, "-e", "uprobe:\(binary):announce { @[usym(arg0)] = count(); }"])
    // The fixture leaves its map behind, as JITs do.
    if let line = run.stdout.split(separator: "\n").first(where: { $0.hasPrefix("pid=") }) {
      unlink("/tmp/perf-\(line.dropFirst(4)).map")
    }
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@[jitted_function]: 1\n"), "\(flags): \(run.stdout)")
  }

  /// A process that predates the run maps a library during it: the library's MMAP2 record must
  /// not hide the mappings the process already had.
  @Test(arguments: [[], ["--no-bpf"]])
  func userStacksOfAProcessThatMapsALibraryDuringTheRunKeepTheirNames(flags: [String]) throws {
    guard kernelAvailable("stack tests") else { return }
    let binary = "/tmp/scry-dlopen\(flags.count)-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("dlopen_target.c", into: binary, flags: ["-O0", "-fno-omit-frame-pointer"])
    var child: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = ([binary, "3", "500"] as [String]).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    try #require(posix_spawn(&child, binary, nil, nil, argv, environ) == 0)
    let run = Run.program(scryBinary(), flags + ["-p", "\(child)", "-e", "uprobe:\(binary):target { @[ustack(2)] = count(); }"])
    var status: Int32 = 0
    waitpid(child, &status, 0)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@[\n    target+0\n    main+"), "\(flags): \(run.stdout)")
  }

  /// Stacks and strings behind pointers come from the same capture program, in one record. Eight
  /// frames: with another tracer on sys_enter (a concurrent test), the top ones are tracing code.
  @Test func stacksBesideDataBehindPointers() {
    guard kernelAvailable("stack tests") else { return }
    let run = scry(
      "-e", "tracepoint:syscalls:sys_enter_openat /comm == \"cat\"/ { @[kstack(8), str(args.filename)] = count(); }",
      "-c", "/bin/cat /etc/hostname")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("/etc/hostname]: 1"), "\(run.stdout)")
    #expect(run.stdout.contains("do_syscall_64") || run.stdout.contains("entry_SYSCALL"), "\(run.stdout)")
  }
}
