import Glibc
import Testing

/// `--dry-run` and `--plan` run every check a real run makes before attaching, and touch nothing.
@Suite struct PlanCommandTests {
  @Test(arguments: [
    ("struct T { int pid; }; BEGIN { @t = (struct T *)curtask; } END { @x = @t->pid; }", "reads memory at the event"),
    ("tracepoint:sched:sched_switch { @x = *(uint32 *)args.prev_pid; }", "reads memory at the event"),
    ("BEGIN { @x = jiffies; }", "cannot be evaluated"),
  ])
  func dryRunRefusesWhatTheRuntimeCannotEvaluate(program: String, words: String) {
    guard kernelAvailable("dry run of tracepoints") else { return }
    let run = scry("--dry-run", "-e", program)
    #expect(run.status == 1, "\(run.stdout)")
    #expect(run.stderr.contains("-e:1:"), "\(run.stderr)")
    #expect(run.stderr.contains(words), "\(run.stderr)")
    #expect(run.stderr.contains("^"), "\(run.stderr)")
    #expect(run.stdout.isEmpty)
  }

  /// What the attach step would refuse with these options (no capture program for memory read
  /// at the event, stacks beside a per-process fetch) is refused by --dry-run too, at the block.
  @Test(arguments: [
    (["--no-bpf"], "tracepoint:sched:sched_process_exec { printf(\"%d\\n\", curtask->pid); }", "capture program"),
    (["--no-bpf"], "BEGIN { printf(\"%d\\n\", curtask->pid); exit(); }", "Scry runs on its own thread"),
    (["-p", "1"], "tracepoint:syscalls:sys_enter_openat { @[kstack, str(args.filename)] = count(); }", "kstack and ustack"),
  ])
  func dryRunRefusesWhatTheseOptionsCannotAttach(flags: [String], program: String, words: String) {
    guard kernelAvailable("dry run of tracepoints") else { return }
    let run = Run.program(scryBinary(), flags + ["--dry-run", "-e", program])
    #expect(run.status == 1, "\(run.stdout)")
    #expect(run.stderr.contains("-e:1:1: error:") && run.stderr.contains(words) && run.stderr.contains("^"), "\(run.stderr)")
    // The same program is fine where the capture program runs.
    #expect(scry("--dry-run", "-e", program).status == 0)
  }

  @Test func planRefusesItToo() {
    let run = scry("--plan", "-e", "BEGIN { @x = jiffies; }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("cannot be evaluated"), "\(run.stderr)")
  }

  @Test func positionalUsedAsANumberMustBeOne() {
    let run = scry("-e", "BEGIN { printf(\"%d\\n\", $1); exit(); }", "0b11")
    #expect(run.status == 1)
    #expect(run.stderr.contains("$1 is used as a number but given \"0b11\""), "\(run.stderr)")
    #expect(run.stderr.contains("str($1)"), "\(run.stderr)")
    for (given, printed) in [("010", "8"), ("-0x10", "-16"), ("0775", "509")] {
      let ok = scry("-e", "BEGIN { printf(\"%d\\n\", $1); exit(); }", "--", given)
      #expect(ok.status == 0, "\(ok.stderr)")
      #expect(ok.stdout.contains("...\n\(printed)\n"), "\(given): \(ok.stdout)")
    }
    let text = scry("-e", "BEGIN { printf(\"[%s][%s]\\n\", str($1), str($2)); exit(); }", "010")
    #expect(text.stdout.contains("[010][]"), "\(text.stdout)")
  }

  @Test func positionalParametersServeAsLiteralCounts() throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let script = "BEGIN { unroll($1) { @i++; } exit(); }"
    let reference = Run.program(bpftrace, ["-e", script, "3"])
    try #require(reference.status == 0, "\(reference.stderr)")
    let ours = scry("-e", script, "3")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    #expect(ours.stdout.hasSuffix("@i: 3\n"))
  }

  @Test func planLeavesTheOutputFileAndLoadsNoBPF() {
    guard kernelAvailable("plan of a tracepoint") else { return }
    let path = "/tmp/scry-plan-out-\(getpid()).txt"
    defer { unlink(path) }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = "kept\n".withCString { write(fd, $0, 5) }
    close(fd)
    let program = "tracepoint:syscalls:sys_enter_openat { printf(\"%s\\n\", str(args.filename)); }"
    // strace shows every bpf(2) and perf_event_open(2) call the plan makes: there must be none
    // (the fd count of a test process is no proof: other tests open and close fds meanwhile).
    let traced = Run.program(
      "/usr/bin/strace",
      ["-f", "-e", "trace=bpf,perf_event_open", "-o", path + ".strace", scryBinary(), "--plan", "-o", path, "-e", program])
    defer { unlink(path + ".strace") }
    #expect(traced.status == 0, "\(traced.stderr)")
    #expect(traced.stdout.contains("actions:"), "\(traced.stdout)")
    #expect(traced.stdout.contains("print \"%s\\n\""), "\(traced.stdout)")
    let calls = Run.program("/bin/cat", [path + ".strace"]).stdout
    #expect(!calls.contains("bpf(") && !calls.contains("perf_event_open("), "\(calls)")
    #expect(Run.program("/bin/cat", [path]).stdout == "kept\n")
  }

  @Test func planPrintsTheActionIR() {
    let run = scry("--plan", "-e", "BEGIN { $x = 1 + 2 * 3; if ($x > 6 && $x < 8) { @ok = 1; } exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("var+0 = (add 1 (mul 2 3))"), "\(run.stdout)")
    #expect(run.stdout.contains("if (&& (gt var+0 6) (lt var+0 8))"), "\(run.stdout)")
    #expect(run.stdout.contains("@ok = 1"), "\(run.stdout)")
  }

  @Test func signalByNameSendsThatSignal() throws {
    guard kernelAvailable("signal from a tracepoint") else { return }
    // The child traps SIGWINCH (28, past the end of the runtime's old table) and exits when it
    // arrives; signal() is sent from its own wait4 calls.
    let path = "/tmp/scry-winch-\(getpid()).sh"
    defer { unlink(path) }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o755)
    let text = "trap 'echo got-winch; exit 0' WINCH\nwhile true; do sleep 0.1; done\n"
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
    let script = "tracepoint:syscalls:sys_enter_wait4 /pid == cpid/ { signal(\"SIGWINCH\"); }"
    let run = scry("--unsafe", "-c", "/bin/bash \(path)", "-e", script)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("got-winch"), "\(run.stdout) \(run.stderr)")
  }
}
