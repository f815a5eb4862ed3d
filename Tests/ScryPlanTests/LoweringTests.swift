import Testing
import ScryLanguage
@testable import ScryPlan

/// The action IR of representative programs, as `--plan` prints it.
@Suite struct LoweringTests {
  func actions(_ text: String, positionals: [String] = [], unsafe: Bool = false) throws -> [String] {
    let checked = Frontend.compile(
      SourceFile(name: "t", text: text), catalog: PlanCatalog(), positionals: positionals,
      options: CheckOptions(allowsUnsafe: unsafe))
    try #require(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source))")
    let plan = try Planner.plan(checked)
    let printer = IRPrinter(maps: plan.maps)
    return plan.actions.flatMap { printer.render($0).split(separator: "\n").map(String.init) }
  }

  func refusal(_ text: String) throws -> [Diagnostic] {
    let checked = Frontend.compile(SourceFile(name: "t", text: text), catalog: PlanCatalog())
    try #require(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source))")
    do {
      _ = try Planner.plan(checked)
      Issue.record("planned, but should have been refused: \(text)")
      return []
    } catch {
      return error.diagnostics
    }
  }

  @Test(arguments: [
    ("1 + 2 * 3", "(add 1 (mul 2 3))"),
    ("(1 + 2) * 3", "(mul (add 1 2) 3)"),
    ("1 - 2 - 3", "(sub (sub 1 2) 3)"),
    ("1 << 2 + 3", "(shl 1 (add 2 3))"),
    ("1 | 2 ^ 3 & 4", "(or 1 (xor 2 (and 3 4)))"),
    ("1 < 2 == 3 > 4", "(eq (lt 1 2) (gt 3 4))"),
    ("-1 < 0", "(lt (negate 1) 0)"),
    // `!` gives an unsigned integer in bpftrace, so the sum is unsigned.
    ("!1 + ~2", "(addu (not 1) (bitNot 2))"),
    ("1 ? 2 : 3 + 4", "(? 1 2 (add 3 4))"),
  ])
  func operatorPrecedence(source: String, expected: String) throws {
    let lines = try actions("BEGIN { $x = \(source); }")
    #expect(lines == ["var+0 = \(expected)"])
  }

  @Test func logicalOperatorsShortCircuit() throws {
    // `||` binds looser than `&&`; both are their own nodes, which evaluate the right side only when needed.
    let lines = try actions("BEGIN { $x = 1 || 0 && @y[2]; @y[1] = 1; }")
    #expect(lines.first == "var+0 = (|| 1 (&& 0 @y[2:int64]))")
  }

  @Test func mapsAreSlotsAndFieldsAreOffsets() throws {
    let lines = try actions(
      "tracepoint:sched:sched_switch /args.prev_pid > 100/ { @by[args.prev_comm, cpu] = count(); @sum += args.prev_pid; }")
    #expect(
      lines == [
        "predicate (gt records32+24 100)",
        "@by[record.chars16+8, cpu:uint64] = count()",
        "eval (pre-add @sum records32+24)",
      ])
  }

  @Test func unsignedOperandsCompareUnsigned() throws {
    let lines = try actions("BEGIN { $a = (uint32)1; $b = (uint64)2; $x = $a < $b; }")
    #expect(lines.last == "var+16 = (ltu var+0 var+8)")
  }

  @Test func controlFlowNests() throws {
    let lines = try actions("BEGIN { $i = 0; while ($i < 3) { if ($i == 1) { break; } else { $i++; } } unroll(2) { exit(); } }")
    #expect(
      lines == [
        "var+0 = 0", "while (lt var+0 3)", "  if (eq var+0 1)", "    breakLoop", "  else", "    eval (post-add var+0 1)",
        "unroll 2", "  exit",
      ])
  }

  @Test(arguments: [
    ("010", "8"), ("0775", "509"), ("0x10", "16"), ("-0x10", "-16"), (" 5", "5"), ("-5", "-5"),
  ])
  func positionalParametersReadAsBpftraceReadsThem(text: String, value: String) throws {
    let lines = try actions("BEGIN { printf(\"%d\\n\", $1); }", positionals: [text])
    #expect(lines == ["print \"%d\\n\" \(value):int64"])
  }

  @Test func missingPositionalIsZeroOrEmpty() throws {
    let lines = try actions("BEGIN { printf(\"%d [%s]\\n\", $2 + 1, str($2)); }", positionals: ["7"])
    #expect(lines == ["print \"%d [%s]\\n\" (add 0 1):int64 \"\""])
  }

  @Test func signalNamesAreNumbersInThePlan() throws {
    let lines = try actions("tracepoint:sched:sched_switch { signal(\"SIGWINCH\"); signal(\"KILL\"); signal(10); }", unsafe: true)
    #expect(lines == ["signal 28", "signal 9", "signal 10"])
  }

  @Test(arguments: [
    ("struct T { int pid; }; BEGIN { @t = (struct T *)curtask; } END { @x = @t->pid; }", "reads memory at the event"),
    ("tracepoint:sched:sched_switch { @x = *(uint32 *)args.prev_pid; }", "reads memory at the event"),
    ("uprobe:/bin/app:target { @p = (int32 *)arg0; } uretprobe:/bin/app:target { @x = *@p; }", "reads memory at the event"),
    ("tracepoint:sched:sched_switch { @x = jiffies; }", "cannot be evaluated"),
  ])
  func whatTheRuntimeCannotEvaluateIsRefusedWithItsSpan(source: String, words: String) throws {
    let diagnostics = try refusal(source)
    #expect(diagnostics.count >= 1)
    let first = try #require(diagnostics.first)
    #expect(first.message.contains(words), "\(first.message)")
    #expect(first.span.end > first.span.start)
  }
}
