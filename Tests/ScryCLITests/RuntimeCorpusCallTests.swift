import Glibc
import Testing

/// Forms from bpftrace 0.17's runtime tests (its files tuples, usdt) that Scry once answered
/// differently: `sizeof` of tuples and variables, an empty USDT provider, and `-l` over a file's
/// or a process's every provider.
@Suite(.serialized) struct RuntimeCorpusCallTests {
  /// A tuple is sized as C lays out a struct of the types its parts were written with, and a
  /// variable by its first value, though both hold their integers in 64-bit slots.
  @Test func sizeofTuplesAndVariablesMatchesBpftrace() throws {
    let script = """
      struct Foo { int m; int n; }
      BEGIN { $t = ((int8) 1, (int16) 1, (int32) 1); $x = (int8) 1; $y = (int32) 1; $y = 5; $u = $t; @m = (int8) 1;
        $a = ((int8)-100, (int8) 100, "abcdef", 3, (int32) 1, (int64)-10, (int8)10, (int16)-555, "abc");
        printf("%d %d %d %d %d %d %d\\n", sizeof($t), sizeof(((int32) 1, (int16) 1, (int8) 1)), sizeof($x), sizeof($y), sizeof($u), sizeof($t.1), sizeof(@m));
        printf("%d %d %d\\n", sizeof($a), sizeof(((int8) 1, (int64) 1, (int8) 1, (int64) 1)), sizeof((1, "ab")));
        clear(@m); exit(); }
      """
    try expectSameOutputAsBpftrace([], script)
    let ours = scry("-e", script)
    #expect(ours.stdout.contains("8 8 1 4 8 2 8\n48 32 16\n"), "\(ours.stdout)\(ours.stderr)")
  }

  /// `usdt:PATH::NAME` leaves the provider out: any provider's probe of that name.
  @Test func emptyUSDTProviderMatchesAnyProvider() throws {
    guard kernelAvailable("usdt"), let builds = USDTTests.builds else { return }
    let script = #"usdt:BIN::ints { printf("%d\n", arg0); }"#.replacing("BIN", with: builds.binary)
    try expectSameOutputAsBpftrace(["-c", "\(builds.binary) 2"], script)
    let ours = scry("-c", "\(builds.binary) 2", "-e", script)
    #expect(ours.status == 0 && ours.stdout.contains("-1\n-2\n"), "\(ours.stdout)\(ours.stderr)")
    let unnamed = scry("--dry-run", "-e", "usdt:\(builds.binary)::{ exit(); }")
    #expect(unnamed.status == 1 && unnamed.stderr.contains("expected usdt:BINARY:[PROVIDER:]NAME"), "\(unnamed.stderr)")
  }

  /// `-l '*:FILE:*'` lists the file's functions and its USDT probes; `-l -p PID` the process's
  /// functions, then the USDT probes of the files it maps, as bpftrace lists them.
  @Test func listingEveryProviderIncludesUSDTProbes() throws {
    guard kernelAvailable("usdt"), let builds = USDTTests.builds else { return }
    let file = scry("-l", "*:\(builds.binary):*")
    #expect(file.status == 0, "\(file.stderr)")
    #expect(file.stdout.contains("uprobe:\(builds.binary):main\n"), "\(file.stdout)")
    #expect(file.stdout.contains("usdt:\(builds.binary):scry:ints\n"), "\(file.stdout)")
    let target = try #require(TargetProcess(builds.binary, ["0"]))
    defer { target.stop() }
    let process = scry("-l", "-p", "\(target.pid)")
    #expect(process.status == 0, "\(process.stderr)")
    let lines = process.stdout.split(separator: "\n")
    #expect(lines.contains { $0.hasPrefix("uprobe:/proc/\(target.pid)/root") && $0.hasSuffix(":main") }, "\(process.stdout)")
    #expect(lines.contains("usdt:/proc/\(target.pid)/root\(builds.binary):scry:ints"), "\(process.stdout)")
  }

  /// `++` and `--` on a map holding a pointer step by whole pointees, as `+ 1` does.
  @Test func pointerMapsStepByTheirPointee() throws {
    let script = "BEGIN { @a = (int16 *) 32; @a++; @b = (int32 *) 32; @b--; @c = (uint64 *) 32; ++@c; @d = (int8 *) 32; @d++; @n = 5; @n++; exit(); }"
    try expectSameOutputAsBpftrace([], script)
    let ours = scry("-e", script)
    #expect(ours.stdout.contains("@a: 34\n@b: 28\n@c: 40\n@d: 33\n@n: 6\n"), "\(ours.stdout)\(ours.stderr)")
  }
}
