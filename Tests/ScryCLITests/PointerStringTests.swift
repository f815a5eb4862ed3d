import Glibc
import Testing

/// Strings behind tracepoint pointers (`str(args.filename)`, `join(args.argv)`), copied in the
/// kernel by Scry's own BPF program when the event fires.
@Suite(.serialized) struct PointerStringTests {
  static let target: String? = {
    let source = scriptsRoot() + "/Tests/Fixtures/pointer_target.c"
    let binary = "/tmp/scry-pointer-target-\(getpid())"
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    return Run.program(cc, ["-O2", "-o", binary, source]).status == 0 ? binary : nil
  }()

  func targetOrSkip() -> String? {
    guard kernelAvailable("pointer string tests") else { return nil }
    guard let target = Self.target else {
      Issue.record("could not build Tests/Fixtures/pointer_target.c with gcc")
      return nil
    }
    return target
  }

  @Test func filenamesOfOpenatIncludingAProcessThatExitsAtOnce() throws {
    guard let target = targetOrSkip() else { return }
    let tag = "open\(getpid())"
    let run = scry("-c", "\(target) \(tag)", "-e", "tracepoint:syscalls:sys_enter_openat { @[str(args.filename)] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    // Entries with equal counts print in the map's own order (as in bpftrace), which depends on
    // what else the system opened meanwhile: compare them as a set.
    let ours = run.stdout.split(separator: "\n").filter { $0.contains(tag) }.sorted()
    #expect(
      ours == ["-0", "-1", "-2", "-child"].map { "@[/tmp/scry-ptr-\(tag)\($0)]: 1" }, "\(run.stdout)")
    // No check that stderr has no "reads of memory failed" warning: the probe reads every task's
    // openat, and on a loaded machine another task's path may be in a page not yet present.
  }

