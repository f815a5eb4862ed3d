import Glibc
import Testing

/// bpftrace's command line as Scry accepts it: flags, `-` for stdin, environment limits, literals and
/// limits end to end, empty and oversized programs, `-c` word splitting, the root check.
@Suite struct DropInTests {
  /// A task moved into a new v2 cgroup: cgroup_path(cgroup) names it as /proc/PID/cgroup does.
  @Test func cgroupPathNamesTheTasksCgroup() throws {
    guard kernelAvailable("cgroup_path") else { return }
    let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].first { access($0 + "/cgroup.procs", F_OK) == 0 }
    let root = try #require(unified, "no cgroup v2 hierarchy is mounted")
    let name = "scry-test-\(getpid())"
    try #require(mkdir(root + "/" + name, 0o755) == 0 || errno == EEXIST, "cannot make a cgroup: \(errno)")
    defer { rmdir(root + "/" + name) }
    // The child joins the cgroup, then becomes cat (the same pid, so other tasks' cats do not count).
    let child = "echo $$ > \(root)/\(name)/cgroup.procs; sleep 0.5; exec cat /dev/null"
    let path = "\"\(root)/\(name)\""
    let program = """
      tracepoint:syscalls:sys_enter_openat /pid == cpid && comm == "cat"/ {
        printf("%s|%s|%d\\n", cgroup_path(cgroup, "unified"), cgroup_path(cgroup), cgroup == cgroupid(\(path))); exit();
      }
      """
    let run = scry("-c", "/bin/sh -c '\(child)'", "-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    let line = run.stdout.split(separator: "\n").first { $0.hasPrefix("unified:") }.map(String.init) ?? run.stdout
    #expect(line.hasPrefix("unified:/\(name)|unified:/\(name)"), "\(run.stdout)")
    #expect(line.hasSuffix("|1"), "cgroupid() of the directory is not the task's cgroup: \(run.stdout)")
  }

  @Test func versionLineLooksLikeBpftraces() {
    for flag in ["-V", "--version"] {
      let run = scry(flag)
      #expect(run.status == 0)
      #expect(run.stdout == "scry v0.1.0 (bpftrace v0.17.0 compatible)\n", "\(flag): \(run.stdout)")
    }
  }

  /// bpftrace's shape for a bad flag: the error, then the usage (its tests look for "USAGE").
  @Test func unknownFlagPrintsTheErrorAndTheUsage() {
    let run = scry("-idonotexist")
    #expect(run.status == 2)
    #expect(run.stderr.hasPrefix("ERROR: Unknown option '-idonotexist'\nUSAGE: scry "), "\(run.stderr)")
    // Not the second reading of the glued short flags (-i -d -o with -o's value missing).
    #expect(!run.stderr.contains("Missing value"), "\(run.stderr)")
  }

