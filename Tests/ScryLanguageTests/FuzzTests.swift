import Testing
@testable import ScryLanguage

/// Random mutations of every script we have (examples, valid and broken test scripts) must give
/// diagnostics or a checked program, never a trap. The generator is seeded, so a failure reproduces.
@Suite struct FuzzTests {
  struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
  }

  static func corpus() -> [String] {
    var texts = FrontendTests.valid + Bpftrace26LanguageTests.valid + Bpftrace26LanguageTests.refused.map(\.0)
    let scripts = scriptsDirectory()
    for folder in ["valid", "broken"] {
      for name in listDirectory(scripts + "/" + folder) { if let t = readFile(scripts + "/" + folder + "/" + name) { texts.append(t) } }
    }
    let examples = scripts + "/../../../examples"
    for name in listDirectory(examples) where name.hasSuffix(".trace") {
      if let t = readFile(examples + "/" + name) { texts.append(t) }
    }
    return texts
  }

  static let alphabet = Array("{}()[]<>/;,:.@$#\"'\\*+-=!&|^~%?0123456789 \nabcxyz_ifwhileforletBEGINENDcountprintf".utf8)

  static func mutate(_ bytes: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
    var b = bytes
    for _ in 0...rng.below(4) {
      let i = rng.below(b.count + 1)
      switch rng.below(5) {
      case 0 where !b.isEmpty: b.remove(at: min(i, b.count - 1))
      case 1: b.insert(alphabet[rng.below(alphabet.count)], at: i)
      case 2 where b.count > 1:
        let j = rng.below(b.count)
        b.swapAt(min(i, b.count - 1), j)
      case 3 where !b.isEmpty:
        let j = rng.below(b.count)
        let (lo, hi) = (min(i, j), max(i, j))
        b.insert(contentsOf: b[lo..<min(hi, lo + 40)], at: rng.below(b.count + 1))
      default:
        if !b.isEmpty { b.removeSubrange(min(i, b.count - 1)..<min(b.count, i + rng.below(8) + 1)) }
      }
    }
    return b
  }

  @Test func mutationsNeverTrap() {
    var rng = SplitMix(state: 0x5C41)
    var withErrors = 0
    let corpus = Self.corpus()
    #expect(corpus.count > 80)
    for text in corpus {
      for _ in 0..<60 {
        let mutated = String(decoding: Self.mutate(Array(text.utf8), &rng), as: UTF8.self)
        let checked = compile(mutated, positionals: ["1", "two"])
        if checked.diagnostics.hasErrors {
          withErrors += 1
          // Rendering must work for every diagnostic, whatever its span.
          #expect(rendered(checked).contains(": error: "))
        }
      }
    }
    #expect(withErrors > 0)
  }

  @Test func pathologicalInputsGiveDiagnostics() {
    let inputs = [
      "BEGIN { @x = " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + "; }",
      "BEGIN { @x = " + String(repeating: "-", count: 5000) + "1; }",
      "BEGIN { @x = 1" + String(repeating: " + 1", count: 5000) + "; }",
      "BEGIN " + String(repeating: "{ if (1) ", count: 3000),
      String(repeating: "}", count: 1000), "\"", "/*", "@", "$", "BEGIN { $", "\u{0}\u{1}\u{FF}",
    ]
    for input in inputs {
      let checked = compile(input)
      #expect(checked.diagnostics.hasErrors, "\(input.prefix(40))")
    }
  }
}
