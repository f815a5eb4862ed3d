import Testing
import ScryLanguage
@testable import ScryPlan

/// bpftrace 0.17's integer signedness in the checker's types and the IR's operations, and
/// SystemTap's signed longs, which keep signed division.
@Suite struct IntegerSignTests {
  func compiled(_ text: String, language: ScriptLanguage = .bpftrace) throws -> (CheckedProgram, [String]) {
    let name = language == .systemTap ? "t.stp" : "t.bt"
    let checked = Frontend.compile(SourceFile(name: name, text: text), catalog: PlanCatalog(), language: language)
    try #require(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source))")
    let plan = try Planner.plan(checked)
    let printer = IRPrinter(maps: plan.maps)
    return (checked, plan.actions.flatMap { printer.render($0).split(separator: "\n").map(String.init) })
  }

  /// The IR of `$r = source` after `$a` (int64, -7) and `$u` (uint64, 5) are set, and the type `$r` gets.
  func lowered(_ source: String) throws -> (String, ScryType) {
    let (checked, lines) = try compiled("BEGIN { $a = -7; $u = (uint64)5; $r = \(source); }")
    return (try #require(lines.last), checked.variableTypes[2])
  }

  @Test(arguments: [
    // Division, remainder and right shift are unsigned whatever the operands; the type is signed
    // only when both operands are (the left one's for shifts).
    ("$a / 2", "(divu var+0 2)", ScryType.int64),
    ("$a % 3", "(modu var+0 3)", .int64),
    ("-8 >> 1", "(shru (negate 8) 1)", .int64),
    ("$u >> 1", "(shru var+8 1)", .uint64),
    ("$a << 1", "(shl var+0 1)", .int64),
    ("$u << 1", "(shlu var+8 1)", .uint64),
    ("3 << $u", "(shl 3 var+8)", .int64),
    // Ordering is signed only between signed operands; the result takes that sign too.
    ("$a < $u", "(ltu var+0 var+8)", .uint64),
    ("$a < 3", "(lt var+0 3)", .int64),
    ("$a == $a", "(eq var+0 var+0)", .int64),
    ("$u - 10", "(subu var+8 10)", .uint64),
    ("$a - 10", "(sub var+0 10)", .int64),
    ("$a * $u", "(mulu var+0 var+8)", .uint64),
    ("!$a", "(not var+0)", .uint64),
    ("-$u", "(negate var+8)", .uint64),
    ("0 ? -5 : $u - 10", "(? 0 (negate 5) (subu var+8 10))", .int64),
  ])
  func bpftraceRules(source: String, ir: String, type: ScryType) throws {
    let (line, resultType) = try lowered(source)
    #expect(line == "var+16 = \(ir)")
    #expect(resultType == type)
  }

  /// `-(uint32)3` keeps the operand's 32 bits, as bpftrace's 4294967293.
  @Test func negationKeepsANarrowOperandsType() throws {
    let (line, type) = try lowered("-(uint32)3")
    #expect(line.hasPrefix("var+16 = (uint32 (negate"), "\(line)")
    #expect(!IntegerSigns.isSigned(type))
  }

  /// `x op= v` is `x = x op v`: division unsigned, the variable's or map's type kept.
  @Test func compoundAssignmentsDivideAndShiftUnsigned() throws {
    let (checked, lines) = try compiled("BEGIN { $x = -9; $x /= 2; $x >>= 1; $x %= 4; $x <<= 1; @p = (uint64)0; @p -= 3; @v = (uint64)0; @v--; @c++; }")
    #expect(Array(lines.dropFirst()) == [
      "eval (pre-divu var+0 2)", "eval (pre-shru var+0 1)", "eval (pre-modu var+0 4)", "eval (pre-shl var+0 1)",
      "@p = (uint64 0)", "eval (pre-subu @p 3)", "@v = (uint64 0)", "eval (post-subu @v 1)", "eval (post-add @c 1)",
    ])
    #expect(checked.map(named: "@p")?.valueType == .uint64)
    #expect(checked.map(named: "@v")?.valueType == .uint64)
    #expect(checked.map(named: "@c")?.valueType == .int64)
  }

  /// A variable or map keeps its first value's sign, as bpftrace does; SystemTap's merge signed.
  @Test func storedIntegersKeepTheFirstSign() throws {
    let (checked, _) = try compiled("BEGIN { @x = (uint64)0; @x = -1; $y = -1; $y = (uint64)0; $z = (uint64)0; $z = -1; }")
    #expect(checked.map(named: "@x")?.valueType == .uint64)
    #expect(checked.variableTypes == [.int64, .uint64])
  }

  /// bpftrace averages signed: `avg((uint64)-1)` is -1.
  @Test func averagesAreSigned() throws {
    let (checked, _) = try compiled("BEGIN { @v = avg((uint64)5); @s = stats((uint64)5); @m = sum((uint64)5); }")
    #expect(checked.map(named: "@v")?.valueType == .aggregate(.avg(isSigned: true)))
    #expect(checked.map(named: "@s")?.valueType == .aggregate(.stats(isSigned: true)))
    #expect(checked.map(named: "@m")?.valueType == .aggregate(.sum(isSigned: false)))
  }

  /// bpftrace's warnings, in its words; none for a non-negative literal, none in SystemTap.
  @Test func warningsAsBpftraceWordsThem() throws {
    func warnings(_ source: String, language: ScriptLanguage = .bpftrace) throws -> [String] {
      let program = language == .systemTap ? "probe begin { a = -7; r = \(source) }" : "BEGIN { $a = -7; $u = (uint64)5; @r = \(source); }"
      return try compiled(program, language: language).0.diagnostics.filter { $0.severity == .warning }.map(\.message)
    }
    #expect(try warnings("$a / 2") == ["signed operands for '/' can lead to undefined behavior (cast to unsigned to silence warning)"])
    #expect(try warnings("$u - $a") == ["arithmetic on integers of different signs: 'unsigned int64' and 'int64' can lead to undefined behavior"])
    #expect(try warnings("$a < $u") == ["comparison of integers of different signs: 'int64' and 'unsigned int64' can lead to undefined behavior"])
    #expect(try warnings("$u + 3").isEmpty)
    for quiet in ["10 / 2", "$u % 3", "$a >> $u", "$u < 3"] { #expect(try warnings(quiet).isEmpty, "\(quiet)") }
    #expect(try warnings("a / 2 + a % 3", language: .systemTap).isEmpty)
  }

  /// SystemTap's longs divide, take remainders, shift and compare signed.
  @Test func systemTapKeepsSignedLongs() throws {
    let (_, lines) = try compiled("global r; probe begin { a = -7; r = a / 2 + a % 3 + (a >> 1) + (a < 5) + !a - (-1 < 0); }", language: .systemTap)
    let text = lines.joined(separator: "\n")
    #expect(text.contains("(div "), "\(text)")
    #expect(text.contains("(mod "), "\(text)")
    #expect(text.contains("(shr "), "\(text)")
    #expect(text.contains("(lt "), "\(text)")
    #expect(!text.contains("divu") && !text.contains("modu") && !text.contains("shru") && !text.contains("ltu"), "\(text)")
  }
}
