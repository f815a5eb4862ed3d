import Glibc
import Testing

/// bpftrace 0.17's own tools (/usr/sbin/*.bt) that this kernel can run, under bpftrace and under
/// Scry side by side: each run is started, given a workload that fires the tool's probes a known
/// number of times (Tests/Fixtures/tool_workload.c), then ended by SIGINT as a user would. The
/// outputs are compared after masking what legitimately differs between two runs: times, pids,
/// and lines of other tasks on the machine (see "bpftrace's tools" in docs/language.md).
@Suite(.serialized) struct ToolParityTests {
  /// Builds the workload, named so its `comm` is `tool_workload`, in a directory of its own; the
  /// caller removes both.
  static func buildWorkload() throws -> (path: String, directory: String) {
    let directory = "/tmp/scry-tool-parity-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(directory, 0o755)
    try buildFixture("tool_workload.c", into: directory + "/tool_workload", flags: ["-O2", "-lpthread"])
    return (directory + "/tool_workload", directory)
  }
  static let comm = "tool_workload"

  /// One tool: the workload's arguments, how long the run goes on after it, and what of the output
  /// is compared.
  struct Tool: CustomTestStringConvertible, Sendable {
    var name: String
    var workload: [String]
    /// Seconds between the workload's end and SIGINT (an `interval:s:1` tool needs one to pass).
    var settle: Double = 0.4
    /// The output reduced to what two runs share; `pid` is the workload's.
    var normalize: @Sendable (_ output: String, _ pid: pid_t) -> [String]
    /// What the reduced output must hold besides being bpftrace's: the workload's events.
    var expect: @Sendable (_ normalized: [String]) -> Bool
    var testDescription: String { name }
  }

