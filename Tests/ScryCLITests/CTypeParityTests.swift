import Glibc
import Testing

/// C types and memory behind pointers, run under bpftrace 0.17 and Scry side by side on a C
/// program with nested structs, arrays, unions, bitfields and pointers to pointers
/// (Tests/Fixtures/struct_target.c): the same output for every access form.
@Suite(.serialized) struct CTypeParityTests {
  static let binary: String? = {
    let path = "/tmp/scry-struct-target-\(getpid())"
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let source = scriptsRoot() + "/Tests/Fixtures/struct_target.c"
    return Run.program(cc, ["-O0", "-o", path, source]).status == 0 ? path : nil
  }()

  /// The fixture's types as a script declares them for bpftrace's clang.
  static let declarations = """
    struct Inner { short x; long y; };
    union Number { unsigned int u; unsigned char bytes[4]; };
    struct Flags { unsigned int low : 3; unsigned int mid : 9; signed int neg : 4; };
    struct Outer { int a; char name[8]; struct Inner inner; struct Inner *next; int values[3];
      union Number number; struct Flags flags; struct Outer *self; };
    struct Foo { int m; int n; };

    """

  static let scripts: [String] = [
    // The issue's first example, and a whole struct kept in a map.
    #"uprobe:BIN:func { $f = (struct Foo *)arg0; printf("%d %d\n", $f->m, $f->n); @s = *$f; exit(); }"#,
    // The current task at a uprobe: kernel memory, though the probe's own is the process's.
    #"uprobe:BIN:func { printf("%d %s\n", curtask->tgid == pid, curtask->comm); @[curtask->tgid == pid] = count(); exit(); }"#,
    #"uprobe:BIN:func { @[curtask->tgid == pid] = count(); }"#,
    // Six bytes as a MAC address.
    #"struct M { unsigned char a[6]; } uprobe:BIN:outer_func { $m = (struct M *)arg0; printf("%s|\n", macaddr($m->a)); @[macaddr($m->a)] = count(); exit(); }"#,
    // Registers by name.
    #"uprobe:BIN:func { printf("%d %d\n", reg("di") == arg0, reg("sp") > 0); exit(); }"#,
    // Members of a struct value kept in a map, read back in user space.
    #"uprobe:BIN:func { $f = (struct Foo *)arg0; @s = *$f; $v = @s; printf("%d %d\n", $v.m, $v.n); exit(); }"#,
    // Fields in place and through pointers, nested, arrays, unions, bitfields, pointer chains.
    #"""
    uprobe:BIN:outer_func {
      $o = (struct Outer *)arg0;
      printf("a=%d name=%s x=%d y=%d\n", $o->a, $o->name, $o->inner.x, $o->inner.y);
      printf("next.x=%d next.y=%lld\n", $o->next->x, $o->next->y);
      printf("v1=%d v2=%d\n", $o->values[1], $o->values[2]);
      printf("u=%x b0=%d b3=%d\n", $o->number.u, $o->number.bytes[0], $o->number.bytes[3]);
      printf("low=%d mid=%d neg=%d\n", $o->flags.low, $o->flags.mid, $o->flags.neg);
      printf("self.a=%d selfself.a=%d\n", $o->self->a, $o->self->self->a);
      $pp = (struct Outer **)arg1;
      printf("pp.a=%d\n", (*$pp)->a);
      $i = (int32 *)arg2;
      printf("i1=%d i2=%d i3=%d\n", $i[1], *($i + 2), *($i + 3));
      exit();
    }
    """#,
    // Struct and array values: in maps, as keys, in tuples, and printed.
    #"""
    uprobe:BIN:outer_func {
      $o = (struct Outer *)arg0;
      @inner = $o->inner; @next = *$o->next; @num = $o->number; @vals = $o->values; @name = $o->name;
      @k[$o->inner] = 1; @t = ($o->inner, 5);
      print($o->inner);
      exit();
    }
    """#,
    // A pointer kept in a map at a constant key, then followed in the same firing.
    #"uprobe:BIN:outer_func { @a[1] = (struct Outer *)arg0; $x = @a[1]; printf("%d %d\n", @a[1]->values[2], $x->a); @p[0] = (int32 *)arg2; printf("%d\n", @p[0][1]); exit(); } END { clear(@a); clear(@p); }"#,
    // Arrays compare byte for byte, as bpftrace compares them.
    #"uprobe:BIN:outer_func { $o = (struct Outer *)arg0; printf("%d %d\n", $o->values == $o->self->values, $o->values != $o->self->values); exit(); }"#,
  ]

  /// A positional parameter as an index is a constant, as bpftrace substitutes it before compiling.
  @Test func positionalIndexMatchesBpftrace() throws {
    guard kernelAvailable("positional index parity") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = Self.declarations + "uprobe:\(binary):outer_func { $o = (struct Outer *)arg0; $v = $o->values; printf(\"%d %d %d\\n\", $o->values[$1], $o->self->values[$1], $v[$1]); exit(); }"
    let bpftrace = try #require(bpftraceBinary(), "bpftrace is needed for parity")
    let reference = Run.program(bpftrace, ["-c", binary, "-e", script, "2"])
    let ours = scry("-c", binary, "-e", script, "2")
    #expect(reference.stdout.contains("30 30 30\n"), "\(reference.stdout) \(reference.stderr)")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\(ours.stderr)\nbpftrace:\n\(reference.stdout)")
    let outside = scry("--dry-run", "-e", script, "7")
    #expect(outside.status == 1 && outside.stderr.contains("the index 7 is out of bounds for array of size 3"), "\(outside.stderr)")
  }

  @Test(arguments: scripts)
  func accessFormsMatchBpftrace(_ script: String) throws {
    guard kernelAvailable("C type parity") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let program = Self.declarations + script.split(separator: "BIN", omittingEmptySubsequences: false).joined(separator: binary)
    try expectSameOutputAsBpftrace(["-c", "\(binary) 1 300"], program)
    try expectSameOutputAsBpftrace(["-f", "json", "-c", "\(binary) 1 300"], program)
  }

  @Test(arguments: [
    // Pointer arithmetic scales by the pointee; sizeof; pointers compare and print as bpftrace prints them.
    #"BEGIN { @ = (int32 *) 32; @ += 1; @q = (int32 *)32 + 2; @r = (struct Foo *)0 + 1; @s = sizeof(struct Foo); $p = (struct Foo *)16; printf("%d %p\n", $p == (struct Foo *)16, $p); exit(); }"#,
    // sizeof of expressions: tuples laid out as C structs, casts at their width, builtins 64-bit.
    #"BEGIN { $u = ("ab", (1, "c")); printf("%d %d %d %d %d\n", sizeof($u), sizeof((int16)3), sizeof(pid), sizeof(nsecs), sizeof(true)); exit(); }"#,
    // Constants from #define and enums.
    "#define N 314\n#define M (N * 2 + 1)\nenum colors { RED, GREEN = 7, BLUE };\n"
      + #"BEGIN { printf("%d %d %d %d\n", N, M, GREEN, BLUE); exit(); }"#,
  ])
  func constantsAndPointerArithmeticMatchBpftrace(_ script: String) throws {
    try expectSameOutputAsBpftrace([], Self.declarations + script)
  }

  /// `curtask` is the kernel's `struct task_struct *` (BTF): chains through it are read by the
  /// tracepoint's capture program at the event, and a per-task predicate still filters them.
  @Test func currentTaskAtATracepointMatchesBpftrace() throws {
    let script = #"""
      tracepoint:sched:sched_process_exec /pid == cpid/ {
        printf("%d %d %d %s %s\n", curtask->pid == pid, curtask->tgid == cpid,
          curtask->real_parent->tgid == curtask->parent->tgid, curtask->comm, comm);
        @[curtask->comm] = count();
      }
      """#
    try expectSameOutputAsBpftrace(["-c", "/bin/true"], script)
  }

  /// A user address kept in a kernel struct: `uptr()` makes the last load a user read; unmarked,
  /// it is read as kernel memory and fails (empty), as in bpftrace.
  @Test func userPointerInAKernelStructMatchesBpftrace() throws {
    let script = #"""
      tracepoint:sched:sched_process_exec /pid == cpid/ {
        printf("%s|%s|%s\n", str(uptr(curtask->mm->arg_start)), str(curtask->mm->arg_start), str(args->filename));
      }
      """#
    try expectSameOutputAsBpftrace(["-c", "/bin/true"], script)
  }

  /// `@[$f->m] = count()`: counted per key by Scry's program in the kernel (no ring), and by the
  /// ring where BPF is not used; both as bpftrace counts.
  @Test func countsKeyedByAFieldMatchBpftrace() throws {
    guard kernelAvailable("C type parity") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = Self.declarations
      + "uprobe:\(binary):func { $f = (struct Foo *)arg0; @[$f->m] = count(); }"
      + " uprobe:\(binary):outer_func { @o[((struct Outer *)arg0)->inner.x] = count(); @n[((struct Outer *)arg0)->next->x] = count(); }"
    try expectSameOutputAsBpftrace(["-c", "\(binary) 500 300"], script)
    let plan = scry("--plan", "-e", script)
    #expect(plan.stdout.contains("counting per key in a kernel hash map"), "\(plan.stdout)")
    // Keyed by the thread: counted in the kernel too, one key with every call.
    let threads = scry("-c", "\(binary) 400 300", "-e", "uprobe:\(binary):func { @[tid] = count(); }")
    let last = threads.stdout.split(separator: "\n").last.map(String.init) ?? ""
    #expect(last.hasPrefix("@[") && last.hasSuffix("]: 400"), "\(threads.stdout)")
    let sampled = scry("--no-bpf", "-c", "\(binary) 500 300", "-e", script)
    #expect(sampled.stdout.hasSuffix("@[2]: 500\n@n[-7]: 500\n@o[5]: 500\n"), "\(sampled.stdout)")
  }

  /// `@[arg0 % 8] = count()`: the key's arithmetic on the value read is done by the kernel's
  /// counter too (no ring), with bpftrace's counts, and the same keys as the ring's actions make.
  @Test func countsKeyedByArithmeticOnAReadMatchBpftraceAndTheRing() throws {
    guard kernelAvailable("C type parity") else { return }
    let target = "/tmp/scry-keyed-target-\(getpid())"
    defer { unlink(target) }
    try buildFixture("uprobe_target.c", into: target, flags: ["-O0"])
    let script = ["@a[arg0 % 8]", "@b[arg0 / 10 + 1]", "@c[(arg0 & 6) << 2]", "@d[arg0 >> 4]", "@e[arg0 * 3 ^ 5]"]
      .map { "uprobe:\(target):target { \($0) = count(); }" }.joined(separator: " ")
    // Keys of equal counts print in each tool's hash order: compared as sets of lines.
    if let bpftrace = bpftraceBinary() {
      let reference = Run.program(bpftrace, ["-c", "\(target) 100 t", "-e", script])
      let ours = scry("-c", "\(target) 100 t", "-e", script)
      #expect(reference.status == 0 && ours.status == 0, "\(reference.stderr)\(ours.stderr)")
      #expect(ours.stdout.split(separator: "\n").sorted() == reference.stdout.split(separator: "\n").sorted(),
        "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    }
    let plan = scry("--plan", "-e", script)
    #expect(plan.stdout.contains("then % 8"), "\(plan.stdout)")
    #expect(!plan.stdout.contains("sampling"), "\(plan.stdout)")
    // A signed read (a short of -7), sign-extended and then divided, reduced and shifted
    // unsigned, as bpftrace does and as the actions compute it.
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let signed = Self.declarations
      + ["@m[((struct Outer *)arg0)->next->x % 4]", "@q[((struct Outer *)arg0)->next->x / 2]",
        "@s[((struct Outer *)arg0)->next->x >> 1]"]
      .map { "uprobe:\(binary):outer_func { \($0) = count(); }" }.joined(separator: " ")
    let counted = scry("-c", "\(binary) 50 300", "-e", signed)
    let sampled = scry("--no-bpf", "-c", "\(binary) 50 300", "-e", signed)
    #expect(counted.status == 0 && sampled.status == 0, "\(counted.stderr)\(sampled.stderr)")
    #expect(counted.stdout.hasSuffix("@m[1]: 50\n@q[9223372036854775804]: 50\n@s[9223372036854775804]: 50\n"), "\(counted.stdout)")
    #expect(counted.stdout == sampled.stdout, "\nkernel:\n\(counted.stdout)\nring:\n\(sampled.stdout)")
  }

  /// The issue's first example as a bpftrace user writes it: the definition needs no `;`.
  @Test func definitionRightBeforeAProbeMatchesBpftrace() throws {
    guard kernelAvailable("C type parity") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = #"struct Foo { int m; int n; } uprobe:\#(binary):func { $f = (struct Foo *)arg0; printf("%d %d\n", $f->m, $f->n); exit(); }"#
    try expectSameOutputAsBpftrace(["-c", "\(binary) 1 300"], script)
  }

  /// A read through an unmapped address gives 0, as in bpftrace, and the run says how many failed.
  @Test func failedReadsReadAsZeroAndAreCounted() throws {
    guard kernelAvailable("C type parity") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = Self.declarations
      + #"uprobe:\#(binary):func { $f = (struct Foo *)(arg0 - 2000000000); printf("%d %d\n", $f->m, $f->n); exit(); }"#
    let run = scry("-c", "\(binary) 1 300", "-e", script)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("0 0\n"), "\(run.stdout)")
    #expect(run.stderr.contains("WARNING: 2 reads of memory failed"), "\(run.stderr)")
  }

  /// `-l 'struct …'` names the kernel's structs and `-lv` defines one, as bpftrace lists them.
  @Test(arguments: [["-l", "struct list_*"], ["-lv", "struct qstr"], ["-lv", "struct sk_buff"], ["-lv", "union bpf_attr"]])
  func kernelTypesAreListedAsBpftraceListsThem(_ arguments: [String]) throws {
    guard kernelAvailable("C type parity"), let bpftrace = bpftraceBinary() else { return }
    let reference = Run.program(bpftrace, arguments)
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = scry(arguments[0], arguments[1])
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  /// `buf()` at a tracepoint: the bytes behind a pointer field, copied at the event.
  @Test func bufferBehindATracepointPointerMatchesBpftrace() throws {
    let script = #"tracepoint:syscalls:sys_enter_openat /comm == "cat"/ { printf("%r|\n", buf(args->filename, 11)); exit(); }"#
    try expectSameOutputAsBpftrace(["-c", "/bin/cat /dev/null"], script)
  }

  @Test func kernelStructSizesComeFromBTF() throws {
    try expectSameOutputAsBpftrace([], #"BEGIN { printf("%d %d\n", sizeof(struct task_struct), sizeof(struct list_head)); exit(); }"#)
  }
}
