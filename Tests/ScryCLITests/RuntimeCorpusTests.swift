import Glibc
import Testing

/// Forms from bpftrace's own runtime tests (its files basic, other, array, pointers, for…) that
/// Scry once refused: run side by side with bpftrace 0.17 where 0.17 can express them, with the
/// output bpftrace 0.24 documents where it cannot.
@Suite(.serialized) struct RuntimeCorpusTests {
  static let binary: String? = {
    let path = "/tmp/scry-corpus-target-\(getpid())"
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let source = scriptsRoot() + "/Tests/Fixtures/struct_target.c"
    return Run.program(cc, ["-O0", "-o", path, source]).status == 0 ? path : nil
  }()

  static let declarations = """
    struct Inner { short x; long y; };
    union Number { unsigned int u; unsigned char bytes[4]; };
    struct Flags { unsigned int low : 3; unsigned int mid : 9; signed int neg : 4; };
    struct Outer { int a; char name[8]; struct Inner inner; struct Inner *next; int values[3];
      union Number number; struct Flags flags; struct Outer *self; };

    """

  /// Arrays and structs kept in maps and variables, indexed and read member by member afterwards.
  @Test func arraysHeldInMapsAreIndexedAsBpftraceIndexesThem() throws {
    guard kernelAvailable("runtime corpus") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = Self.declarations + """
      uprobe:\(binary):outer_func { $o = (struct Outer *)arg0; @v[0] = $o->values; @o[1] = *$o; $x = @v[0]; $s = @o[1];
        printf("%d %d %d %d %d %s\\n", @v[0][2], $x[1], @o[1].values[0], @o[1].inner.x, $s.number.bytes[0], @o[1].name);
        printf("%d\\n", @o[1].number.bytes[3]); clear(@o); exit(); }
      """
    try expectSameOutputAsBpftrace(["-c", "\(binary) 1 300"], script)
  }

  /// The last member of a script's struct may go without its `;`, as clang (and so bpftrace) takes it.
  @Test func lastMemberWithoutSemicolonMatchesBpftrace() throws {
    guard kernelAvailable("runtime corpus") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = """
      struct Flags { unsigned int low : 3, mid : 9; signed int neg : 4 } struct Foo { int m; int n }
      uprobe:\(binary):func { printf("%d %d\\n", ((struct Foo *)arg0)->n, sizeof(struct Flags)); exit(); }
      """
    try expectSameOutputAsBpftrace(["-c", "\(binary) 1 300"], script)
  }

  /// A `char[N]` member without a NUL in it prints all N characters, as in bpftrace.
  @Test func fullCharArrayMembersKeepEveryCharacter() throws {
    guard kernelAvailable("runtime corpus") else { return }
    let binary = try #require(Self.binary, "could not build Tests/Fixtures/struct_target.c")
    let script = """
      struct N { int a; char s[4]; }
      uprobe:\(binary):outer_func { $n = (struct N *)arg0; $s = $n->s; @n = *$n;
        printf("%s|%s|%s\\n", $n->s, $s, @n.s); @[$n->s] = 1; exit(); }
      """
    try expectSameOutputAsBpftrace(["-c", "\(binary) 1 300"], script)
  }

  @Test func indexPastAnArraysEndIsRefusedWithBpftracesWords() {
    let script = Self.declarations + "uprobe:/bin/true:main { $o = (struct Outer *)arg0; @ = $o->values[3]; }"
    let run = scry("--dry-run", "-e", script)
    #expect(run.status != 0)
    #expect(run.stderr.contains("the index 3 is out of bounds for array of size 3"), "\(run.stderr)")
  }

  /// The script's enum values print as numbers, as bpftrace 0.17 prints them (0.24 prints names,
  /// docs/language.md); a cast to the script's enum (which 0.17 refuses) prints its number too.
  @Test func scriptEnumsPrintAsBpftrace017PrintsThem() throws {
    let program = """
      enum { ONE = 1, TWO = 2 }; enum BAZ { FOO = 333, BAR };
      BEGIN { @[ONE] = 11; @t = (ONE, TWO); @n[ONE + 1] = TWO - 1; @n[ONE] = TWO; $f = TWO; print($f);
        printf("%d\\n", FOO); exit(); }
      """
    try expectSameOutputAsBpftrace([], program)
    guard kernelAvailable("runtime corpus") else { return }
    let cast = scry("-q", "-e", "enum BAZ { FOO = 333, BAR }; BEGIN { print((enum BAZ)334); print((enum BAZ)444); exit(); }")
    #expect(cast.status == 0, "\(cast.stderr)")
    #expect(cast.stdout.hasPrefix("334\n444\n"), "\(cast.stdout)")
  }

