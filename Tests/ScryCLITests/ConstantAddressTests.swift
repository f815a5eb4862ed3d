import Glibc
import Testing

/// Reads through addresses known before the event (`(struct x *)0`, `*(uint64 *)0x1234`): made at
/// the event like any other read, an unmapped address a failed read (zeros, counted), as bpftrace's.
@Suite(.serialized) struct ConstantAddressTests {
  /// bpftrace's runtime tests signed_ints "Comparison should print as 0 or 1" and
  /// regression codegen_struct_save_nested: address 0 read in BEGIN, straight and through a map.
  @Test func addressZeroReadsAsZerosInBegin() throws {
    try expectSameOutputAsBpftrace(
      [], #"struct x { uint64_t x; }; BEGIN { $a = (*(struct x*)0).x; printf("%d %d\n", $a > -1, $a < 1); exit(); }"#)
    try expectSameOutputAsBpftrace(
      [],
      #"struct Foo { int m; struct { int x; int y; } bar; int n; } BEGIN { @foo = (struct Foo *)0; @bar = @foo->bar; @x = @foo->bar.x; printf("_%s_\n", "done"); exit(); }"#
    )
  }

  /// The failed reads are counted and said at exit; a string at address 0 is empty.
  @Test func failedReadsAreCounted() {
    guard kernelAvailable("constant address reads") else { return }
    let run = scry("-e", #"struct foo { int a; }; BEGIN { printf("[%s] %d\n", str(0), ((struct foo *)8)->a); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("[] 0\n"), "\(run.stdout)")
    #expect(run.stderr.contains("WARNING: 2 reads of memory failed"), "\(run.stderr)")
  }

  /// bpftrace's runtime test json-output.helper_error: with -kk, each failed read is said where it
  /// is written, before the block's own output, in bpftrace's words (json, then text); -k says nothing.
  @Test func kkSaysEachFailedReadAsBpftraceDoes() throws {
    let program = "struct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a; exit(); }"
    try expectSameOutputAsBpftrace(["-kk", "-q", "-f", "json"], program)
    guard kernelAvailable("-kk helper errors") else { return }
    let json = scry("-kk", "-q", "-f", "json", "-e", program)
    #expect(json.stdout.hasPrefix(#"{"type": "helper_error", "helper": "probe_read", "retcode": -14, "line": 1, "col": 37}"#), "\(json.stdout)")
    let text = scry("-kk", "-e", #"struct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a; printf("after\n"); exit(); }"#)
    #expect(
      text.stdout.contains(
        "\nstdin:1:37-57: WARNING: Failed to probe_read: Bad address (-14)\nstruct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a;"
      ) && text.stdout.contains("\n" + String(repeating: " ", count: 36) + String(repeating: "~", count: 20) + "\nafter\n"),
      "\(text.stdout)")
    let quiet = scry("-k", "-e", #"struct foo {int a;}; BEGIN { $tmp = ((struct foo*) 0)->a; printf("after\n"); exit(); }"#)
    #expect(!quiet.stdout.contains("WARNING") && quiet.stdout.contains("after"), "\(quiet.stdout)")
  }

  /// The same for events the capture program delivers through the BPF ring: a kernel address at
  /// a tracepoint, as bpftrace says it (its underline one column longer).
  @Test func kkSaysFailedReadsOfRingDeliveredEvents() {
    guard kernelAvailable("-kk at a tracepoint") else { return }
    let run = scry(
      "-kk", "-e", #"struct foo {int a;}; tracepoint:sched:sched_switch { printf("%d|\n", ((struct foo*) 0xffff000000000000)->a); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(
      run.stdout.hasPrefix("Attaching 1 probe...\nstdin:1:70-107: WARNING: Failed to probe_read_kernel: Numerical result out of range (-34)\n"),
      "\(run.stdout)")
    #expect(run.stdout.contains("\n0|\n"), "\(run.stdout)")
  }

  /// And for a uprobe's record: a bad pointer argument (`probed(1)`) read as the process's memory.
  @Test func kkSaysFailedReadsOfUprobeRecords() throws {
    let binary = try UaddrTests.fixture(pie: false)
    try expectSameOutputAsBpftrace(
      ["-kk", "-c", binary], "uprobe:\(binary):probed { printf(\"%d %s|\\n\", *(int32 *)arg0, str(arg0)); exit(); }")
    try expectSameOutputAsBpftrace(["-kk", "-f", "json", "-c", binary], "uprobe:\(binary):probed { printf(\"%d|\\n\", *(int32 *)arg0); exit(); }")
  }
}

/// `uaddr("sym")`: a variable of the probed binary, typed by its size and read at the event from
/// the process's memory; in a PIE, found relative to the probe point, wherever the loader put it.
@Suite(.serialized) struct UaddrTests {
  static func fixture(pie: Bool) throws -> String {
    let binary = "/tmp/scry-globals-\(pie ? "pie" : "exec")-\(getpid())"
    if access(binary, X_OK) != 0 {
      try buildFixture("globals_target.c", into: binary, flags: ["-O1"] + (pie ? ["-fPIE", "-pie"] : ["-no-pie", "-fno-pie"]))
    }
    return binary
  }

  static let program =
    #"printf("%d %x %x %lx %s\n", *uaddr("GLOBAL_8"), *uaddr("GLOBAL_16"), *uaddr("GLOBAL_32"), *uaddr("GLOBAL_64"), str(uaddr("GLOBAL_TEXT"))); exit(); }"#

  /// bpftrace's runtime test call.uaddr, on an executable loaded where it was linked.
  @Test func variablesOfAnExecutableMatchBpftrace() throws {
    let binary = try Self.fixture(pie: false)
    try expectSameOutputAsBpftrace(["-c", binary], "uprobe:\(binary):probed { " + Self.program)
    try expectSameOutputAsBpftrace(["-c", binary], "uprobe:\(binary):probed { @a = uaddr(\"GLOBAL_32\"); exit(); }")
  }

  /// In a PIE the symbol's value is relative to the load address: read through the probe point
  /// (bpftrace 0.17 reads the unrelocated value and gets 0), with and without BPF.
  @Test func variablesOfAPIEAreFoundFromTheProbePoint() throws {
    guard kernelAvailable("uaddr in a PIE") else { return }
    let binary = try Self.fixture(pie: true)
    for flags in [[], ["--no-bpf"]] {
      let run = Run.program(scryBinary(), flags + ["-c", binary, "-e", "uprobe:\(binary):probed { " + Self.program])
      #expect(run.status == 0, "\(run.stderr)")
      #expect(run.stdout.contains("\n-8 1616 32323232 6464646464646464 twelve\n"), "\(flags) \(run.stdout)")
      let address = Run.program(scryBinary(), flags + ["-c", binary, "-e", "uprobe:\(binary):probed { printf(\"%lx\\n\", uaddr(\"GLOBAL_32\")); exit(); }"])
      // Loaded at a random base, far above the symbol's own value.
      let value = address.stdout.split(separator: "\n").dropFirst().first.flatMap { UInt64($0, radix: 16) } ?? 0
      #expect(value > 0x10000, "\(address.stdout) \(address.stderr)")
    }
  }

  /// Where it has no value: outside uprobes, an unknown symbol, a PIE's variable at a return.
  @Test func refusalsSayWhy() throws {
    let binary = try Self.fixture(pie: true)
    let begin = scry("--dry-run", "-e", #"BEGIN { @ = uaddr("GLOBAL_32"); }"#)
    #expect(begin.status == 1 && begin.stderr.contains(#"uaddr can not be used with "BEGIN" probes"#), "\(begin.stderr)")
    let unknown = scry("--dry-run", "-e", "uprobe:\(binary):probed { @ = uaddr(\"NOPE\"); }")
    #expect(unknown.status == 1 && unknown.stderr.contains("Could not resolve symbol: \(binary):NOPE"), "\(unknown.stderr)")
    let atReturn = scry("--dry-run", "-e", "uretprobe:\(binary):probed { @ = *uaddr(\"GLOBAL_32\"); }")
    #expect(atReturn.status == 1 && atReturn.stderr.contains("at a uretprobe the instruction pointer is the caller's"), "\(atReturn.stderr)")
  }
}

/// bpftrace's `ctx` (its runtime test builtin.ctx reads an interval block's context): refused with
/// why, since Scry's interval blocks have no BPF program and its actions no program context.
@Suite struct ContextPointerTests {
  @Test func ctxIsRefusedWithWhy() {
    let interval = scry("--dry-run", "-e", #"struct x {unsigned long x}; i:ms:1 { printf("SUCCESS %d\n", ((struct x*)ctx)->x); exit(); }"#)
    #expect(interval.status == 1 && interval.stderr.contains("'ctx' is a BPF program's context, and interval blocks run in Scry's own process"), "\(interval.stderr)")
    let tracepoint = scry("--dry-run", "-e", "tracepoint:sched:sched_switch { @ = ctx; }")
    #expect(tracepoint.status == 1 && tracepoint.stderr.contains("'ctx', the raw context of a BPF program, is not given to scripts"), "\(tracepoint.stderr)")
  }
}
