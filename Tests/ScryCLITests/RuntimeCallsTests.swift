import Glibc
import Testing

/// Behaviours bpftrace's own runtime tests (call, builtin, json-output, map, aggregations) expect of
/// bpftrace 0.2x, where Scry follows it rather than 0.17: exact output of our own scripts.
@Suite struct RuntimeCallsTests {
  /// A program with only BEGIN and END probes runs until a signal, as in bpftrace 0.17: then END
  /// runs and the maps print. With `-c` it ends when the command does.
  @Test func beginOnlyProgramRunsUntilASignal() {
    let program = #"begin { @a[0] = 0; @a[1] = 1; } end { printf("%s\n", probe); }"#
    let run = shell(#""$SCRY" -q -e '"# + program + #"' & sleep 1; kill -INT $!; wait $!"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "end\n\n\n@a[0]: 0\n@a[1]: 1\n", "\(run.stdout)")
    // Still running after a second: the signal ended it, not BEGIN.
    let alive = shell(#""$SCRY" -q -e 'END { printf("end\n"); }' & sleep 1; kill -0 $! && echo alive; kill -INT $!; wait $!"#)
    #expect(alive.stdout == "alive\nend\n\n\n", "\(alive.stdout)")
    let command = scry("-q", "-c", "/bin/true", "-e", program)
    #expect(command.status == 0 && command.stdout == "end\n\n\n@a[0]: 0\n@a[1]: 1\n", "\(command.stdout)\(command.stderr)")
  }

  /// `probe` names BEGIN and END as the script spells them.
  @Test func probeNameIsAsWritten() {
    let lower = scry("-q", "-e", #"begin { printf("%s", probe); exit(); } end { printf("-%s\n", probe); }"#)
    #expect(lower.stdout == "begin-end\n\n\n", "\(lower.stdout)")
    let upper = scry("-q", "-e", #"BEGIN { printf("%s", probe); exit(); } END { printf("-%s\n", probe); }"#)
    #expect(upper.stdout == "BEGIN-END\n\n\n", "\(upper.stdout)")
  }

  /// The first value sets a max or min, whatever its sign.
  @Test func maxOfNegativeValuesIsKept() {
    let run = scry("-q", "-e", "begin { @max = max(-3); @max = max(-1); @max = max(-2); @min = min(-1); @mx[1] = max(0); exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "\n\n@max: -1\n@min: -1\n@mx[1]: 0\n", "\(run.stdout)")
  }

  /// `on_stack_limit` (bpftrace's BPF stack budget, nothing to Scry) takes 0; a member list may end
  /// without its last ';'.
  @Test func configZeroAndLastMemberWithoutSemicolon() {
    let run = scry("-q", "-e", #"config = { on_stack_limit = 0 } struct S { int a; char b }; begin { print((1, (2, "XXXX"))); printf("%d\n", sizeof(struct S)); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "(1, (2, XXXX))\n8\n\n\n", "\(run.stdout)")
    let bad = scry("--dry-run", "-e", "config = { max_map_keys = 0 } begin { }")
    #expect(bad.status != 0 && bad.stderr.contains("'max_map_keys' must be from 1 to"), "\(bad.stderr)")
  }

  /// buf() of a string literal holds its bytes (with the NUL, zero-padded); `%rx` escapes every
  /// byte, `%rh` writes them as spaced hex.
  @Test func bufOfALiteralAndItsHexForms() {
    let program = #"""
      begin { printf("%rx|%rh|%r\n", buf("Hi\0", 3), buf("Hi\0", 3), buf("ok", 4)); @[buf("ok_key", 6)] = 1; @v = buf("ok_value", 8); @h[buf("ok", 3), 1] = count(); exit(); }
      """#
    let run = scry("-q", "-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == #"\x48\x69\x00|48 69 00|ok\x00\x00"# + "\n\n\n@[ok_key]: 1\n@h[ok\\x00, 1]: 1\n@v: ok_value\n", "\(run.stdout)")
    let refused = scry("--dry-run", "-e", #"begin { printf("%rx\n", "text"); }"#)
    #expect(refused.status != 0 && refused.stderr.contains("'%r' prints a buffer from buf()"), "\(refused.stderr)")
  }
}

extension RuntimeCallsTests {
  /// macaddr() of a `char[6]` field read at a uprobe: all six bytes, as a value, a key and printf;
  /// buf() of an array field without a length: the whole array.
  @Test func macaddrOfACharArrayKeepsAllSixBytes() throws {
    guard kernelAvailable("macaddr at a uprobe") else { return }
    let binary = "/tmp/scry-mac-target-\(getpid())"
    defer { unlink(binary) }
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    try #require(Run.program(cc, ["-O0", "-o", binary, scriptsRoot() + "/Tests/Fixtures/mac_target.c"]).status == 0)
    let program = """
      struct S { const char *p; char mac[6]; unsigned short e[2] }
      uprobe:\(binary):func { $s = (struct S *)arg0; printf("P: %s\\n", macaddr($s->mac)); @[macaddr($s->mac)] = 1; @v[1] = macaddr($s->mac);
        printf("%r|%r\\n", buf($s->mac), buf($s->e)); exit(); }
      """
    let run = scry("-q", "-c", binary, "-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "P: 05:04:03:02:01:02\n" + #"\x05\x04\x03\x02\x01\x02|\x09\x00\x0a\x00"#
      + "\n\n\n@[05:04:03:02:01:02]: 1\n@v[1]: 05:04:03:02:01:02\n", "\(run.stdout)")
  }
}

extension RuntimeCallsTests {
  /// printf's `%s` of an enum value prints its enumerator's name: an enumerator, a variable or map
  /// holding one, a cast to the enum; a value no enumerator has prints as its number. `%d` and
  /// map printing stay numeric, as in bpftrace 0.17.
  @Test func percentSOfAnEnumValueIsItsName() {
    let program = #"""
      enum Foo { ONE = 1, TWO = 2, OTHER = 99999 };
      begin { $two = TWO; @other = OTHER; $x = 100; printf("%d %s|%s|%-7s|%s|%s\n", ONE, ONE, $two, @other, (enum Foo)1, (enum Foo)$x); exit(); }
      """#
    let run = scry("-q", "-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "1 ONE|TWO|OTHER  |ONE|100\n\n\n@other: 99999\n", "\(run.stdout)")
    let json = scry("-q", "-f", "json", "-e", #"enum E { A = 7 }; begin { printf("%s %d\n", A, A); exit(); }"#)
    #expect(json.stdout.hasPrefix(#"{"type": "printf", "data": "A 7\n"}"#), "\(json.stdout)")
    let plain = scry("--dry-run", "-e", "#define N 3\n" + #"begin { printf("%s\n", N); }"#)
    #expect(plain.status != 0 && plain.stderr.contains("'%s' needs a string"), "\(plain.stderr)")
  }
}

extension RuntimeCallsTests {
  /// `delete(@m[k, *])` removes every element matching the given components, in any probe order;
  /// a wildcard anywhere else, or a delete of the wrong arity or types, is refused with its place.
  @Test func deleteWithWildcardKeys() {
    let run = scry("-q", "-e", #"""
      end { delete(@e[10, *]); }
      begin { @m[10, 0, "a"] = 1; @m[2, 20, "a"] = 2; @m[10, 192, "b"] = 3; delete(@m[*, *, "a"]); print(@m); @e[10, 1] = 1; @e[20, 10] = 2; exit(); }
      """#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "@m[10, 192, b]: 3\n\n\n@e[20, 10]: 2\n@m[10, 192, b]: 3\n", "\(run.stdout)")
    let refused = scry("--dry-run", "-e", #"begin { @m[1, 2] = 1; delete(@m[*]); @m[*, 1] = 2; delete(@m["x", *]); }"#)
    #expect(refused.status != 0, "\(refused.stdout)")
    for message in ["'@m' has 2 key components, this delete gives 1", "'*' stands for any key component only in delete(",
                    "this key component is string[2], but '@m' has int64 here"] {
      #expect(refused.stderr.contains(message), "missing \(message): \(refused.stderr)")
    }
  }
}

extension RuntimeCallsTests {
  /// `usermode` is 1 in BEGIN, END and uprobes, 0 in tracepoints; refused where the probe does not
  /// fix the mode.
  @Test func usermodeFollowsTheProbe() {
    let special = scry("-q", "-e", #"begin { printf("%d ", usermode); exit(); } end { print(usermode); }"#)
    #expect(special.stdout == "1 1\n\n\n", "\(special.stdout)\(special.stderr)")
    guard kernelAvailable("usermode in a tracepoint") else { return }
    let tracepoint = scry("-q", "-c", "/bin/cat /dev/null", "-e",
                          "tracepoint:syscalls:sys_enter_openat /pid == cpid/ { print(usermode); exit(); }")
    #expect(tracepoint.stdout == "0\n\n\n", "\(tracepoint.stdout)\(tracepoint.stderr)")
    let refused = scry("--dry-run", "-e", "interval:ms:1 { print(usermode); exit(); }")
    #expect(refused.status != 0 && refused.stderr.contains("'usermode' is not available in interval probes"), "\(refused.stderr)")
  }
}

extension RuntimeCallsTests {
  /// `args.argv[N]` of execve (a `const char *const *` field) is a string pointer, so str() reads
  /// the argument; a length computed at the event keeps that many characters, as a literal does.
  @Test func argvElementsAreStringsAndStrTakesAComputedLength() {
    guard kernelAvailable("str(args.argv[N])") else { return }
    let program = #"""
      tracepoint:syscalls:sys_enter_execve /pid == cpid/ {
        $n = 2; printf("%s|%s|%s\n", str(args.argv[0]), str(args.argv[1], 3), str(args.argv[1], $n + 1)); exit();
      }
      """#
    let run = scry("-q", "-c", "/bin/echo zztest", "-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("/bin/echo|zzt|zzt\n"), "\(run.stdout)")
  }
}
