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
