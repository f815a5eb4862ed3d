import Glibc
import Testing

/// What bpftrace's runtime tests of probes, macros and records (tests/runtime/probe, macro, record…)
/// need of Scry, written as our own checks: bpftrace 0.26's builtin spellings, the probe types Scry
/// refuses with their cause, named tuples.
@Suite struct RuntimeCorpusProbeTests {
  /// `__builtin_pid`, `pid()` and `pid` are one builtin; `probetype` and `usermode` are settled
  /// from the block's probes.
  @Test func builtinWrappersAndProbeType() throws {
    guard kernelAvailable("builtin wrappers") else { return }
    let program = """
      begin {
        if (__builtin_pid == pid() && __builtin_uid == uid && __builtin_ncpus == ncpus()) { printf("same\\n"); }
        printf("%s %s %d %d\\n", probetype, __builtin_probetype(), usermode, __builtin_usermode);
        exit();
      }
      tracepoint:syscalls:sys_enter_getppid { printf("%s %d\\n", probetype(), usermode); }
      """
    let run = scry("-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 2 probes...\nsame\nspecial special 1 1\n\n\n", "\(run.stdout)")
    let tracepoint = scry("-c", "/bin/sh -c 'exec cat /proc/self/stat >/dev/null'", "-e",
                          "tracepoint:syscalls:sys_enter_getppid, tracepoint:syscalls:sys_enter_openat /pid == cpid/ { printf(\"%s %d\\n\", probetype(), usermode); exit(); }")
    #expect(tracepoint.stdout.hasPrefix("Attaching 2 probes...\ntracepoint 0\n"), "\(tracepoint.stdout) \(tracepoint.stderr)")
  }

  /// Where they cannot be settled, they are refused with the reason, not guessed.
  @Test func probeTypeAndUserModeAreRefusedWhereUnknown() {
    let mixed = scry("--dry-run", "-e", "interval:s:1, BEGIN { print(probetype); }")
    #expect(mixed.status == 1 && mixed.stderr.contains("'probetype' differs between this block's probes (interval, special)"), "\(mixed.stderr)")
    let sampled = scry("--dry-run", "-e", "profile:hz:99 { print(usermode); }")
    #expect(sampled.status == 1 && sampled.stderr.contains("'usermode' is not available in profile probes"), "\(sampled.stderr)")
  }

  /// fentry, fexit and their kfunc spellings are named with their cause: this kernel's, when it
  /// has no ftrace for the trampolines; otherwise that Scry does not attach them.
  @Test(arguments: [
    ("fentry:vfs_read", "fentry"), ("kfunc:vmlinux:vfs_read", "fentry"), ("fexit:vfs_read", "fexit"),
    ("kretfunc:vfs_read", "fexit"), ("f:vfs_read", "fentry"),
  ])
  func trampolineProbesAreRefusedWithTheirCause(_ probe: String, _ type: String) {
    let run = scry("--dry-run", "-e", "\(probe) { exit(); }")
    #expect(run.status == 1)
    let fd = open("/sys/kernel/tracing/available_filter_functions", O_RDONLY)
    let kernelHasFtrace = fd >= 0
    if kernelHasFtrace { close(fd) }
    let cause = kernelHasFtrace
      ? "\(probe): Scry does not attach \(type) probes (they attach through BPF trampolines, built on ftrace)"
      : "\(probe): \(type) probes cannot run on this kernel: they attach through BPF trampolines, built on ftrace, and it has no ftrace"
    #expect(run.stderr.contains("-e:1:1: error: " + cause), "\(run.stderr)")
    #expect(!run.stderr.contains("unknown probe type"), "\(run.stderr)")
  }

  /// Two blocks on one uprobe run in script order (the kernel calls a uprobe's consumers newest
  /// first, so they attach in reverse), system-wide and for a -c child, entry and return.
  @Test(arguments: ["uprobe", "uretprobe"])
  func blocksOnOneUprobeRunInScriptOrder(_ kind: String) {
    guard kernelAvailable("uprobe order") else { return }
    let blocks = "\(kind):/bin/bash:echo_builtin { printf(\"first\"); } \(kind):/bin/bash:echo_builtin { printf(\" second\\n\"); exit(); }"
    let child = scry("-c", "/bin/bash -c 'echo lala >/dev/null'", "-e", blocks)
    #expect(child.status == 0, "\(child.stderr)")
    #expect(child.stdout.hasPrefix("Attaching 2 probes...\nfirst second\n"), "\(child.stdout)")
    let systemWide = scry(
      "--unsafe", "-e", "BEGIN { system(\"(sleep 0.3; exec /bin/bash -c 'echo lala >/dev/null') &\"); } " + blocks)
    #expect(systemWide.status == 0, "\(systemWide.stderr)")
    #expect(systemWide.stdout.hasPrefix("Attaching 3 probes...\nfirst second\n"), "\(systemWide.stdout)")
  }

