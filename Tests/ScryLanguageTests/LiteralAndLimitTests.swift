import Testing
@testable import ScryLanguage

/// bpftrace's scientific integer literals, the nesting caps and empty programs.
@Suite struct LiteralAndLimitTests {
  @Test(arguments: [
    ("1e6", UInt64(1_000_000)), ("5e3", 5000), ("1E3", 1000), ("0e3", 0), ("1e0", 1), ("07e2", 700),
    ("1e1_0", 10_000_000_000), ("9e16", 90_000_000_000_000_000), ("1_000_000", 1_000_000), ("1__0", 10),
    ("0x1e3", 0x1e3), ("010", 8),
  ])
  func integerLiterals(_ text: String, _ value: UInt64) {
    #expect(IntegerLiteral.value(of: text) == .success(value), "\(text)")
  }

  @Test func scientificLiteralsRefusedAsBpftraceRefusesThem() {
    #expect(IntegerLiteral.value(of: "10e2") == .failure(.coefficient(10)))
    #expect(IntegerLiteral.value(of: "1_0e3") == .failure(.coefficient(10)))
    #expect(IntegerLiteral.value(of: "1e17") == .failure(.exponent(17)))
    #expect(IntegerLiteral.value(of: "1e19") == .failure(.exponent(19)))
    #expect(IntegerLiteral.value(of: "1e") == .failure(.malformed))
    #expect(IntegerLiteral.value(of: "08") == .failure(.malformed))
  }

  @Test func literalErrorsAreLocated() {
    for (text, message) in [
      ("10e2", "the part before 'e' in '10e2' must be one digit"), ("1e17", "the exponent of '1e17' is 17"),
      ("1.5e3", "'1.5e3' is not an integer"), ("1.5", "'1.5' is not an integer"),
    ] {
      let checked = compile("BEGIN { @x = \(text); }")
      let first = checked.diagnostics.first { $0.severity == .error }
      #expect(first?.message.contains(message) == true, "\(rendered(checked))")
      #expect(first?.span.start == 13, "\(text)")
    }
  }

  @Test func scientificLiteralChecks() {
    let checked = compile("BEGIN { @x = 1e6; @y = 5e3 + 1; }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
  }

  @Test func relativeUprobePathParses() {
    let (program, diagnostics) = Parser.parse(SourceFile(name: "t", text: "uprobe:bin/prog:f /pid > 0/ { } ur:lib/x.so:g { }"))
    #expect(!diagnostics.hasErrors, "\(diagnostics)")
    #expect(program.probes.map { $0.specs[0].parts } == [["bin/prog", "f"], ["lib/x.so", "g"]])
    #expect(program.probes[0].predicate != nil)
  }

  // The checker recurses over the tree with ~10 KiB of stack per level in a debug build, more than a
  // test thread has for 1,000 levels; these parse only. The CLI tests run them end to end.
  @Test func hundredNestedParenthesesParse() {
    let text = "BEGIN { @x = " + String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100) + "; }"
    #expect(!Parser.parse(SourceFile(name: "t", text: text)).diagnostics.hasErrors)
  }

  @Test func thousandOperatorChainParses() {
    let text = "BEGIN { @x = 1" + String(repeating: " + 1", count: 1000) + "; }"
    #expect(!Parser.parse(SourceFile(name: "t", text: text)).diagnostics.hasErrors)
  }

  @Test(arguments: [
    "BEGIN { @x = " + String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000) + "; }",
    "BEGIN { @x = 1" + String(repeating: "+1", count: 100_000) + "; }",
    "BEGIN { @x = " + String(repeating: "-", count: 100_000) + "1; }",
    "BEGIN { @x = 1" + String(repeating: "?1:1", count: 100_000) + "; }",
    "BEGIN { " + String(repeating: "if (1) {} else ", count: 100_000) + "{} }",
    "BEGIN " + String(repeating: "{", count: 100_000) + String(repeating: "}", count: 100_000),
  ])
  func pathologicalNestingGivesOneLocatedError(_ text: String) {
    let (_, diagnostics) = Parser.parse(SourceFile(name: "t", text: text))
    let errors = diagnostics.filter { $0.severity == .error }
    #expect(!errors.isEmpty)
    #expect(errors.count <= 2, "\(errors.map(\.message))")
    #expect(errors[0].message.contains("too deeply") || errors[0].message.contains("too long"), "\(errors[0].message)")
  }

  @Test(arguments: ["", "   \n", "// only a comment\n", "/* block */", "#include <linux/sched.h>\n"])
  func emptyProgramIsAnError(_ text: String) {
    let checked = Frontend.compile(SourceFile(name: "e", text: text), catalog: RecordedCatalog(), requiresProbes: true)
    #expect(checked.diagnostics.first?.message == "the program has no probes")
    #expect(Frontend.compile(SourceFile(name: "e", text: text), catalog: RecordedCatalog()).diagnostics.isEmpty)
  }
}
