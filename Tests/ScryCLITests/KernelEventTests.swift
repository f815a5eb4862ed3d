import Glibc
import Testing

/// Real tracepoints through perf rings, driven by the bench workload (N getppid calls).
@Suite(.serialized) struct KernelEventTests {
  /// The workload from ../shared/bench, built once into a temporary directory.
  static let workload: String? = {
    let source = scriptsRoot() + "/Tests/Fixtures/workload.c"
    let binary = "/tmp/scry-test-workload-\(getpid())"
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let run = Run.program(cc, ["-O2", "-o", binary, source])
    return run.status == 0 ? binary : nil
  }()

  func workloadOrSkip() -> String? {
    guard kernelAvailable("kernel event tests") else { return nil }
    guard let workload = Self.workload else {
      Issue.record("could not build the workload with gcc")
      return nil
    }
    return workload
  }

  @Test func countsExactlyTheChildsGetppidCalls() throws {
    guard let workload = workloadOrSkip() else { return }
    let run = scry(
      "--stats", "-c", "\(workload) syscall 20000 0", "-e",
      "tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @c = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@c: 20000\n"), "\(run.stdout)")
    #expect(!run.stderr.contains("Lost"))
  }

  @Test func samplesEveryCallWithItsPid() throws {
    guard let workload = workloadOrSkip() else { return }
    let run = scry(
      "--stats", "-c", "\(workload) syscall 5000 0", "-e",
      "tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @[comm] = count(); @pids[pid == cpid] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let name = String(workload.split(separator: "/").last!.prefix(15))
    #expect(run.stdout.contains("@[\(name)]: 5000\n"), "\(run.stdout)")
    #expect(run.stdout.contains("@pids[1]: 5000\n"), "\(run.stdout)")
    #expect(run.stderr.contains("lost 0"), "\(run.stderr)")
  }

  @Test func bpfRingAndPerfDeliverTheSame() throws {
    guard let workload = workloadOrSkip() else { return }
    let name = String(workload.split(separator: "/").last!.prefix(15))
    let script = "tracepoint:syscalls:sys_enter_getppid { @[comm, pid == cpid] = count(); @t = max(nsecs); }"
    for bpf in [true, false] {
      let run = Run.program(scryBinary(), ["--stats", "-c", "\(workload) syscall 20000 0", "-e", script] + (bpf ? [] : ["--no-bpf"]))
      #expect(run.status == 0, "\(run.stderr)")
      // Exact for the workload. The probe is system-wide, so another suite's getppid flood running
      // meanwhile may overflow the rings with its own events: those losses are said, not failed on.
      #expect(run.stdout.contains("@[\(name), 1]: 20000\n"), "bpf: \(bpf)\n\(run.stdout)")
      #expect(run.stderr.contains("Read "), "\(run.stderr)")
      let plan = Run.program(scryBinary(), ["--plan", "-e", script] + (bpf ? [] : ["--no-bpf"]))
      #expect(plan.stdout.contains("delivered by: a BPF tracepoint program") == bpf, "\(plan.stdout)")
    }
  }

  @Test func followsAProcessWithDashP() throws {
    guard let workload = workloadOrSkip() else { return }
    // A child that waits for a signal before calling getppid N times, so scry is attached first.
    let script = "sleep 1; exec \(workload) syscall 3000 0"
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = (["/bin/sh", "-c", script] as [String]).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    try #require(posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ) == 0)
    let run = scry("-p", "\(pid)", "-e", "tracepoint:syscalls:sys_enter_getppid { @c = count(); }")
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@c: 3000\n"), "\(run.stdout)")
  }

  @Test func kernelFilterReducesTheSamplesRead() throws {
    guard let workload = workloadOrSkip() else { return }
    // The filter `__syscall_nr == -1` matches nothing: the kernel drops every record.
    let filtered = scry(
      "--stats", "-c", "\(workload) syscall 3000 0", "-e",
      "tracepoint:syscalls:sys_enter_getppid /pid == cpid && args.__syscall_nr == 12345/ { @[comm] = count(); }")
    #expect(filtered.status == 0, "\(filtered.stderr)")
    #expect(filtered.stderr.contains("Read 0 samples"), "\(filtered.stderr)")
    let unfiltered = scry(
      "--stats", "-c", "\(workload) syscall 3000 0", "-e",
      "tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @[comm] = count(); }")
    #expect(unfiltered.stderr.contains("Read 3000 samples"), "\(unfiltered.stderr)")
  }

  @Test func commOfAnExecdChildIsItsNewName() throws {
    guard kernelAvailable("kernel event tests") else { return }
    let run = scry(
      "-c", "/bin/sh -c /bin/true", "-e",
      "tracepoint:sched:sched_process_exit /pid != cpid/ { @[comm] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@[true]: 1"), "\(run.stdout)")
  }

  @Test func credentialsAreTheOnesOfEachEvent() throws {
    guard kernelAvailable("kernel event tests") else { return }
    let binary = "/tmp/scry-setuid-target-\(getpid())"
    defer { unlink(binary) }
    try buildFixture("setuid_target.c", into: binary)
    // The process changes its uid and gid half-way: each event carries the ones of its moment,
    // on the capture path (system-wide) and the perf path (per-task, from /proc) alike where they can.
    let run = scry("-c", "\(binary) 50", "-e", "tracepoint:syscalls:sys_enter_getppid { @[comm, uid, gid] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let name = String(binary.split(separator: "/").last!.prefix(15))
    #expect(run.stdout.contains("@[\(name), 0, 0]: 50"), "\(run.stdout)")
    #expect(run.stdout.contains("@[\(name), 65534, 65534]: 50"), "\(run.stdout)")
  }

  @Test func uidAndGidAreTheTracedTasks() throws {
    guard let workload = workloadOrSkip(), access("/usr/bin/setpriv", X_OK) == 0 else { return }
    let run = scry(
      "-c", "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups \(workload) syscall 100 0", "-e",
      "tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @[uid, gid] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@[65534, 65534]: 100"), "\(run.stdout)")
  }

  @Test func wildcardsAttachEveryMatch() throws {
    guard let workload = workloadOrSkip() else { return }
    let run = scry(
      "-c", "\(workload) syscall 1000 0", "-e", "tracepoint:syscalls:sys_*_getppid { @[probe] = count(); }")
    #expect(run.stdout.hasPrefix("Attaching 2 probes..."), "\(run.stdout)")
    #expect(run.stdout.contains("@[tracepoint:syscalls:sys_enter_getppid]: "), "\(run.stdout)")
    #expect(run.stdout.contains("@[tracepoint:syscalls:sys_exit_getppid]: "), "\(run.stdout)")
  }

  @Test func sigtermEndsCleanlyAndLeavesNothingBehind() throws {
    guard kernelAvailable("kernel event tests") else { return }
    let before = readWhole("/sys/kernel/tracing/set_event") + readWhole("/sys/kernel/tracing/tracing_on")
    var pid: pid_t = 0
    let out = "/tmp/scry-sigterm-\(getpid()).txt"
    defer { unlink(out) }
    let argv: [UnsafeMutablePointer<CChar>?] =
      ([scryBinary(), "-o", out, "-e", "tracepoint:sched:sched_switch { @[cpu] = count(); } END { printf(\"end ran\\n\"); }"] as [String])
      .map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    try #require(posix_spawn(&pid, scryBinary(), nil, nil, argv, environ) == 0)
    usleep(700_000)
    // While it runs it holds perf fds; afterwards the process is gone with all of them.
    let fds = listLinks("/proc/\(pid)/fd")
    #expect(fds.contains { $0.contains("perf_event") }, "\(fds)")
    kill(pid, SIGTERM)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    #expect((status & 0x7f) == 0 && (status >> 8) & 0xff == 0)
    let text = readWhole(out)
    #expect(text.contains("end ran"), "\(text)")
    #expect(text.contains("@[0]: "), "\(text)")
    let after = readWhole("/sys/kernel/tracing/set_event") + readWhole("/sys/kernel/tracing/tracing_on")
    #expect(before == after)
  }

  @Test func eventsOfAllCPUsArriveInTimeOrder() throws {
    guard kernelAvailable("kernel event tests") else { return }
    let run = scry(
      "-e", "tracepoint:sched:sched_switch { printf(\"%llu %d\\n\", nsecs, cpu); } interval:ms:500 { exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let events = run.stdout.split(separator: "\n").filter { $0.first?.isNumber ?? false }.compactMap { line in
      let fields = line.split(separator: " ")
      return fields.count == 2 ? UInt64(fields[0]).map { (time: $0, cpu: fields[1]) } : nil
    }
    #expect(events.count > 10)
    // One ring for every CPU, in the order of its reservations: each CPU's events in their order,
    // and the CPUs' interleaved to within the moment between a timestamp and its reservation.
    var lastOfCPU: [Substring: UInt64] = [:]
    var latest: UInt64 = 0
    for event in events {
      #expect(event.time >= lastOfCPU[event.cpu] ?? 0, "cpu \(event.cpu) out of order at \(event.time)")
      #expect(event.time + 20_000 >= latest, "\(event.time) arrived after \(latest)")
      lastOfCPU[event.cpu] = event.time
      latest = max(latest, event.time)
    }
    if lastOfCPU.count < 2 { print("note: only one CPU switched tasks during the run") }
  }

  @Test func hardwareEventsExplainTheMissingPMU() {
    guard kernelAvailable("kernel event tests") else { return }
    let run = scry("-e", "hardware:cache-misses:1000 { @ = count(); }")
    // This VM has no PMU; a machine with one would count.
    if run.status != 0 { #expect(run.stderr.contains("no hardware performance counters"), "\(run.stderr)") }
  }

  @Test func kprobesWithoutKernelSupportSaySo() {
    guard kernelAvailable("kernel event tests") else { return }
    guard access("/sys/kernel/tracing/kprobe_events", F_OK) != 0 else { return }
    let run = scry("-e", "kprobe:do_sys_open { }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("no kprobe support"), "\(run.stderr)")
    #expect(run.stderr.contains("tracepoint:syscalls:sys_enter_openat"), "\(run.stderr)")
    // --dry-run makes the same check, with the probe's location in the script.
    let dry = scry("--dry-run", "-e", "BEGIN { } kretprobe:vfs_read { @ = count(); }")
    #expect(dry.status == 1)
    #expect(dry.stderr.contains("-e:1:11: error: kretprobe:vfs_read: this kernel has no kprobe support"), "\(dry.stderr)")
  }
}

func listLinks(_ directory: String) -> [String] {
  guard let dir = opendir(directory) else { return [] }
  defer { closedir(dir) }
  var targets: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafePointer(to: entry.pointee.d_name) {
      $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
    }
    var buffer = [CChar](repeating: 0, count: 256)
    if readlink(directory + "/" + name, &buffer, 255) > 0 { targets.append(String(cString: buffer)) }
  }
  return targets
}