  @Test func listingRefusesACharacterNoProbeNameHas() {
    let run = scry("-l", #"\n"#)
    #expect(run.status == 1)
    #expect(run.stderr.contains(#"ERROR: invalid character '\' in the search pattern '\n'"#), "\(run.stderr)")
    #expect(run.stdout.isEmpty, "\(run.stdout)")
  }

  @Test func bpftraceFlagsAreAccepted() {
    let run = scry(
      "-q", "-kk", "-B", "line", "--include", "linux/sched.h", "--include", "linux/types.h", "-I", "/tmp", "-I", "/usr",
      "--usdt-file-activation", "--no-warnings", "-e", #"BEGIN { printf("ok\n"); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("ok\n"), "\(run.stdout)")
    for mode in ["full", "none"] { #expect(scry("-B", mode, "-k", "-e", "BEGIN { exit(); }").status == 0) }
  }

  /// bpftrace 0.17's other.runtime_error_check_delete and _lookup: -k reports a delete of an absent
  /// key, -kk a read of one too, each at its place in the script; without them, nothing.
  @Test func helperChecksReportAbsentKeys() {
    let delete = "i:ms:100 { @[1] = 1; delete(@[2]); delete(@[1]); exit(); }"
    let checked = scry("-k", "-e", delete)
    #expect(checked.status == 0, "\(checked.stderr)")
    // On the output, where bpftrace writes it, in its form.
    #expect(checked.stdout.hasPrefix("""
      Attaching 1 probe...
      stdin:1:22-34: WARNING: Failed to map_delete_elem: No such file or directory (-2)
      \(delete)
                           ~~~~~~~~~~~~

      """), "\(checked.stdout)")
    #expect(!scry("-e", delete).stdout.contains("WARNING"))
    let lookup = #"i:ms:100 { @[1] = 1; printf("%d %d\n", @[2], @[1]); exit(); }"#
    let lookupChecked = scry("-kk", "-e", lookup)
    #expect(lookupChecked.stdout.hasPrefix("Attaching 1 probe...\nstdin:1:40-44: WARNING: Failed to map_lookup_elem: 0\n"), "\(lookupChecked.stdout)")
    #expect(lookupChecked.stdout.contains("~~~~\n0 1\n"), "\(lookupChecked.stdout)")
    #expect(lookupChecked.stdout.split(separator: "\n").filter { $0.contains("WARNING") }.count == 1, "\(lookupChecked.stdout)")
    #expect(!scry("-k", "-e", lookup).stdout.contains("WARNING"), "a read is checked only with -kk")
    let json = scry("-kk", "-f", "json", "-e", lookup)
    #expect(json.stdout.contains(#"{"type": "helper_error", "helper": "map_lookup_elem", "retcode": 0, "line": 1, "col": 40}"#), "\(json.stdout)")
  }

  @Test func badBufferingModeIsAUsageError() {
    let run = scry("-B", "bogus", "-e", "BEGIN { exit(); }")
    #expect(run.status == 2)
    #expect(run.stderr.contains("'bogus' is invalid for '-B"), "\(run.stderr)")
  }

  @Test func infoDescribesTheKernel() {
    let run = scry("--info")
    #expect(run.status == 0, "\(run.stderr)")
    for line in ["System\n", "  OS: Linux ", "  version: v0.1.0", "  tracefs: ", "  BPF program loading: ", "  btf: ",
                 "  perf_event_paranoid: ", "  kprobe: ", "  uprobe: ", "  hardware: "] {
      #expect(run.stdout.contains(line), "missing \(line)\n\(run.stdout)")
    }
    // bpftrace's sections and names, which test harnesses grep; only what Scry does is "yes".
    for line in ["Kernel helpers\n", "Map types\n", "  libdw (DWARF support): yes\n",
                 "  hash: no"] {
      #expect(run.stdout.contains(line), "missing \(line)\n\(run.stdout)")
    }
    guard kernelAvailable("BPF maps") else { return }
    // send_signal: the watchpoint setup program, really loaded.
    for line in ["  perf_event_array: yes\n", "  percpu hash: yes\n", "  stack_trace: yes\n", "  probe_read_kernel: yes\n",
                 "  send_signal: yes\n"] {
      #expect(run.stdout.contains(line), "missing \(line)\n\(run.stdout)")
    }
  }

  @Test func dashReadsTheProgramFromStandardInput() {
    let run = shell(#"printf '%s\n' 'BEGIN { printf("%s %d\n", str($1), $#); exit(); }' | "$SCRY" - hello"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("hello 1\n"), "\(run.stdout)")
  }

  @Test func environmentLimitsTakeEffect() {
    // STRLEN sizes str(): a longer parameter is cut to STRLEN - 1 bytes, as in bpftrace.
    let short = Run.program(
      scryBinary(), ["-e", "BEGIN { printf(\"[%s]\\n\", str($1, 100)); @s = str($1); exit(); }", "0123456789abcdef"],
      environment: ["BPFTRACE_STRLEN": "8"])
    #expect(short.status == 0, "\(short.stderr)")
    #expect(short.stdout.contains("[0123456789abcdef]"), "\(short.stdout)")
    let keys = Run.program(
      scryBinary(), ["-e", "BEGIN { @[1] = 1; @[2] = 2; @[3] = 3; @[4] = 4; exit(); }"],
      environment: ["SCRY_MAP_KEYS_MAX": "3"])
    #expect(keys.stdout.hasSuffix("@[1]: 1\n@[2]: 2\n@[3]: 3\n"), "\(keys.stdout)")
    guard kernelAvailable("probe limit") else { return }
    let probes = Run.program(
      scryBinary(), ["--dry-run", "-e", "tracepoint:syscalls:sys_enter_* { @[probe] = count(); }"],
      environment: ["BPFTRACE_MAX_PROBES": "3"])
    #expect(probes.status == 1)
    #expect(probes.stderr.contains("exceeds the current limit of 3 probes"), "\(probes.stderr)")
  }

  /// bpftrace's runtime test harness starts its AFTER command once this line appears.
  @Test func notifiesProbesAttachedAsBpftraceDoesForItsTestHarness() {
    guard kernelAvailable("probes attached notice") else { return }
    let script = #"BEGIN { printf("begin\n"); } interval:ms:50 { exit(); }"#
    let run = Run.program(scryBinary(), ["-e", script], environment: ["__BPFTRACE_NOTIFY_PROBES_ATTACHED": "1"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 2 probes...\nbegin\n"), "\(run.stdout)")
    #expect(run.stderr == "__BPFTRACE_NOTIFY_PROBES_ATTACHED\n", "\(run.stderr)")
    let quiet = Run.program(scryBinary(), ["-e", script])
    #expect(!quiet.stderr.contains("NOTIFY"), "\(quiet.stderr)")
  }

  /// exit() ends a `-c` command still running (SIGTERM), as bpftrace does, instead of waiting for it.
  @Test func exitEndsTheCommandStillRunning() {
    guard kernelAvailable("-c command end") else { return }
    let start = Clock.now()
    let run = Run.program(scryBinary(), ["-c", "/bin/sleep 30", "-e", #"interval:ms:100 { printf("done\n"); exit(); }"#])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\ndone\n"), "\(run.stdout)")
    #expect(Clock.now() - start < 10, "the run waited for the command")
  }

  /// With -p, a uprobe path of the process's own mount namespace (a container's) is found under
  /// /proc/PID/root, as bpftrace finds it.
  @Test func uprobePathInTheProcessMountNamespace() throws {
    guard kernelAvailable("mount namespace uprobe"), access("/usr/bin/unshare", X_OK) == 0 else { return }
    let directory = "/tmp/scry-ns-\(getpid())"
    defer { rmdir(directory) }
    let setup = "mkdir -p \(directory) && mount --bind /usr/bin \(directory) && exec \(directory)/bash -c 'while :; do sleep 0.2; done'"
    let target = try #require(TargetProcess("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", setup]))
    defer { target.stop() }
    usleep(300_000)
    #expect(access(directory + "/bash", F_OK) != 0, "the bind mount must stay in the other namespace")
    let script = "uprobe:\(directory)/bash:readline { } interval:ms:100 { printf(\"attached\\n\"); exit(); }"
    let run = Run.program(scryBinary(), ["-p", String(target.pid), "-e", script])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 2 probes...\nattached\n"), "\(run.stdout)")
  }

  /// An offset past the function's end is refused at the spec, in bpftrace's words.
  @Test func uprobeOffsetPastTheFunctionIsRefused() throws {
    let bash = "/bin/bash"
    guard access(bash, R_OK) == 0 else { return }
    let run = Run.program(scryBinary(), ["--dry-run", "-e", "uprobe:\(bash):echo_builtin+1000000 { exit(); }"])
    #expect(run.status == 1)
    #expect(run.stderr.contains("-e:1:1: error: Offset outside the function bounds ('echo_builtin' size is "), "\(run.stderr)")
    #expect(Run.program(scryBinary(), ["--dry-run", "-e", "uprobe:\(bash):echo_builtin+4 { exit(); }"]).status == 0)
  }

  /// A number after the binary is an address, decimal too, as bpftrace 0.17 reads it: one that no
  /// function holds is its "Could not resolve address" (probed anyway, with a warning, under
  /// --unsafe); a return probe only at a function's start.
  @Test func uprobeAddressMustLieInAFunction() {
    let bash = "/bin/bash"
    guard access(bash, R_OK) == 0 else { return }
    let run = Run.program(scryBinary(), ["--dry-run", "-e", #"uprobe:/bin/bash:10 { printf("arg0: %d\n", arg0); exit();}"#])
    #expect(run.status == 1)
    #expect(run.stderr.contains("-e:1:1: error: Could not resolve address: /bin/bash:0xa\n"), "\(run.stderr)")
    let unsafe = Run.program(scryBinary(), ["--unsafe", "--dry-run", "-e", "uprobe:/bin/bash:10 { exit(); }"])
    #expect(unsafe.status == 0 && unsafe.stderr.contains("warning: Could not determine instruction boundary for uprobe:/bin/bash:10"),
            "\(unsafe.stderr)")
    let symbols = shell("nm -D /bin/bash | grep ' T echo_builtin$' | cut -d' ' -f1").stdout
    guard let start = UInt64(symbols.prefix { $0 != "\n" }, radix: 16) else { return }
    let inside = "0x" + String(start + 4, radix: 16)
    let uretprobe = Run.program(scryBinary(), ["--dry-run", "-e", "uretprobe:/bin/bash:\(inside) { exit(); }"])
    #expect(uretprobe.status == 1)
    #expect(uretprobe.stderr.contains("error: uretprobes cannot be attached at function offset. (address resolved to: echo_builtin+4)"),
            "\(uretprobe.stderr)")
    #expect(Run.program(scryBinary(), ["--dry-run", "-e", "uprobe:/bin/bash:\(start) { exit(); }"]).status == 0)
  }

  /// bpftrace compares arrays of one integer size and length; others are refused at the `==`.
  @Test func arraysCompareOnlyWithArraysOfTheirShape() {
    let decl = "struct A { int x[4]; short y[4]; int z[2]; } uprobe:/bin/bash:readline { $a = (struct A *)arg0; "
    #expect(Run.program(scryBinary(), ["--dry-run", "-e", decl + "@ = $a->x == $a->x; }"]).status == 0)
    for other in ["y", "z"] {
      let run = Run.program(scryBinary(), ["--dry-run", "-e", decl + "@ = $a->x == $a->\(other); }"])
      #expect(run.status == 1)
      #expect(run.stderr.contains("-e:1:101: error: cannot compare int32[4] with int"), "\(run.stderr)")
      #expect(run.stderr.contains("only arrays of integers of one size, with as many elements, compare"), "\(run.stderr)")
    }
  }

  @Test func environmentLimitsAreValidated() {
    let ok = Run.program(scryBinary(), ["-e", "BEGIN { exit(); }"], environment: [
      "BPFTRACE_STRLEN": "128", "BPFTRACE_MAP_KEYS_MAX": "100", "BPFTRACE_CAT_BYTES_MAX": "10k",
      "BPFTRACE_MAX_PROBES": "20", "SCRY_STRLEN": "32",
    ])
    #expect(ok.status == 0, "\(ok.stderr)")
    for (name, value, message) in [
      ("BPFTRACE_STRLEN", "300", "BPFTRACE_STRLEN='300' is not valid: it must be from 1 to 200"),
      ("BPFTRACE_MAP_KEYS_MAX", "x", "BPFTRACE_MAP_KEYS_MAX='x' is not valid: expected a whole number"),
      ("SCRY_MAX_PROBES", "0", "SCRY_MAX_PROBES='0' is not valid: it must be from 1"),
      ("BPFTRACE_CAT_BYTES_MAX", "-1", "BPFTRACE_CAT_BYTES_MAX='-1' is not valid"),
    ] {
      let run = Run.program(scryBinary(), ["-e", "BEGIN { exit(); }"], environment: [name: value])
      #expect(run.status == 2, "\(name)=\(value)")
      #expect(run.stderr.contains(message), "\(run.stderr)")
    }
    // SCRY_ wins: a bad BPFTRACE_ value is not even read.
    let wins = Run.program(scryBinary(), ["-e", "BEGIN { exit(); }"], environment: ["BPFTRACE_STRLEN": "bad", "SCRY_STRLEN": "16"])
    #expect(wins.status == 0, "\(wins.stderr)")
  }

  @Test func scientificLiteralsRun() {
    let run = scry("-e", #"BEGIN { printf("%d %d %d\n", 1e6, 5e3, 1_000); exit(); }"#)
    #expect(run.stdout.contains("1000000 5000 1000\n"), "\(run.stdout)\(run.stderr)")
    let bad = scry("-e", #"BEGIN { printf("%d\n", 1e19); exit(); }"#)
    #expect(bad.status == 1)
    #expect(bad.stderr.contains("-e:1:24: error: the exponent of '1e19' is 19"), "\(bad.stderr)")
  }

  @Test func thousandOperatorsCheckAndRun() {
    let run = scry("-e", #"BEGIN { printf("%d\n", 1"# + String(repeating: "+1", count: 1000) + "); exit(); }")
    #expect(run.status == 0, "\(run.stderr.prefix(300))")
    #expect(run.stdout.contains("\n1001\n"), "\(run.stdout.prefix(300))")
  }

  @Test func hundredNestedParenthesesRun() {
    let run = scry("-e", #"BEGIN { printf("%d\n", "# + String(repeating: "(", count: 100) + "2"
      + String(repeating: ")", count: 100) + "); exit(); }")
    #expect(run.status == 0, "\(run.stderr.prefix(300))")
    #expect(run.stdout.contains("\n2\n"), "\(run.stdout.prefix(300))")
  }

  @Test func absurdNestingIsALocatedError() {
    let path = "/tmp/scry-deep-\(getpid()).trace"
    defer { unlink(path) }
    let file = fopen(path, "w")
    fputs("BEGIN { @x = " + String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000) + "; }", file)
    fclose(file)
    let run = scry("--dry-run", path)
    #expect(run.status == 1)
    #expect(run.stderr.hasPrefix("\(path):1:"), "\(run.stderr.prefix(200))")
    #expect(run.stderr.contains("error: expression nested too deeply"), "\(run.stderr.prefix(200))")
  }

  @Test(arguments: ["", "// just a comment\n"])
  func emptyProgramIsAnError(_ program: String) {
    let run = scry("-e", program)
    #expect(run.status == 1)
    #expect(run.stderr.contains("-e:1:1: error: the program has no probes"), "\(run.stderr)")
    #expect(run.stdout.isEmpty)
  }

  @Test func oversizedScriptsAreRefusedUnread() {
    let path = "/tmp/scry-big-\(getpid()).trace"
    defer { unlink(path) }
    let file = fopen(path, "w")
    ftruncate(fileno(file), 17 << 20)
    fclose(file)
    for target in [path, "/dev/zero"] {
      let run = scry(target)
      #expect(run.status == 1)
      #expect(run.stderr == "scry: '\(target)' is larger than 16 MiB: that is not a script\n", "\(run.stderr)")
    }
  }

  @Test func commandIsSplitAsAShellWould() {
    let run = scry("-c", #"/bin/echo 'a  b' "c \"d\"" e\ f"#, "-e", "BEGIN { }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("a  b c \"d\" e f\n"), "\(run.stdout)")
    let open = scry("-c", "/bin/echo 'a", "-e", "BEGIN { }")
    #expect(open.status == 1)
    #expect(open.stderr.contains("quote is not closed"), "\(open.stderr)")
  }

  @Test func nonRootIsToldItNeedsRoot() {
    guard geteuid() == 0, access("/usr/bin/setpriv", X_OK) == 0 else { return }
    let drop = ["--reuid=65534", "--regid=65534", "--clear-groups", scryBinary()]
    for arguments in [["-e", "tracepoint:sched:sched_switch { exit(); }"], ["-l", "tracepoint:sched:*"]] {
      let run = Run.program("/usr/bin/setpriv", drop + arguments)
      #expect(run.status == 1, "\(arguments)")
      #expect(run.stderr.contains("ERROR: tracing kernel events needs root"), "\(run.stderr)")
      #expect(run.stderr.contains("CAP_PERFMON and CAP_BPF"))
    }
    // BEGIN alone needs no kernel.
    let begin = Run.program("/usr/bin/setpriv", drop + ["-e", #"BEGIN { printf("ok\n"); exit(); }"#])
    #expect(begin.stdout.contains("ok\n"), "\(begin.stderr)")
  }

  @Test func relativeUprobeTargetAttaches() throws {
    guard kernelAvailable("relative uprobe path") else { return }
    let directory = "/tmp/scry-relative-\(getpid())"
    defer { _ = shell("rm -rf '\(directory)'") }
    let build = shell(
      "mkdir -p '\(directory)/bin' && cd '\(directory)' && printf 'int f(int x){return x+1;}\\nint main(){return f(1)-2;}\\n' > p.c && cc -O0 -o bin/prog p.c")
    try #require(build.status == 0, "\(build.stderr)")
    let run = shell("cd '\(directory)' && \"$SCRY\" -c bin/prog -e 'uprobe:bin/prog:f { printf(\"hit\\n\"); exit(); }'")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("hit\n"), "\(run.stdout)")
  }
}

/// `command` under /bin/sh with `$SCRY` naming the binary under test.
func shell(_ command: String) -> Run {
  Run.program("/bin/sh", ["-c", command], environment: ["SCRY": scryBinary()])
}
