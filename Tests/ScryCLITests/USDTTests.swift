import Glibc
import Testing

/// USDT probes under Scry and bpftrace 0.17 side by side, on Tests/Fixtures/usdt_target.c (probes
/// with semaphores, integer arguments of each size and sign, a string, a constant) and its shared
/// library usdt_lib.c (probes without semaphores), and on python3's own probes.
@Suite(.serialized) struct USDTTests {
  /// The executable and its library, in a directory of their own (the executable finds the
  /// library through its RUNPATH, `$ORIGIN`).
  static let directory = "/tmp/scry-usdt-\(getpid())"
  static let builds: (binary: String, library: String)? = {
    let directory = Self.directory
    mkdir(directory, 0o755)
    // A static fixture has no teardown: the files go when the test process exits.
    atexit {
      for name in ["usdt_target", "libscryusdt.so"] { unlink(USDTTests.directory + "/" + name) }
      rmdir(USDTTests.directory)
    }
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let fixtures = scriptsRoot() + "/Tests/Fixtures/"
    let library = directory + "/libscryusdt.so"
    let binary = directory + "/usdt_target"
    // -O0 for the library: its arguments are memory operands (`-4@-20(%rbp)`); -O2 for the
    // executable: registers of every width and a constant.
    guard Run.program(cc, ["-O0", "-shared", "-fPIC", "-o", library, fixtures + "usdt_lib.c"]).status == 0,
      Run.program(
        cc, ["-O2", "-o", binary, fixtures + "usdt_target.c", "-L", directory, "-lscryusdt", "-Wl,-rpath,$ORIGIN"]
      ).status == 0
    else { return nil }
    return (binary, library)
  }()

  func buildsOrSkip(_ what: String) -> (binary: String, library: String)? {
    guard kernelAvailable(what) else { return nil }
    guard let builds = Self.builds else {
      Issue.record("could not build Tests/Fixtures/usdt_target.c (is systemtap-sdt-dev installed for <sys/sdt.h>?)")
      return nil
    }
    return builds
  }

