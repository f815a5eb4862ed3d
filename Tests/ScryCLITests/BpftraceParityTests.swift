import Glibc
import Testing

/// Scripts that use only BEGIN, END and interval must print byte for byte what bpftrace 0.17
/// prints. Each is run under both, live; the test needs root (bpftrace does).
@Suite(.serialized) struct BpftraceParityTests {
  static let scripts: [String] = [
    // Maps of ints, strings and tuples; sort order at exit.
    #"BEGIN { @a = 1; @neg = -5; @b[1, "x"] = 2; @b[2, "y"] = 1; @str["k"] = "val"; @str["a"] = "zz"; @t = (1, "two"); @n[3] = 30; @n[1] = 10; @n[2] = 20; exit(); }"#,
    // Aggregations.
    #"BEGIN { @c["a"] = count(); @c["b"] = count(); @c["b"] = count(); @s = stats(3); @s = stats(10); @v = avg(7); @v = avg(8); @mn = min(-2); @mn = min(4); @mx = max(9); @mx = max(1); @sm = sum(5); @sm = sum(-2); exit(); }"#,
    #"BEGIN { @v[1] = avg(5); @v[2] = avg(1); @m[1] = min(5); @m[2] = min(-1); @st[1] = stats(5); @st[2] = stats(1); exit(); }"#,
    // Histograms.
    #"BEGIN { @h = hist(5); @h = hist(100); @h = hist(0); @h = hist(-1); @h = hist(3000); @h = hist(3000000); @hk[1] = hist(10); @hk[2] = hist(1000); exit(); }"#,
    #"BEGIN { @l = lhist(5, 0, 100, 10); @l = lhist(55, 0, 100, 10); @l = lhist(-3, 0, 100, 10); @l = lhist(150, 0, 100, 10); @one = lhist(7, 0, 10, 5); exit(); }"#,
    #"BEGIN { $i = 0; while ($i < 200) { @h = hist($i * 37); @l[$i % 3] = lhist($i, 0, 200, 20); $i++; } exit(); }"#,
    // printf conversions.
    #"BEGIN { printf("%d|%5d|%-5d|%05d|%x|%X|%o|%s|%10s|%-10s|%c|%%|%u|%ld|%lu|%hhd|%p\n", 42, 42, 42, 42, 255, 255, 8, "hi", "right", "left", 65, -1, -1, 300, 300, 1234); exit(); }"#,
    #"BEGIN { printf("%-8s|%8s|%.2s|%3c|%-4x|%x\n", "abc", "abc", "abcdef", 66, 10, -1); printf("no newline"); printf(" then one\n"); exit(); }"#,
    #"BEGIN { printf("%llu %lld %hu %hd %lx\n", -1, -1, -1, -1, -1); exit(); }"#,
    // print with top and div, values and tuples.
    #"BEGIN { @c[1] = count(); @c[2] = count(); @c[2] = count(); @c[3] = count(); @c[3] = count(); @c[3] = count(); print(@c); print(@c, 2); print(@c, 0, 2); @s = sum(7); print(@s, 0, 2); print((1, "x")); print(5); print("str"); print(-3); exit(); }"#,
    #"BEGIN { @h = hist(7); print(@h); @st = stats(4); print(@st); @a = avg(9); print(@a); exit(); }"#,
    // clear, delete, zero.
    #"BEGIN { @a[1] = 1; @a[2] = 2; @b = 5; @c[1] = count(); @d["x"] = 1; @d["y"] = 2; delete(@a[1]); clear(@b); zero(@c); delete(@d["x"]); exit(); }"#,
    // delete() of keyless count and avg keeps them at 0; print() applies top and div to avg maps.
    #"BEGIN { @x = 5; delete(@x); @s = sum(3); delete(@s); @a = avg(4); delete(@a); @ = count(); delete(@); exit(); }"#,
    #"BEGIN { @a[1] = avg(10); @a[2] = avg(30); @a[3] = avg(20); print(@a, 2, 10); @m[1] = max(100); @m[2] = max(300); print(@m, 1, 10); clear(@a); clear(@m); exit(); }"#,
    // Library functions: bswap, ntop, strerror, username, strftime as a value.
    #"BEGIN { printf("%x %x %x\n", bswap((uint32)0x12345678), bswap((uint16)0x1234), bswap(0x1122334455667788)); exit(); }"#,
    #"BEGIN { printf("%s|%s\n", ntop(0x0100007f), ntop(2, 0x0100007f)); @[ntop(0x0100007f)] = count(); exit(); }"#,
    #"BEGIN { printf("%s\n", strerror(2)); @e = strerror(13); printf("%s\n", username); @u[username] = count(); exit(); }"#,
    #"BEGIN { @t = strftime("%Y", 0); @tt = (1, strftime("%Y", 0)); exit(); }"#,
    #"BEGIN { printf("%s|%s|%s\n", ksym(kaddr("vfs_read")), ksym(kaddr("vfs_read") + 5), ksym(1)); @[ksym(kaddr("vfs_read"))] = count(); exit(); }"#,
    // Control flow, variables, operators.
    #"BEGIN { $x = 10; $y = $x * 3 - 4 / 2 + (7 % 4) << 1; @r = $y; @b = (5 & 3) | (8 ^ 2); @t = $x > 5 ? 100 : 200; @n = !0; @neg = -$x; unroll(3) { @u++; } if ($x == 10) { @eq = 1; } else { @eq = 2; } exit(); }"#,
    #"BEGIN { @m[1] = 10; @m[2] = 20; $i = 0; while ($i < 5) { $i++; if ($i == 2) { continue; } if ($i == 4) { break; } @w[$i] = $i; } exit(); }"#,
    // exit() from an interval, END after it.
    #"interval:ms:50 { @ticks++; if (@ticks == 3) { exit(); } } END { printf("ticks %d\n", @ticks); }"#,
    #"BEGIN { printf("begin\n"); } END { printf("end\n"); @e = 1; } interval:ms:10 { exit(); }"#,
    // Integer signedness as bpftrace 0.17 has it: '/', '%' and '>>' unsigned whatever the
    // operands, ordering signed only between signed operands, a result signed only when both
    // operands are (the left one for shifts), avg and stats signed, '?:' typed as its first branch.
    #"BEGIN { $a = -7; $u = (uint64)5; @a[$a / 2] = 1; @d[$a < $u] = 1; @f[-8 >> 1] = 1; @l[$a % 3] = 1; @t[-7 / 2] = 1; @w[$a > $u] = 1; @s[$a / -2] = 1; @m[$u - 10] = 1; exit(); }"#,
    #"BEGIN { $a = -7; $u = (uint64)5; @a = $a / 2; @b = $u - 10; @f = $a - $u; @g = sum($u - 10); @i = avg($u - 10); @j = stats($u - 10); @c = ($a < $u) - 2; @h = ($a < 3) - 2; @e = !$u - 2; @n = -(uint32)3; @k = ~$u; @l = (uint64)1 << 63; @t = 0 ? -5 : $u - 10; @x = ("a" == "a") - 2; exit(); }"#,
    // Compound assignment is `x = x op v`; a map or variable keeps its first type's sign.
    #"BEGIN { $x = -9; $x /= 2; @o = $x; $y = -9; $y >>= 1; @p = $y; $z = -9; $z %= 4; @q = $z; @r = -9; @r /= 2; @s = -9; @s >>= 1; @t = -1; @t++; @v = (uint64)0; @v--; @w = (uint64)0; @w -= 3; $i = (uint64)0; $i--; @i = $i; exit(); }"#,
    #"BEGIN { @x = (uint64)0; @x = -1; $y = -1; $y = (uint64)0; $y = $y - 1; @y = $y; $z = (uint64)0; $z = -1; @z = $z; exit(); }"#,
    #"BEGIN { $a = -7; printf("%d %u %x %lld %llu %ld\n", $a / 2, $a / 2, $a / 2, $a / 2, $a % 5, (uint64)5 - 10); print($a / 2); print((uint64)5 - 10); exit(); }"#,
    // Strings and comparisons.
    #"BEGIN { $s = "hello"; if ($s == "hello") { @eq = 1; } if (strncmp($s, "help", 3) == 0) { @n = 1; } @len = sizeof(uint32); @k[$s, 2] = 1; exit(); }"#,
    // Buffers compare byte for byte.
    #"interval:ms:1 { $a = buf("hi", 2); $b = buf("bye", 3); $c = buf("hj", 2); printf("equal=%d, unequal=%d %d\n", $a == $a, $a != $b, $a == $c); exit(); }"#,
    // `++` and `--` on a pointer step by its pointee and keep it a pointer (`($c++)->b` is typed).
    #"struct C { uint32_t a; uint64_t b; } BEGIN { $c = (struct C *)1000; $d = $c++; $e = $c--; printf("%d %d %d %d\n", (uint64)$d, (uint64)$e, (uint64)$c, (uint64)(++$c)); exit(); }"#,
    // A map read before its assignment reads 0; `@n = @n + 1` alone types @n.
    #"BEGIN { @a = @b; @b = 1; @t = (@u, 1); @u = 3; @n = @n + 1; @n = @n + 1; @k[2] = @k[2] + 5; exit(); }"#,
  ]