  /// Blocks on one software event run in script order (the kernel calls its perf events newest
  /// first, so their programs attach in reverse): bpftrace's software_order runtime test.
  @Test func blocksOnOneSoftwareEventRunInScriptOrder() {
    guard kernelAvailable("software order") else { return }
    let script = #"software:faults:1 { @ready1 = 1; if (@go == 1) { printf("first"); } }"#
      + #" software:faults:1 { @ready2 = 1; if (@go == 1) { printf(" second\n"); exit(); } }"#
      + #" software:faults:1 { if (@ready1 == 1 && @ready2 == 1) { @go = 1; } }"#
    let run = scry("-e", script)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 3 probes...\nfirst second\n"), "\(run.stdout)")
  }

  /// `probe` names a software event as written: `software:cpu:…` stays `cpu`, as in bpftrace.
  @Test func softwareAliasKeepsItsNameInProbe() {
    guard kernelAvailable("software probe name") else { return }
    let run = scry("-e", "config = { on_stack_limit = 0 } software:cpu:100000 { print(probe); exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\nsoftware:cpu:100000\n"), "\(run.stdout)")
  }

  /// `missing_probes`: `error` refuses a probe that does not exist, `warn` skips it with a warning at
  /// the probe, `ignore` skips it silently; a script left with no probe is refused.
  @Test func missingProbesErrorWarnIgnore() {
    guard kernelAvailable("missing_probes") else { return }
    let blocks = "t:syscalls:sys_enter_nonsense, t:syscalls:sys_enter_getppid { printf(\"hit\\n\"); exit(); }"
    let strict = scry("--dry-run", "-e", blocks)
    #expect(strict.status == 1 && strict.stderr.contains("-e:1:1: error: unknown tracepoint 'syscalls:sys_enter_nonsense'"), "\(strict.stderr)")
    let warned = scry("-c", "/bin/sh -c 'cat /proc/self/stat >/dev/null'", "-e", "config = { missing_probes = \"warn\" } " + blocks)
    #expect(warned.stderr.contains("-e:1:38: warning: unknown tracepoint 'syscalls:sys_enter_nonsense', skipped"), "\(warned.stderr)")
    #expect(warned.status == 0 && warned.stdout.hasPrefix("Attaching 1 probe...\n"), "\(warned.stdout)")
    let ignored = scry("--dry-run", "-e", "config = { missing_probes = ignore } " + blocks)
    #expect(ignored.status == 0 && !ignored.stderr.contains("nonsense"), "\(ignored.stderr)")
    let none = scry("--dry-run", "-e", "config = { missing_probes = ignore } t:syscalls:sys_enter_nonsense { exit(); }")
    #expect(none.status == 1 && none.stderr.contains("error: no probe of this script exists: nothing to attach"), "\(none.stderr)")
  }

  /// A probe this kernel cannot have (a kprobe without kprobe_events, an fentry without ftrace) is
  /// a missing probe: `missing_probes = warn` skips it with a warning and the rest runs.
  @Test func probesTheKernelLacksAreMissingProbes() {
    guard kernelAvailable("missing_probes") else { return }
    guard access("/sys/kernel/tracing/kprobe_events", F_OK) != 0 else { return }  // this kernel has kprobes
    let program = #"config = { missing_probes = warn } kprobe:zzzzz { printf("asdf\n") } begin { printf("_%s_\n", "success"); exit() }"#
    let run = scry("-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\n_success_\n"), "\(run.stdout)")
    #expect(run.stderr.contains("-e:1:36: warning: kprobe:zzzzz: this kernel has no kprobe support"), "\(run.stderr)")
    let strict = scry("--dry-run", "-e", "kprobe:vfs_read { exit(); }")
    #expect(strict.status == 1 && strict.stderr.contains("-e:1:1: error: kprobe:vfs_read: this kernel has no kprobe support"), "\(strict.stderr)")
  }

  /// bpftrace 0.17's regression.async_id_invalid_probe_expansion: a block that reads `probe` is
  /// built per matching function, so a kprobe this kernel cannot have is dropped and BEGIN runs.
  @Test func aBlockReadingProbeDropsTheKprobeTheKernelLacks() {
    guard kernelAvailable("kprobe expansion") else { return }
    guard access("/sys/kernel/tracing/kprobe_events", F_OK) != 0 else { return }  // this kernel has kprobes
    let run = scry("-e", #"kprobe:zzzzz { probe; printf("asdf\n") } BEGIN { printf("_%s_\n", "success"); exit() }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\n_success_\n"), "\(run.stdout)")
    #expect(run.stderr.contains("-e:1:1: warning: kprobe:zzzzz: this kernel has no kprobe support"), "\(run.stderr)")
    let alone = scry("-e", #"kprobe:zzzzz { probe; printf("asdf\n") }"#)
    #expect(alone.status == 1 && alone.stderr.contains("error: no probe of this script exists: nothing to attach"), "\(alone.stderr)")
  }

  /// bpftrace 0.17's probe.kprobe_target: a first part that is no loaded module is its shape error.
  @Test(arguments: ["kprobe", "kretprobe"])
  func aKprobeTargetThatIsNoModuleIsRefused(_ kind: String) {
    let run = scry("--dry-run", "-e", #"\#(kind):syscalls:sys_exit_nanosleep { printf("SUCCESS %d\n", pid); exit(); }"#)
    #expect(run.status == 1)
    #expect(run.stderr.contains("-e:1:1: error: \(kind) probe type requires 1 argument"), "\(run.stderr)")
  }

  /// A macro argument whose text starts with another macro's parameter (`a(x + 1)` inside `b`) is
  /// the whole argument, not the parameter alone.
  @Test(arguments: [
    ("macro a(y) { y + 2 } macro b(x) { a(x + 1) } begin { print(b(1)); exit(); }", "4"),
    ("macro add_two(x) { x + 2 } macro add_one(x) { add_two(x + 1) + 1 } begin { $a = 1; print(add_one($a + 1)); exit(); }", "6"),
    ("macro a(y) { y * 10 } macro b(x) { a(x - 1) + a(x) } begin { print(b(3)); exit(); }", "50"),
  ])
  func macroArgumentsStartingWithAParameterAreWhole(_ program: String, _ expected: String) {
    guard kernelAvailable("macro arguments") else { return }
    let run = scry("-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 1 probe...\n\(expected)\n\n\n", "\(run.stdout)")
  }

  /// Raw stacks print as bpftrace prints them: each address in bare hex on its own line.
  @Test func rawStackModePrintsBareHexAddresses() {
    guard kernelAvailable("raw stacks") else { return }
    let run = scry("-c", "/bin/bash -c 'echo x >/dev/null'", "-e",
                   "config = { stack_mode = raw } uprobe:/bin/bash:echo_builtin { printf(\"%s|\", ustack(2)); exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let printed = run.stdout.split(separator: "|").first.map { String($0) } ?? ""
    let frames = printed.split(separator: "\n").dropFirst()  // the "Attaching" line; the stack starts with a newline
    #expect(frames.count == 2, "\(run.stdout)")
    #expect(frames.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isHexDigit) }, "\(run.stdout)")
  }

  /// An `if` whose branch ends with another `if` with values is a value too, at any depth.
  @Test(arguments: [
    ("begin { let $x = 1; let $y = 2; let $z = 3; print(if ($x) { if ($y) { if ($z) { $x } else { $y } } else { $z } } else { 0 }); exit(); }", "1"),
    ("begin { let $x = 1; let $y = 0; print(if ($x) { if ($y) { 5 } else { 6 } } else { 7 }); exit(); }", "6"),
    ("begin { $a = { if (1) { if (0) { 1 } else { 2 } } else { 3 } }; print($a); exit(); }", "2"),
  ])
  func nestedIfExpressionsHaveValues(_ program: String, _ expected: String) {
    guard kernelAvailable("if expressions") else { return }
    let run = scry("-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 1 probe...\n\(expected)\n\n\n", "\(run.stdout)")
  }
}
