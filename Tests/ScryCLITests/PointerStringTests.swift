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
    #expect(!run.stderr.contains("WARNING"), "\(run.stderr)")
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