  static let tools: [Tool] = [
    Tool(
      name: "execsnoop", workload: ["exec", "3"],
      // TIME(ms) and PID change from run to run; the arguments do not.
      normalize: { output, _ in
        header(output, 2) + lines(output) { $0.contains("scry-tool-parity") }.map { masked($0, fields: [0, 1]) }
      },
      expect: { $0.filter { $0.contains("/bin/echo scry-tool-parity") }.count == 3 }),
    Tool(
      name: "killsnoop", workload: ["kill", "3"],
      normalize: { output, pid in header(output, 3) + events(output, pid, timeFields: [0]) },
      expect: { $0.filter { $0.contains("tool_workload 0 PID 0 (") }.count == 3 }),
    Tool(
      name: "naptime", workload: ["nanosleep", "3"],
      // PPID and PCOMM are the test runner's, the same for both runs.
      normalize: { output, pid in header(output, 3) + events(output, pid, timeFields: [0]) },
      expect: { $0.filter { $0.contains("tool_workload 0.002 (") }.count == 3 }),
    Tool(
      // The host name is read at the call's entry and printed at its return: `str()` of a pointer
      // kept in a map. LATms is masked: a resolution may take a millisecond in either run.
      name: "gethostlatency", workload: ["resolve", "2"],
      normalize: { output, pid in header(output, 2) + events(output, pid, timeFields: [0, 3]) },
      expect: { $0.filter { $0.hasSuffix("localhost (\($0.count) columns)") || $0.contains(" localhost ") }.count == 4 }),
    Tool(
      name: "setuids", workload: ["setuid"],
      normalize: { output, pid in header(output, 3) + events(output, pid, timeFields: [0]) },
      expect: { lines in
        ["setuid uid=0 (0)", "setfsuid uid=0 (prevuid=0)", "setresuid ruid=0 euid=0 suid=0 (0)"].allSatisfy { event in
          lines.contains { $0.contains(event + " (") }
        }
      }),
    Tool(
      name: "syncsnoop", workload: ["sync", "/tmp/scry-tool-parity-sync-\(getpid())"],
      normalize: { output, pid in header(output, 3) + events(output, pid, timeFields: [0]) },
      expect: { lines in
        ["sync", "syncfs", "fsync", "fdatasync", "sync_file_range", "msync"].allSatisfy { name in
          lines.filter { $0.contains("tracepoint:syscalls:sys_enter_\(name) (") }.count == 1
        }
      }),
    Tool(
      name: "syscount", workload: ["syscalls", "100000"],
      // The top ten of the whole machine: the workload's line exactly, the others' shape (how many
      // other processes made syscalls meanwhile varies).
      normalize: { output, _ in
        deduplicated(
          lines(output) { !$0.hasPrefix("@process[") || $0.hasPrefix("@process[\(comm)]") }.map {
            $0.hasPrefix("@syscall[") ? "@syscall[N]: N" : $0
          })
      },
      expect: { lines in lines.contains { $0.hasPrefix("@process[\(comm)]: ") && (Int($0.split(separator: " ").last!) ?? 0) >= 100_000 } }),
    Tool(
      name: "pidpersec", workload: ["fork", "5"], settle: 1.3,
      // One line a second; how many seconds, and how many forks the rest of the machine made, vary.
      normalize: { output, _ in
        deduplicated(lines(output) { _ in true }.map { $0.contains("PIDs/sec") ? masked($0, fields: [0, 3], endsInNumber: true) : $0 })
      },
      expect: { $0.contains { $0.hasPrefix("TIME PIDs/sec: @: N") } }),
    Tool(
      name: "cpuwalk", workload: ["spin", "300"],
      // Samples per CPU vary; every CPU is busy, so each has a bucket.
      normalize: { output, _ in lines(output) { _ in true }.map(histogramLine) },
      expect: { lines in (0..<Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))).allSatisfy { lines.contains("[\($0), \($0 + 1)) N |bar|") } }),
    Tool(
      name: "bitesize", workload: ["direct", "/tmp/scry-tool-parity-direct-\(getpid())", "3"],
      // The workload's own block I/O: its three 4 KiB writes (the journal's and other tasks' vary).
      normalize: { output, _ in
        header(output, 2) + lines(output) { $0.hasPrefix("I/O size") || $0 == "@[\(comm)]: " }
          + histogram(output, key: "@[\(comm)]: ").filter { $0.hasPrefix("[4K, 8K)") }.map(histogramLine)
      },
      expect: { $0.contains("[4K, 8K) N |bar|") }),
    Tool(
      name: "writeback", workload: ["sync", "/tmp/scry-tool-parity-writeback-\(getpid())"],
      // Writeback runs in kworkers: the sync the workload asked for, its pages and times masked.
      normalize: { output, _ in
        header(output, 3)
          + deduplicated(lines(output) { $0.split(separator: " ").dropFirst(3).first == "sync" }.map { masked($0, fields: [0, 2, 4], endsInNumber: true) }.sorted())
      },
      expect: { $0.contains { $0.hasSuffix(" sync N") } }),
  ]

  @Test(arguments: tools)
  func toolPrintsWhatBpftracePrints(_ tool: Tool) throws {
    guard kernelAvailable("bpftrace tool parity"), let bpftrace = bpftraceBinary() else { return }
    let (workload, directory) = try Self.buildWorkload()
    defer {
      unlink(workload)
      rmdir(directory)
    }
    let script = "/usr/sbin/\(tool.name).bt"
    try #require(access(script, R_OK) == 0, "\(script) is missing: the bpftrace package installs it")
    let reference = try Self.run(bpftrace, script, settle: tool.settle) { Self.spawn(workload, tool.workload) }
    let ours = try Self.run(scryBinary(), script, settle: tool.settle) { Self.spawn(workload, tool.workload) }
    let expected = tool.normalize(reference.output, reference.pid)
    let actual = tool.normalize(ours.output, ours.pid)
    #expect(tool.expect(expected), "bpftrace did not see the workload:\n\(reference.output)")
    #expect(actual == expected, "\nscry:\n\(ours.output)\nbpftrace:\n\(reference.output)")
  }

  /// bashreadline: a command typed at an interactive bash on a terminal.
  @Test func bashreadlinePrintsWhatBpftracePrints() throws {
    guard kernelAvailable("bpftrace tool parity"), let bpftrace = bpftraceBinary() else { return }
    let typeCommand: () throws -> pid_t = {
      let bash = try #require(PseudoTerminal("/bin/bash", ["--norc", "--noprofile", "-i"], environment: ["PS1": "$ "]))
      let prompt = bash.expect("$ ") ?? 0
      bash.send("echo scry-tool-parity\n")
      _ = bash.expect("$ ", after: bash.expect("scry-tool-parity\r\n", after: prompt) ?? prompt)
      bash.send("exit\n")
      _ = bash.waitForExit()
      return bash.pid
    }
    let normalize: (String, pid_t) -> [String] = { output, pid in
      header(output, 3) + lines(output) { $0.hasSuffix("echo scry-tool-parity") }.map { masked($0, pid, fields: [0]) }
    }
    let reference = try Self.run(bpftrace, "/usr/sbin/bashreadline.bt", settle: 0.4, workload: typeCommand)
    let ours = try Self.run(scryBinary(), "/usr/sbin/bashreadline.bt", settle: 0.4, workload: typeCommand)
    let expected = normalize(reference.output, reference.pid)
    #expect(expected.last?.hasPrefix("TIME PID echo scry-tool-parity") == true, "\(reference.output)")
    #expect(normalize(ours.output, ours.pid) == expected, "\nscry:\n\(ours.output)\nbpftrace:\n\(reference.output)")
  }

  /// runqlen.bt reads `cfs_rq->nr_running`, which kernels since 6.14 call `nr_queued`: bpftrace and
  /// Scry both refuse it, naming the field.
  @Test func runqlenIsRefusedAsBpftraceRefusesIt() throws {
    guard kernelAvailable("bpftrace tool parity"), let bpftrace = bpftraceBinary() else { return }
    let reference = Run.program("/usr/bin/timeout", ["10", bpftrace, "/usr/sbin/runqlen.bt"])
    let ours = Run.program(scryBinary(), ["--dry-run", "/usr/sbin/runqlen.bt"])
    guard reference.stderr.contains("nr_running") else {
      // A kernel that still has nr_running runs the tool: then Scry must accept it too.
      #expect(ours.status == 0, "\(ours.stderr)")
      return
    }
    #expect(ours.status != 0)
    #expect(ours.stderr.contains("runqlen.bt:37:9: error: struct cfs_rq has no field 'nr_running'"), "\(ours.stderr)")
  }

  // MARK: - Running a tool

  /// Runs `tracer script` until it has attached, then the workload, then `settle` seconds, then
  /// SIGINT; its standard output, and the workload's pid.
  static func run(_ tracer: String, _ script: String, settle: Double, workload: () throws -> pid_t) throws -> (output: String, pid: pid_t) {
    // bpftrace 0.17 itself now and then hangs detaching its probes on a loaded machine, and is
    // killed before it prints its maps: its run is tried again, once. Scry must stop every time.
    let attempts = tracer == scryBinary() ? 1 : 2
    for attempt in 1...attempts {
      let run = try runOnce(tracer, script, settle: settle, workload: workload)
      if run.exited || attempt == attempts {
        #expect(run.exited, "\(tracer) did not stop after SIGINT")
        return (run.output, run.pid)
      }
    }
    fatalError("unreachable")
  }

  private static func runOnce(_ tracer: String, _ script: String, settle: Double, workload: () throws -> pid_t) throws
    -> (output: String, pid: pid_t, exited: Bool)
  {
    let outputPath = "/tmp/scry-tool-parity-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(outputPath) }
    let out = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let null = open("/dev/null", O_WRONLY)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, out, 1)
    posix_spawn_file_actions_adddup2(&actions, null, 2)
    // SIGINT unblocked and at its default in the tracer, whatever the test runner does with it.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    var empty = sigset_t()
    sigemptyset(&empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([tracer, script] as [String]).map { strdup($0) } + [nil]
    var tracerPid: pid_t = 0
    let spawned = posix_spawn(&tracerPid, tracer, &actions, &attributes, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    posix_spawnattr_destroy(&attributes)
    for p in argv { free(p) }
    close(out)
    close(null)
    try #require(spawned == 0, "cannot start \(tracer)")
    var attached = false
    for _ in 0..<200 {
      if readWhole(outputPath).contains("Attaching") {
        attached = true
        break
      }
      usleep(50_000)
    }
    // Until the BEGIN output is written, and probes are live: both print "Attaching" just before.
    usleep(300_000)
    let pid = attached ? try workload() : 0
    usleep(UInt32(settle * 1_000_000))
    kill(tracerPid, SIGINT)
    var status: Int32 = 0
    var exited = false
    // Scry must stop within 10 s; bpftrace, detaching its probes one by one, is given 30 on a
    // loaded machine (CI's full suite) before its run counts as hung.
    for _ in 0..<(tracer == scryBinary() ? 200 : 600) {
      if waitpid(tracerPid, &status, WNOHANG) == tracerPid {
        exited = true
        break
      }
      usleep(50_000)
    }
    if !exited {
      kill(tracerPid, SIGKILL)
      waitpid(tracerPid, &status, 0)
    }
    let output = readWhole(outputPath)
    try #require(attached, "\(tracer) did not attach \(script):\n\(output)")
    return (output, pid, exited)
  }

  /// Runs the workload to its end; its pid.
  static func spawn(_ path: String, _ arguments: [String]) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    var pid: pid_t = 0
    posix_spawn(&pid, path, &actions, nil, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    for p in argv { free(p) }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return pid
  }
}