  /// opensnoop's pattern: the pointer kept in a map at entry, `str()` of it at return. The tool
  /// itself runs under both bpftrace and Scry; lines of the target's opens must agree (the PID
  /// column aside: each tool ran its own target).
  /// bpftrace 0.17's addrspace."openat uptr": `uptr()` and `kptr()` mark a field's space; the
  /// string behind the marked field is still copied at the event, from the space marked.
  @Test func strOfAMarkedPointerFieldIsCopiedAtTheEvent() throws {
    guard let target = targetOrSkip() else { return }
    let tag = "uptr\(getpid())"
    let run = scry("-c", "\(target) \(tag)", "-e", "tracepoint:syscalls:sys_enter_openat /pid == cpid/ { @[str(uptr(args->filename))] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains(tag), "\(run.stdout)")
  }

  @Test func opensnoopToolMatchesBpftrace() throws {
    guard let target = targetOrSkip(), kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let tag = "snoop\(getpid())"
    func lines(_ run: Run) -> [String] {
      run.stdout.split(separator: "\n").filter { $0.contains(tag) }.map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
    }
    let reference = Run.program(bpftrace, ["-c", "\(target) \(tag)", "/usr/sbin/opensnoop.bt"])
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = scry("-c", "\(target) \(tag)", "/usr/sbin/opensnoop.bt")
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(lines(ours).count == 4, "\(ours.stdout)")
    #expect(lines(ours) == lines(reference), "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  /// The pointer map still prints at exit as bpftrace prints it; the strings Scry keeps beside it
  /// never print. Pointer arithmetic on the stored value is refused where `str()` reads it.
  @Test func keptPointerStringsStayInternal() throws {
    guard let target = targetOrSkip() else { return }
    let tag = "kept\(getpid())"
    let run = scry(
      "-c", "\(target) \(tag)", "-e",
      #"tracepoint:syscalls:sys_enter_openat /pid == cpid/ { @f[1] = args->filename; @n = count(); }"#
        + #" tracepoint:syscalls:sys_exit_openat /pid == cpid/ { @seen[str(@f[1])] = count(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    for i in 0..<3 { #expect(run.stdout.contains("@seen[/tmp/scry-ptr-\(tag)-\(i)]: 1\n"), "\(run.stdout)") }
    #expect(run.stdout.contains("@f[1]: "), "\(run.stdout)")
    #expect(!run.stdout.contains("str(@f)"), "\(run.stdout)")
    let moved = scry(
      "--dry-run", "-e",
      #"tracepoint:syscalls:sys_enter_openat { @f[tid] = args->filename; @f[tid] += 1; }"#
        + #" tracepoint:syscalls:sys_exit_openat { printf("%s\n", str(@f[tid])); }"#)
    #expect(moved.status == 1)
    #expect(moved.stderr.contains("'str()' can read memory only through"), "\(moved.stderr)")
  }

  @Test func argvOfExecveJoined() throws {
    guard let target = targetOrSkip() else { return }
    let tag = "exec\(getpid())"
    let run = scry(
      "-c", "\(target) \(tag)", "-e",
      "tracepoint:syscalls:sys_enter_execve { join(args.argv); join(args.argv, \",\"); printf(\"file %s\\n\", str(args.filename)); }")
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    // The fixture's argv has an empty string before `-c`: bpftrace's join ends there.
    #expect(lines.contains("/bin/true \(tag)-a \(tag) b"), "\(run.stdout)")
    #expect(lines.contains("/bin/true,\(tag)-a,\(tag) b"), "\(run.stdout)")
    #expect(lines.contains("file /bin/true"), "\(run.stdout)")
  }

  @Test func commOfEventsBeforeAnExecIsTheOldName() throws {
    guard let target = targetOrSkip() else { return }
    let tag = "comm\(getpid())"
    // Two probes, so samples of both CPUs are merged by time, and the COMM record of the exec
    // must be applied at its own time, not before the samples drained with it.
    let run = scry(
      "-c", "\(target) \(tag)", "-e",
      "tracepoint:syscalls:sys_enter_openat { printf(\"%s %s\\n\", comm, str(args.filename)); } tracepoint:sched:sched_process_exec { printf(\"exec\\n\"); }")
    #expect(run.status == 0, "\(run.stderr)")
    let name = String(target.split(separator: "/").last!.prefix(15))
    let lines = run.stdout.split(separator: "\n")
    #expect(lines.contains("\(name) /tmp/scry-ptr-\(tag)-0"), "\(run.stdout)")
    #expect(lines.contains("\(name) /tmp/scry-ptr-\(tag)-2"), "\(run.stdout)")
  }

  @Test func planShowsTheFetchProgram() throws {
    guard kernelAvailable("pointer string tests") else { return }
    let run = scry("--plan", "-e", "tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", str(args.filename)); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("pointer data: string (64 bytes, user memory) behind the pointer at +24"), "\(run.stdout)")
    // Read by the capture program into the ring record, or by process_vm_readv without BPF.
    #expect(run.stdout.contains("fetched by: the capture program, at the event (1 reads)"), "\(run.stdout)")
    #expect(run.stdout.contains("reads(1)"), "\(run.stdout)")
  }

  @Test func programAndMapsLiveOnlyWhileScryRuns() throws {
    guard kernelAvailable("pointer string tests") else { return }
    for signal in [SIGINT, SIGTERM] {
      let out = "/tmp/scry-pointer-bg-\(getpid()).txt"
      defer { unlink(out) }
      let argv: [UnsafeMutablePointer<CChar>?] =
        ([scryBinary(), "-o", out, "-e", "tracepoint:syscalls:sys_enter_openat { @[str(args.filename)] = count(); } END { printf(\"end ran\\n\"); }"] as [String])
        .map { strdup($0) } + [nil]
      defer { for p in argv { free(p) } }
      var pid: pid_t = 0
      try #require(posix_spawn(&pid, scryBinary(), nil, nil, argv, environ) == 0)
      for _ in 0..<100 where !readWhole(out).contains("Attaching") { usleep(50_000) }
      let fds = listLinks("/proc/\(pid)/fd")
      #expect(fds.contains { $0.contains("bpf-prog") }, "\(fds)")
      #expect(fds.contains { $0.contains("bpf-map") }, "\(fds)")
      kill(pid, signal)
      var status: Int32 = 0
      waitpid(pid, &status, 0)
      #expect((status & 0x7f) == 0 && (status >> 8) & 0xff == 0, "status \(status)")
      #expect(readWhole(out).contains("end ran"))
    }
  }
}