  /// SystemTap's `process("PATH").mark("NAME")` is the same USDT probe; `$arg1` is the note's
  /// first argument (SystemTap counts from 1), as bpftrace's `arg0` prints it.
  @Test func systemTapMarkReadsTheSameArguments() throws {
    guard let builds = buildsOrSkip("SystemTap marks") else { return }
    func on(_ script: String) -> String { script.split(separator: "BIN", omittingEmptySubsequences: false).joined(separator: builds.binary) }
    let ours = scry("-c", "\(builds.binary) 3", "-e", on(#"probe process("BIN").mark("ints") { printf("%d %d\n", $arg1, $arg2) }"#))
    #expect(ours.status == 0, "\(ours.stderr)")
    let bpftraceForm = scry("-q", "-c", "\(builds.binary) 3", "-e", on(#"usdt:BIN:scry:ints { printf("%d %d\n", arg0, arg1); }"#))
    // bpftrace's form ends with the blank lines before the maps; SystemTap prints none.
    func lines(_ text: String) -> [Substring] { text.split(separator: "\n") }
    #expect(lines(ours.stdout) == ["-1 60000", "-2 60001", "-3 60002"], "\(ours.stdout)")
    #expect(lines(ours.stdout) == lines(bpftraceForm.stdout), "\nstap:\n\(ours.stdout)\nbpftrace form:\n\(bpftraceForm.stdout)")
    let wrong = scry("--dry-run", "-e", on(#"probe process("BIN").mark("ints") { println($fd) }"#))
    #expect(wrong.status == 1 && wrong.stderr.contains("a mark probe has only '$arg1'"), "\(wrong.stderr)")
  }

  static let scripts = [
    // Integers of 1, 2, 4 and 8 bytes, signed and not, in registers; printed and in a map.
    #"usdt:BIN:scry:ints { printf("%d %d %d %d | %u %x\n", arg0, arg1, arg2, arg3, arg0, arg3); print(arg0); @sum = sum(arg2); }"#,
    // A string argument, the provider left out.
    #"usdt:BIN:text { printf("%s %d\n", str(arg0), arg1); @[str(arg0)] = sum(arg1 + 1); }"#,
    // The guarded probe fires only while the tracer holds its semaphore.
    #"usdt:BIN:scry:guarded { printf("guarded %d\n", arg0); }"#,
    // A constant argument (`-4@$5`), and wildcards over provider and name.
    #"usdt:BIN:scry:con* { printf("%s %d\n", probe, arg0); } usdt:BIN:*:g*ded { @g = count(); }"#,
    // One name at two addresses (an inlined probe): both attached, as bpftrace attaches them.
    #"usdt:BIN:scry:twice { printf("%d\n", arg0); @ = count(); }"#,
    // A wildcard in the path.
    #"usdt:BIN*:scry:ints { printf("%s %d\n", probe, arg2); }"#,
    // An array element at an indexed address (`-4@(%rdi,%rsi,4)`), computed by the capture program.
    #"usdt:BIN:scry:indexed { printf("%d\n", arg0); @max = max(arg0); }"#,
    // One block over probes whose arg0 differ in size and sign (1, 4 bytes; register, constant):
    // bpftrace compiles each probe on its own, Scry splits the block by argument shape.
    #"usdt:BIN:scry:ints, usdt:BIN:scry:con*, usdt:BIN:scry:twice { printf("%s %d\n", probe, arg0); @[probe] = sum(arg0); }"#,
  ]

  @Test(arguments: scripts)
  func scriptsMatchBpftrace(_ script: String) throws {
    guard let builds = buildsOrSkip("usdt bpftrace parity") else { return }
    let program = script.split(separator: "BIN", omittingEmptySubsequences: false).joined(separator: builds.binary)
    try expectSameOutputAsBpftrace(["-c", "\(builds.binary) 3 5"], program)
  }

  @Test func jsonMatchesBpftrace() throws {
    guard let builds = buildsOrSkip("usdt bpftrace parity") else { return }
    try expectSameOutputAsBpftrace(
      ["-f", "json", "-c", "\(builds.binary) 2 5"],
      "usdt:\(builds.binary):scry:ints { printf(\"%d %d\\n\", arg0, arg2); @[arg1] = sum(arg1); }")
  }

  /// The library's probes, attached by the library's path while a process runs it: bpftrace 0.17
  /// cannot place them with `-c` (it looks before the library is loaded), so both attach by path.
  @Test func libraryProbesMatchBpftrace() throws {
    guard let builds = buildsOrSkip("usdt bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let target = try #require(TargetProcess(builds.binary, ["0", "5"]))
    defer { target.stop() }
    let program = """
      usdt:\(builds.library):scrylib:fired { printf("%d %d\\n", arg1 - 2 * arg0, arg0 >= 0); if (@n++ == 2) { exit(); } }
      """
    let reference = Run.program(bpftrace, ["-e", program])
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = scry("-e", program)
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    #expect(ours.stdout.contains("0 1\n0 1\n0 1\n"))
  }

  /// A probe whose name holds quotes, written with escaped quotes in a quoted spec part.
  @Test func quotedProbeNameMatchesBpftrace() throws {
    guard let builds = buildsOrSkip("usdt bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let target = try #require(TargetProcess(builds.binary, ["0", "5"]))
    defer { target.stop() }
    let program = #"usdt:\#(builds.library):scrylib:"\"quoted\"" { printf("%d\n", arg0 >= 0); if (@n++ == 1) { exit(); } }"#
    let reference = Run.program(bpftrace, ["-e", program])
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = scry("-e", program)
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    #expect(ours.stdout.contains("1\n1\n"))
  }

  /// The semaphore is set through the uprobe PMU (BPF) and through uprobe_events (`--no-bpf`,
  /// `PATH:0xOFFSET(0xSEMAPHORE)`): the guarded probe fires on every round either way, and
  /// never when no tracer holds it (the fixture's uprobe-able `fire` still runs).
  @Test func semaphoreIsHeldWhileTracing() throws {
    guard let builds = buildsOrSkip("usdt semaphores") else { return }
    let script = "usdt:\(builds.binary):scry:guarded { @fired = count(); }"
    for flags in [[String](), ["--no-bpf"]] {
      let run = Run.program(scryBinary(), flags + ["-c", "\(builds.binary) 4 5", "-e", script])
      #expect(run.status == 0, "\(flags): \(run.stderr)")
      #expect(run.stdout.hasSuffix("@fired: 4\n"), "\(flags): \(run.stdout)")
    }
    // Traced by another probe of the same file, without its semaphore: the guarded branch stays off.
    let other = scry("-c", "\(builds.binary) 4 5", "-e", "usdt:\(builds.binary):scry:ints { @ints = count(); }")
    #expect(other.stdout.hasSuffix("@ints: 4\n"), "\(other.stdout) \(other.stderr)")
  }

  /// The kernel counts Scry in the semaphore of a running process while it traces, and takes the
  /// count back however Scry ends (here SIGINT): the process is left as it was found.
  @Test func semaphoreIsReleasedWhenScryEnds() throws {
    guard let builds = buildsOrSkip("usdt semaphores") else { return }
    let target = try #require(TargetProcess(builds.binary, ["0", "5"]))
    defer { target.stop() }
    let address = try #require(Self.semaphoreAddress(of: "guarded", in: builds.binary, pid: target.pid))
    #expect(Self.readHalfword(pid: target.pid, at: address) == 0)
    let tracer = try #require(
      TargetProcess(scryBinary(), ["-o", "/dev/null", "-e", "usdt:\(builds.binary):scry:guarded { @ = count(); }"]))
    usleep(800_000)
    #expect(Self.readHalfword(pid: target.pid, at: address) == 1)
    kill(tracer.pid, SIGINT)
    var status: Int32 = 0
    waitpid(tracer.pid, &status, 0)
    #expect(Self.readHalfword(pid: target.pid, at: address) == 0)
  }

  /// Where a probe's semaphore is in a running process: its link-time address (readelf -n) plus
  /// the load bias of the PIE (the start of its first mapping, at file offset 0).
  static func semaphoreAddress(of probe: String, in binary: String, pid: pid_t) -> UInt64? {
    let notes = Run.program("/usr/bin/readelf", ["-n", binary]).stdout.split(separator: "\n").map { $0.drop { $0 == " " } }
    guard let at = notes.firstIndex(where: { $0 == "Name: \(probe)" }), at + 1 < notes.count,
      let text = notes[at + 1].split(separator: " ").last, let semaphore = UInt64(text.dropFirst(2), radix: 16)
    else { return nil }
    let maps = readWhole("/proc/\(pid)/maps").split(separator: "\n")
    guard let line = maps.first(where: { $0.hasSuffix(binary) }), let start = line.split(separator: "-").first,
      let bias = UInt64(start, radix: 16)
    else { return nil }
    return bias + semaphore
  }

  static func readHalfword(pid: pid_t, at address: UInt64) -> UInt16? {
    let fd = open("/proc/\(pid)/mem", O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var value: UInt16 = 0
    return pread(fd, &value, 2, off_t(address)) == 2 ? value : nil
  }

  @Test func libraryProbesWithMemoryArgumentsUnderC() throws {
    guard let builds = buildsOrSkip("usdt library probes") else { return }
    let run = scry(
      "-c", "\(builds.binary) 3 5", "-e", "usdt:\(builds.library):scrylib:fired { printf(\"%d %d\\n\", arg0, arg1); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("\n0 0\n1 2\n2 4\n"), "\(run.stdout)")
  }

  @Test func listingMatchesBpftrace() throws {
    guard let builds = buildsOrSkip("usdt listing parity"), let bpftrace = bpftraceBinary() else { return }
    var patterns = [
      "usdt:\(builds.binary):*", "usdt:\(builds.binary):scry:i*", "usdt:\(builds.binary):ints", "usdt:\(builds.library):*",
    ]
    // A wildcard in the path: every executable file it matches (the library too), lines sorted whole.
    let directory = String(builds.binary[..<builds.binary.lastIndex(of: "/")!])
    patterns.append("usdt:\(directory)/*:*")
    if access("/usr/bin/python3", X_OK) == 0 { patterns += ["usdt:/usr/bin/python3:*", "usdt:/usr/bin/python3*:*"] }
    for pattern in patterns {
      let reference = Run.program(bpftrace, ["-l", pattern])
      let ours = scry("-l", pattern)
      #expect(!ours.stdout.isEmpty, "\(pattern): \(ours.stderr)")
      #expect(ours.stdout == reference.stdout, "\(pattern)\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    }
    // With -p: the probes of every file the process maps, named through its root.
    let target = try #require(TargetProcess(builds.binary, ["0", "50"]))
    defer { target.stop() }
    for pattern in ["usdt:*", "usdt:\(builds.binary):*"] {
      let reference = Run.program(bpftrace, ["-l", pattern, "-p", "\(target.pid)"])
      let ours = scry("-l", pattern, "-p", "\(target.pid)")
      #expect(ours.stdout.contains("/proc/\(target.pid)/root\(builds.binary):scry:ints\n"), "\(ours.stdout) \(ours.stderr)")
      #expect(ours.stdout == reference.stdout, "\(pattern) -p\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    }
  }

  /// `-p` without a path (`usdt:NAME`, `usdt::PROVIDER:NAME`, `usdt:*:PROVIDER:NAME`), as bpftrace takes it.
  @Test func processProbesWithoutAPath() throws {
    guard let builds = buildsOrSkip("usdt -p") else { return }
    let target = try #require(TargetProcess(builds.binary, ["0", "5"]))
    defer { target.stop() }
    // `guarded` fires only with its semaphore set, here through uprobe_events (a per-process run).
    for spec in ["usdt:ints", "usdt::scry:ints", "usdt:*:scry:ints", "usdt:*:scrylib:fired", "usdt::scry:guarded"] {
      let run = scry("-p", "\(target.pid)", "-e", "\(spec) { printf(\"%s\\n\", probe); exit(); }")
      #expect(run.status == 0, "\(spec): \(run.stderr)")
      #expect(run.stdout.contains("usdt:/proc/\(target.pid)/root/"), "\(spec): \(run.stdout)")
    }
  }

  /// python3's own probes (with semaphores, and a stack operand `-4@112(%rsp)`): a real binary.
  @Test func pythonGarbageCollectionMatchesBpftrace() throws {
    guard kernelAvailable("usdt on python3") else { return }
    try #require(access("/usr/bin/python3", X_OK) == 0, "python3 is missing (make deps installs it)")
    let script = "/tmp/scry-usdt-gc-\(getpid()).py"
    let file = try #require(fopen(script, "w"))
    fputs("import gc\nfor _ in range(5): gc.collect(1)\n", file)
    fclose(file)
    defer { unlink(script) }
    try expectSameOutputAsBpftrace(
      ["-c", "/usr/bin/python3 \(script)"],
      "usdt:/usr/bin/python3:python:gc__start /arg0 == 1/ { @collections[arg0] = count(); }")
  }

  @Test func badSpecsAreRefusedWithTheirSpan() throws {
    guard let builds = buildsOrSkip("usdt errors") else { return }
    let binary = builds.binary
    let cases: [(script: String, message: String)] = [
      ("usdt:\(binary):scry:nope { 1 }", "no usdt probe matching 'scry:nope' in \(binary)"),
      ("usdt:\(binary):nope:* { 1 }", "no usdt probe matching 'nope:*'"),
      ("usdt:/etc/passwd:a:b { 1 }", "not an ELF file"),
      ("usdt:/nonexistent/scry:a:b { 1 }", "cannot find binary or library '/nonexistent/scry'"),
      ("usdt:\(binary):scry:guarded { printf(\"%d\\n\", arg1); }", "has 1 argument: 'arg1' does not exist"),
      ("usdt:\(binary):scry:ints { printf(\"%d\\n\", arg4); }", "has 4 arguments: 'arg4' does not exist"),
      ("usdt:\(binary):scry:guarded { printf(\"%s\\n\", func); }", "'func' is not available in usdt probes"),
      ("usdt:ints { 1 }", "needs a process: '-p PID'"),
      ("usdt:\(binary):scry:ints { printf(\"%d\\n\", sarg0); }", "'sarg0' is not available in usdt probes"),
    ]
    for (script, message) in cases {
      let run = scry("--dry-run", "-e", script)
      #expect(run.status != 0, "\(script) was accepted")
      #expect(run.stderr.contains(message), "\(script):\n\(run.stderr)")
      #expect(run.stderr.contains("-e:1:") && run.stderr.contains("^"), "\(script): no span\n\(run.stderr)")
    }
  }

  @Test func dryRunAndPlanShowTheProbe() throws {
    guard let builds = buildsOrSkip("usdt plans") else { return }
    let script = "usdt:\(builds.binary):scry:ints { printf(\"%d\\n\", arg2); }"
    #expect(scry("--dry-run", "-e", script).status == 0)
    let plan = scry("--plan", "-e", script)
    #expect(plan.status == 0, "\(plan.stderr)")
    // The tracefs form carries the semaphore as the reference counter and the argument at its size.
    #expect(plan.stdout.contains(":0x") && plan.stdout.contains("(0x"), "\(plan.stdout)")
    #expect(plan.stdout.contains("a0=%ax:s32"), "\(plan.stdout)")
    // An indexed address is computed only by the capture program: without BPF, refused before attaching.
    let indexed = scry("--dry-run", "--no-bpf", "-e", "usdt:\(builds.binary):scry:indexed { printf(\"%d\\n\", arg0); }")
    #expect(indexed.status != 0 && indexed.stderr.contains("indexed address"), "\(indexed.stderr)")
  }
}

/// A fixture left running in the background for the length of a test.
struct TargetProcess {
  let pid: pid_t

  init?(_ path: String, _ arguments: [String]) {
    var pid: pid_t = 0
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    guard posix_spawn(&pid, path, nil, nil, argv, environ) == 0 else { return nil }
    self.pid = pid
    // Let it map its library before a tracer looks.
    usleep(200_000)
  }

  func stop() {
    kill(pid, SIGKILL)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
  }
}