// MARK: - Masking

/// The first `count` lines: "Attaching N probes..." and the tool's BEGIN banner and column titles.
private func header(_ output: String, _ count: Int) -> [String] {
  Array(output.split(separator: "\n", omittingEmptySubsequences: false).prefix(count).map(String.init))
}

private func lines(_ output: String, where keep: (String) -> Bool) -> [String] {
  output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter(keep)
}

/// The workload's event lines, with its pid as `PID` and the given fields as `TIME`.
private func events(_ output: String, _ pid: pid_t, timeFields: Set<Int>) -> [String] {
  lines(output) { $0.contains(" \(ToolParityTests.comm) ") }.map { masked($0, pid, fields: timeFields) }
}

/// The line's fields joined by one space, those at `fields` replaced by a placeholder (`TIME` for
/// a clock time, `N` for a number) and the workload's pid by `PID`, then the line's width, so
/// the columns' padding is compared too (every masked number fits its column's width).
private func masked(_ line: String, _ pid: pid_t = 0, fields: Set<Int>, endsInNumber: Bool = false) -> String {
  let parts = line.split(separator: " ").enumerated().map { index, field -> String in
    if fields.contains(index) { return field.contains(":") && field.count == 8 ? "TIME" : "N" }
    return field == "\(pid)" ? "PID" : String(field)
  }
  // A masked number last on the line has no column to fill: its width is its own.
  return parts.joined(separator: " ") + (endsInNumber ? "" : " (\(line.count) columns)")
}

/// `[4K, 8K)   17 |@@@@   |` → `[4K, 8K) N |bar|`: the bucket, not the count or the bar.
private func histogramLine(_ line: String) -> String {
  guard line.hasPrefix("["), let close = line.firstIndex(of: ")") ?? line.firstIndex(of: "]"), line.hasSuffix("|") else { return line }
  return String(line[...close]) + " N |bar|"
}

/// The bucket lines of one map key's histogram.
private func histogram(_ output: String, key: String) -> [String] {
  let all = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  guard let start = all.firstIndex(of: key) else { return [] }
  return Array(all[(start + 1)...].prefix { $0.hasPrefix("[") })
}

/// Runs of one line as one.
private func deduplicated(_ lines: [String]) -> [String] {
  lines.enumerated().filter { $0.offset == 0 || lines[$0.offset - 1] != $0.element }.map(\.element)
}
