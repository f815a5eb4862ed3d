import Glibc
import Testing

/// `curtask` in blocks Scry runs itself (BEGIN, END, interval): a capture program run on Scry's
/// own thread reads it, so it is Scry's task, as bpftrace's BEGIN and END see bpftrace's.
@Suite(.serialized) struct InProcessEventTests {
  /// The task of BEGIN and END is the tracer's own: its pid, its name, its parent (this test).
  @Test func curtaskInBeginAndEndIsTheTracersTaskAsInBpftrace() throws {
    let me = getpid()
    let script = """
      BEGIN { printf("%d %d %d\\n", curtask->pid == pid, curtask->tgid == pid, curtask->comm == comm);
        printf("%d %d\\n", curtask->real_parent->tgid == \(me), ((struct task_struct *)curtask)->parent->tgid == \(me));
        exit(); }
      END { printf("%d %d\\n", curtask->pid == pid, curtask->real_parent->tgid == \(me)); }
      """
    try expectSameOutputAsBpftrace([], script)
  }

  /// The values themselves: the pid and parent agree with /proc, the name is the process's own.
  @Test func curtaskFieldsAgreeWithProc() {
    guard kernelAvailable("curtask in BEGIN") else { return }
    let run = scry("-e", #"BEGIN { printf("%d %d %s|%s\n", curtask->tgid, curtask->real_parent->tgid, curtask->comm, comm); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    let fields = run.stdout.split(separator: "\n").last.map { $0.split(separator: " ", maxSplits: 2) } ?? []
    #expect(fields.count == 3, "\(run.stdout)")
    guard fields.count == 3 else { return }
    // The parent is this test process, which spawned scry.
    #expect(Int32(fields[1]) == getpid(), "\(run.stdout)")
    #expect(Int32(fields[0]) != nil && Int32(fields[0]) != 0, "\(run.stdout)")
    let names = fields[2].split(separator: "|", omittingEmptySubsequences: false)
    #expect(names.count == 2 && names[0] == names[1] && !names[0].isEmpty, "\(run.stdout)")
  }

  /// bpftrace's runtime tests curtask, map_assign_map_ptr and "debug location does not leak
  /// across probes": a task pointer from an interval block, kept in maps, and chains in BEGIN and END.
  @Test func bpftraceRuntimeCorpusFormsRun() {
    guard kernelAvailable("curtask corpus") else { return }
    let pointer = scry("-e", #"i:ms:1 { printf("SUCCESS %p\n", curtask); exit(); }"#)
    #expect(pointer.status == 0, "\(pointer.stderr)")
    #expect(pointer.stdout.contains("SUCCESS 0xffff"), "\(pointer.stdout)")
    let kept = scry("-e", #"i:ms:100 { @ = curtask; @a = @; printf("%p\n", @a); exit(); }"#)
    #expect(kept.status == 0, "\(kept.stderr)")
    #expect(kept.stdout.contains("\n0xffff"), "\(kept.stdout)")
    let both = scry("-e", "BEGIN { $pid = curtask->pid; exit(); } END { $pid = curtask->pid; }")
    #expect(both.status == 0, "\(both.stderr)")
    #expect(both.stdout.hasPrefix("Attaching 2 probes"), "\(both.stdout)")
  }

  /// bpftrace's runtime test "scalars can be accessed in copied structs": a whole task copied
  /// into a map, then a pointer of the copy followed in the same block. The map is assigned once,
  /// so the chain is read at the event; one a call took in between (`delete`) is refused instead.
  @Test func pointerOfAStructCopiedIntoAMapIsFollowed() {
    guard kernelAvailable("copied task struct") else { return }
    let me = getpid()
    let run = scry("-e", "BEGIN { @s = *curtask; @k = @s->pid == pid; @j = @s->parent->tgid == \(me); exit(); } END { clear(@s); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@k: 1\n") && run.stdout.contains("@j: 1\n"), "\(run.stdout)")
    let deleted = scry("--dry-run", "-e", "BEGIN { @s = *curtask; delete(@s); @j = @s.parent->pid; }")
    #expect(deleted.status == 1 && deleted.stderr.contains("Scry reads memory at the event"), "\(deleted.stderr)")
  }

  /// An interval block's curtask is Scry's own task (bpftrace's is whichever task the timer
  /// interrupted): a real task, the same on every tick.
  @Test func curtaskInIntervalIsScrysTask() {
    guard kernelAvailable("curtask in interval") else { return }
    let run = scry("-e", "BEGIN { @n = 0; } i:ms:10 { @[curtask->tgid == pid, curtask->real_parent->tgid] = count(); @n = @n + 1; "
        + "if (@n == 3) { delete(@n); exit(); } }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@[1, \(getpid())]: 3"), "\(run.stdout)")
  }

  /// `--plan` says who reads it; `--no-bpf` refuses it at the block rather than reading 0.
  @Test func planSaysWhoReadsItAndNoBPFRefusesIt() {
    let program = #"BEGIN { printf("%d\n", curtask->pid); exit(); }"#
    let plan = scry("--plan", "-e", program)
    #expect(plan.status == 0, "\(plan.stderr)")
    #expect(plan.stdout.contains("run by Scry on its own thread"), "\(plan.stdout)")
    let refused = Run.program(scryBinary(), ["--no-bpf", "-e", program])
    #expect(refused.status == 1 && refused.stdout.isEmpty, "\(refused.stdout)")
    #expect(refused.stderr.contains("-e:1:1: error: BEGIN:") && refused.stderr.contains("--no-bpf"), "\(refused.stderr)")
  }

  /// At the REPL, a statement and a BEGIN block read it as a script's BEGIN does.
  @Test func replStatementsAndBlocksReadScrysTask() throws {
    guard kernelAvailable("curtask in the REPL") else { return }
    let t = try REPLTests.start()
    t.send("printf(\"stmt %d\\n\", curtask->tgid == pid);\r")
    #expect(t.expect("stmt 1") != nil, "\(t.text)")
    t.send("BEGIN { printf(\"block %d %d\\n\", curtask->pid == pid, curtask->real_parent->tgid == \(getpid())); }\r")
    #expect(t.expect("block 1 1") != nil, "\(t.text)")
    REPLTests.leave(t)
  }

  /// One block on BEGIN or interval and on a kernel event would read each value from two
  /// layouts: refused at the block rather than reading the record's bytes as the task's.
  @Test func blocksMixingOwnAndKernelEventsAreRefused() {
    for program in [
      #"BEGIN, tracepoint:sched:sched_switch { printf("%d\n", curtask->pid); exit(); }"#,
      #"tracepoint:sched:sched_switch, i:ms:1 { printf("%d\n", curtask->tgid == pid); }"#,
      #"software:cpu-clock:1000000, tracepoint:sched:sched_switch { @[curtask->tgid == pid] = count(); }"#,
    ] {
      let run = scry("--dry-run", "-e", program)
      #expect(run.status == 1, "\(program)")
      #expect(run.stderr.contains("-e:1:1: error: this block reads memory at the event") && run.stderr.contains("record"), "\(run.stderr)")
    }
    // Without memory read at the event the blocks share nothing: fine.
    #expect(scry("--dry-run", "-e", "BEGIN, tracepoint:sched:sched_switch { printf(\"%d\\n\", pid); exit(); }").status == 0)
  }

  /// SystemTap's `ppid()` (lowered to `curtask->real_parent->tgid`) in `probe begin` is Scry's
  /// parent, as SystemTap's begin probe names stap's.
  @Test func systemTapPpidInBeginIsScrysParent() {
    guard kernelAvailable("ppid in probe begin") else { return }
    let run = scry("--lang", "stap", "-e", #"probe begin { printf("%d\n", ppid()); exit() }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "\(getpid())\n", "\(run.stdout)")
  }

  /// A script's own `struct task_struct` types curtask as bpftrace's corpus test curtask_field does.
  @Test func scriptTaskStructReadsThroughCurtask() {
    guard kernelAvailable("curtask field") else { return }
    let run = scry("-e", #"struct task_struct {int x;} i:ms:1 { printf("SUCCESS %d\n", curtask.x); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("SUCCESS "), "\(run.stdout)")
  }
}