  /// A string literal may hold a raw newline, as dash's `echo` writes `\n` into one (bpftrace 0.24
  /// takes it; 0.17 refused it).
  @Test func stringLiteralsMaySpanLines() {
    guard kernelAvailable("runtime corpus") else { return }
    let run = scry("-e", "#define N 314\nBEGIN { printf(\"%d\n\", N); printf(\"a\nb\\n\"); exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\n314\na\nb\n"), "\(run.stdout)")
    let open = scry("--dry-run", "-e", "BEGIN { printf(\"abc); }\n")
    #expect(open.status != 0)
    #expect(open.stderr.contains("-e:1:16: error: unterminated string literal"), "\(open.stderr)")
  }

  /// `true` and `false` print as 1 and 0 in values, keys and JSON, as bpftrace 0.17 prints them
  /// (0.24 prints `true`/`false`); a `(bool)` cast of a number, a pointer or a string is true when it
  /// is not zero or empty; printf's `%d` and comparisons see 1 and 0.
  @Test func boolValuesPrintAsBpftrace017PrintsThem() {
    guard kernelAvailable("runtime corpus") else { return }
    let program = """
      BEGIN { $b = true; @m = false; @k[(bool)5, "x"] = (bool)"ab"; @e[(bool)""] = (bool)(int64 *)0;
        print((true, $b, @m)); printf("%d %d %d\\n", $b, @m, (bool)7 == true); if (false) { print(1); } exit(); }
      """
    let run = scry("-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\n(1, 1, 0)\n1 0 1\n"), "\(run.stdout)")
    for line in ["\n@k[1, x]: 1\n", "\n@m: 0\n", "\n@e[0]: 0\n"] {
      #expect(run.stdout.contains(line), "\(run.stdout)")
    }
    let json = scry("-f", "json", "-e", "BEGIN { @a[true] = false; print(true); exit(); }")
    #expect(json.stdout.contains("{\"type\": \"value\", \"data\": 1}\n"), "\(json.stdout)")
    #expect(json.stdout.contains("{\"type\": \"map\", \"data\": {\"@a\": {\"1\": 0}}}"), "\(json.stdout)")
  }

  @Test func unrollCountsAreRefusedWithBpftracesWords() {
    let high = scry("--dry-run", "-e", "BEGIN { unroll (101) { } }")
    #expect(high.status != 0 && high.stderr.contains("-e:1:17: error: unroll maximum value is 100"), "\(high.stderr)")
    let low = scry("--dry-run", "-e", "BEGIN { unroll (0) { } }")
    #expect(low.status != 0 && low.stderr.contains("-e:1:17: error: unroll minimum value is 1"), "\(low.stderr)")
  }

  /// Positional parameters where bpftrace substitutes them: attach points, `str($1 + k)`, lengths,
  /// `kaddr(str($1))`.
  @Test(arguments: [
    (#"BEG$1 { printf("hello\n"); exit(); }"#, ["IN"]),
    (#"BEGIN { printf("%s|%s\n", str($1 + 1), str($1 + 5)); exit(); }"#, ["hello"]),
    (#"BEGIN { if (strncmp("hello", "hell", $1) == 0) { printf("ok\n"); } exit(); }"#, ["3"]),
    (#"BEGIN { printf("%d\n", kaddr(str($1)) == kaddr("vfs_read")); exit(); }"#, ["vfs_read"]),
    (#"interval:ms:$1 { printf("tick\n"); exit(); }"#, ["10"]),
    (#"BEGIN { @ = buf("hello", $1); @c = buf("abc", 2); printf("%r|\n", buf("hi", 2)); exit(); }"#, ["5"]),
  ] as [(String, [String])])
  func positionalParametersMatchBpftrace(_ program: String, _ parameters: [String]) throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let reference = Run.program(bpftrace, ["-e", program] + parameters)
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = scry(["-e", program] + parameters)
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  /// Named parameters (bpftrace 0.23's `getopt`), mixed with positional ones before and after `--`,
  /// as bpftrace's runtime tests give them; one no `getopt()` reads is refused with bpftrace's words.
  @Test func namedParametersAreReadByGetopt() {
    guard kernelAvailable("runtime corpus") else { return }
    let named = scry(
      "-e", #"BEGIN { print((getopt("aa", 10), getopt("cc", 1), getopt("dd"), getopt("ee", "hello"), getopt("ff", -3), getopt("gg", false))); exit(); }"#,
      "--", "--dd", "--aa=20", "--cc=False", "--gg")
    #expect(named.status == 0, "\(named.stderr)")
    #expect(named.stdout.hasPrefix("Attaching 1 probe...\n(20, 0, 1, hello, -3, 1)\n"), "\(named.stdout)")
    let mixed = scry(
      "-e", #"BEGIN { print(($1, getopt("aa", 10), $2, getopt("bb", "hello"), getopt("cc"), $#)); exit(); }"#,
      "--aa=20", "pos1", "--bb=bye", "--", "pos2", "--cc")
    #expect(mixed.status == 0, "\(mixed.stderr)")
    #expect(mixed.stdout.hasPrefix("Attaching 1 probe...\n(pos1, 20, pos2, bye, 1, 2)\n"), "\(mixed.stdout)")
    let unread = scry("--dry-run", "-e", "BEGIN { exit(); }", "--aa=20")
    #expect(unread.status == 1 && unread.stderr.contains("ERROR: Unexpected command line options: aa"), "\(unread.stderr)")
    let notNumber = scry("--dry-run", "-e", #"BEGIN { print(getopt("n", 1)); }"#, "--n=abc")
    #expect(notNumber.status == 1, "\(notNumber.stderr)")
    #expect(notNumber.stderr.contains("-e:1:15: error: the named parameter --n is not a number: 'abc'"), "\(notNumber.stderr)")
  }

  /// bpftrace 0.24's forms from its runtime tests (scripts/has_key.bt, regression): conditions of
  /// `if` and `while` without parentheses, in statements and values, and strings cast to a larger size.
  @Test func conditionsWithoutParenthesesAndStringCasts() {
    guard kernelAvailable("runtime corpus") else { return }
    let program = """
      begin { @a[1] = 0; $n = 0; if has_key(@a, 1) { $n++ } if !has_key(@a, 2) { $n++ }
        while $n < 5 { $n++ } $v = if $n == 5 { 7 } else { 8 }; let $s = (string[1024])"hi"; print(($n, $v, $s)); exit(); }
      """
    let run = scry("-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("Attaching 1 probe...\n(5, 7, hi)\n"), "\(run.stdout)")
    let shorter = scry("--dry-run", "-e", #"begin { $s = (string[3])"hello"; }"#)
    #expect(shorter.status == 1 && shorter.stderr.contains("-e:1:14: error: cannot cast string[6] to the shorter string[3]"), "\(shorter.stderr)")
  }

  /// A license the kernel does not count as GPL-compatible is refused with bpftrace's words.
  @Test func nonGPLLicenseIsRefused() {
    let refused = scry("--dry-run", "-e", #"config = { license = "Potato" } begin { exit(); }"#)
    #expect(refused.status == 1)
    #expect(refused.stderr.contains(
      "-e:1:22: error: Your bpftrace program cannot load because you are using a license that is non-GPL compatible. License: Potato"),
      "\(refused.stderr)")
    let accepted = scry("--dry-run", "-e", #"config = { license = "Dual BSD/GPL" } begin { exit(); }"#)
    #expect(accepted.status == 0, "\(accepted.stderr)")
  }

  /// JSON keeps enum values numbers, as bpftrace does (a bare name is not JSON); `%s` still names them.
  @Test func enumsStayNumbersInJSON() {
    guard kernelAvailable("runtime corpus") else { return }
    let run = scry("-q", "-f", "json", "-e", #"enum { FOO = 333 }; begin { $f = FOO; print($f); printf("%s\n", FOO); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasPrefix("{\"type\": \"value\", \"data\": 333}\n{\"type\": \"printf\", \"data\": \"FOO\\n\"}\n"), "\(run.stdout)")
  }

  @Test func unknownOutputFormatIsRefusedWithBpftracesWords() {
    let run = scry("-f", "jsonx", "-e", "begin { exit(); }")
    #expect(run.status != 0)
    #expect(run.stderr.contains("ERROR: Invalid output format \"jsonx\"\nValid formats: 'text', 'json', 'folded'"), "\(run.stderr)")
  }

  /// Errors bpftrace's runtime tests look for, in its words (Scry's location kept).
  @Test func missingFileAndSymbolAreRefusedWithBpftracesWords() {
    let file = scry("no_such_script_\(getpid()).bt")
    #expect(file.status == 1)
    #expect(file.stderr.contains("ERROR: failed to open file 'no_such_script_\(getpid()).bt': No such file or directory"), "\(file.stderr)")
    guard kernelAvailable("kernel symbols") else { return }
    let symbol = scry("--dry-run", "-e", #"BEGIN { print(kaddr("asdfzzzzzzz")) }"#)
    #expect(symbol.status == 1)
    #expect(symbol.stderr.contains("-e:1:21: error: Failed to resolve kernel symbol: asdfzzzzzzz"), "\(symbol.stderr)")
  }

  /// bpftrace 0.17 cannot run these; 0.24 prints what is expected here.
  @Test func positionalParametersBeyondBpftrace017() {
    guard kernelAvailable("runtime corpus") else { return }
    let whole = scry("-e", #"$1 { printf("hello\n"); exit(); }"#, "i:ms:1")
    #expect(whole.status == 0, "\(whole.stderr)")
    #expect(whole.stdout.contains("hello\n"), "\(whole.stdout)")
    let unsigned = scry("-e", #"BEGIN { printf("%lu %d\n", $1, $1 == -1); exit(); }"#, "0xffffffffffffffff")
    #expect(unsigned.status == 0, "\(unsigned.stderr)")
    #expect(unsigned.stdout.contains("18446744073709551615 1\n"), "\(unsigned.stdout)")
    let missing = scry("--dry-run", "-e", #"BEG$2 { exit(); }"#, "IN")
    #expect(missing.status != 0)
    #expect(missing.stderr.contains("probe uses positional parameter $2, but 1 were given"), "\(missing.stderr)")
    let past = scry("--dry-run", "-e", #"BEGIN { printf("%s\n", str($1 + 6)); }"#, "hello")
    #expect(past.status != 0)
    #expect(past.stderr.contains("the length of $1 (which is 5) is allowed inside str()"), "\(past.stderr)")
  }
}

/// `-l` as bpftrace 0.24 lists: timer probes by unit, and the probes of a program or script file.
@Suite struct ProgramListingTests {
  @Test func timerProbesAreListedByUnit() {
    let run = scry("-l", "*:ms:")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "interval:ms:\nprofile:ms:\n", "\(run.stdout)")
  }

  @Test func perfEventAliasesAreListedAfterTheirEvents() {
    let run = scry("-l", "software:cpu*")
    #expect(run.stdout == "software:cpu-clock:\nsoftware:cpu:\nsoftware:cpu-migrations:\n", "\(run.stdout)")
  }

  @Test func aProgramsProbesAreListedWithoutAttaching() {
    guard kernelAvailable("program listing") else { return }
    let program = "interval:s:1 { exit(); } i:ms:5 {} t:sched:sched_switc? { @[comm] = count(); } hardware:cache-misses:10 {} begin {}"
    let run = scry("-l", "-e", program)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(
      run.stdout == "interval:s:1\ninterval:ms:5\ntracepoint:sched:sched_switch\nhardware:cache-misses:10\nBEGIN\n",
      "\(run.stdout)")
    let path = "/tmp/scry-listing-\(getpid()).bt"
    defer { unlink(path) }
    let file = fopen(path, "w")
    fputs("interval:ms:1000\n{}\n\nuprobe:/bin/true:main\n{}\n", file)
    fclose(file)
    let listed = scry("-l", path)
    #expect(listed.stdout == "interval:ms:1000\nuprobe:/bin/true:main\n", "\(listed.stdout) \(listed.stderr)")
  }

  @Test func aMissingScriptFileIsSearchedForWithAWarning() {
    let run = scry("-l", "no_such_script.bt")
    #expect(run.status == 1)
    #expect(run.stderr.contains(
      "WARNING: It appears that 'no_such_script.bt' is a filename but the file does not exist. Treating 'no_such_script.bt' as a search pattern."),
      "\(run.stderr)")
  }
}

/// `-p` is checked as bpftrace checks it, with its messages, before anything else is read.
@Test(arguments: [
  ("a1111", "pid 'a1111' is not a valid decimal number"), ("111a1", "pid '111a1' is not a valid decimal number"),
  ("5000000", "pid '5000000' out of valid pid range [1,4194304]"),
  ("0", "pid '0' out of valid pid range [1,4194304]"),
])
func pidIsValidatedAsBpftraceValidatesIt(_ pid: String, _ message: String) {
  let run = scry("-p", pid, "no_such_script.bt")
  #expect(run.status == 2)
  #expect(run.stderr.contains("ERROR: " + message), "\(run.stderr)")
}

private func scry(_ arguments: [String]) -> Run { Run.program(scryBinary(), arguments) }