  @Test(arguments: scripts)
  func matchesBpftrace(_ script: String) throws {
    try expectSameOutputAsBpftrace([], script)
  }

  /// arg0 is unsigned: `arg0 - 10` and `arg0 / 2 - 3` are unsigned arithmetic at a uprobe, in
  /// keys counted by the kernel and in values computed by the ring's actions. Keys of equal
  /// counts print in each tool's hash order: compared as sets of lines.
  @Test func uprobeArgumentArithmeticIsUnsigned() throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let target = "/tmp/scry-sign-target-\(getpid())"
    defer { unlink(target) }
    try buildFixture("uprobe_target.c", into: target, flags: ["-O0"])
    let script = "uprobe:\(target):target { @[arg0 - 10] = count(); @b[arg0 / 2 - 3] = count(); @c[arg0 < 5 ? arg0 : 99] = count();"
      + " $x = (int64)arg0 - 3; $x /= 2; @e[$x] = count(); @m[arg0 % 3 - 1] = sum(arg0 - 3); @v = avg(arg0 - 10); @w = arg0 - 100; }"
    let reference = Run.program(bpftrace, ["-c", "\(target) 8 t", "-e", script])
    let ours = scry("-c", "\(target) 8 t", "-e", script)
    #expect(reference.status == 0 && ours.status == 0, "\(reference.stderr)\(ours.stderr)")
    #expect(ours.stdout.split(separator: "\n").sorted() == reference.stdout.split(separator: "\n").sorted(),
      "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  @Test func jsonRecordsOfCatSystemAndTimeMatchBpftrace() throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let script = #"BEGIN { time("%Y\n"); cat("/proc/sys/kernel/ostype"); system("echo hi; echo there"); printf("x\n"); exit(); }"#
    let reference = Run.program(bpftrace, ["--unsafe", "-f", "json", "-e", script])
    let ours = scry("--unsafe", "-f", "json", "-e", script)
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  @Test func systemOutputGoesToTheOutputFile() {
    let path = "/tmp/scry-system-\(getpid()).txt"
    defer { unlink(path) }
    let run = scry("--unsafe", "-o", path, "-e", #"BEGIN { printf("before\n"); system("echo from-system"); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.isEmpty, "\(run.stdout)")
    #expect(Run.program("/bin/cat", [path]).stdout.hasPrefix("Attaching 1 probe...\nbefore\nfrom-system\n"))
  }

  @Test func jsonMatchesBpftrace() throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let script = #"BEGIN { @a = 1; @x[1, "a"] = 1; @st = stats(4); @hh[3] = hist(7); @l = lhist(5, 0, 10, 5); @h = hist(0); @h = hist(-5); @h = hist(20); print(5); print("s"); print((1, "x")); printf("%d %s\n", 3, "q"); @c["k"] = count(); @v = avg(3); exit(); }"#
    let reference = Run.program(bpftrace, ["-f", "json", "-e", script])
    let ours = scry("-f", "json", "-e", script)
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }
}

/// Runs `program` with `flags` under bpftrace 0.17 and under Scry, and expects the same standard
/// output (skipped without root or bpftrace).
func expectSameOutputAsBpftrace(
  _ flags: [String], _ program: String, environment: [String: String] = [:],
  sourceLocation: SourceLocation = #_sourceLocation
) throws {
  guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
  let reference = Run.program(bpftrace, flags + ["-e", program], environment: environment)
  try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)", sourceLocation: sourceLocation)
  let ours = Run.program(scryBinary(), flags + ["-e", program], environment: environment)
  #expect(ours.status == 0, "\(ours.stderr)", sourceLocation: sourceLocation)
  #expect(
    ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)",
    sourceLocation: sourceLocation)
}