/// Builtins and functions of tracepoint events beyond the record's fields.
@Suite(.serialized) struct EventBuiltinTests {
  @Test func printArgsPrintsTheWholeRecord() throws {
    guard kernelAvailable("kernel event tests") else { return }
    let run = scry("-c", "/bin/true", "-e", "tracepoint:sched:sched_process_exit /pid == cpid/ { print(args); }")
    #expect(run.status == 0, "\(run.stderr)")
    let line = run.stdout.split(separator: "\n").first { $0.hasPrefix("{ .comm = true, .pid = ") }
    #expect(line != nil, "\(run.stdout)")
    #expect(line?.hasSuffix(" }") ?? false)
  }

  @Test func cgroupIsTheCgroupV2IdAsBpftraceSeesIt() throws {
    guard kernelAvailable("kernel event tests"), let bpftrace = bpftraceBinary() else { return }
    let script = "BEGIN { printf(\"%llu\\n\", cgroup); exit(); }"
    let ours = scry("-e", script)
    let theirs = Run.program(bpftrace, ["-e", script])
    #expect(ours.stdout == theirs.stdout, "scry: \(ours.stdout) bpftrace: \(theirs.stdout) \(theirs.stderr)")
    // From events: the child's cgroup is inherited from the test process.
    let event = scry("-c", "/bin/true", "-e", "tracepoint:sched:sched_process_exit /pid == cpid/ { printf(\"%llu\\n\", cgroup); }")
    let id = try #require(ours.stdout.split(separator: "\n").last)
    #expect(event.stdout.split(separator: "\n").contains(id), "\(event.stdout)")
  }

  @Test func tooFewFileDescriptorsIsExplained() throws {
    guard kernelAvailable("kernel event tests") else { return }
    let run = Run.program(
      "/bin/sh", ["-c", "ulimit -Sn 64 && ulimit -Hn 64 && exec \"$0\" -e 'tracepoint:syscalls:sys_enter_* { @[probe] = count(); }'", scryBinary()])
    #expect(run.status == 1)
    #expect(run.stderr.contains("file descriptors"), "\(run.stderr)")
    #expect(run.stderr.contains("ulimit -n"), "\(run.stderr)")
  }
}
