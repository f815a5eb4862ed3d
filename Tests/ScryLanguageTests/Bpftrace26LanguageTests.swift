import Testing
@testable import ScryLanguage

/// bpftrace 0.20–0.26's language: config blocks, map declarations, macros, block and `if`
/// expressions, durations, builtins as calls. Each refusal is checked for its place and hint.
@Suite struct Bpftrace26LanguageTests {
  @Test(arguments: [
    ("1ns", UInt64(1)), ("5us", 5_000), ("100ms", 100_000_000), ("2s", 2_000_000_000), ("1m", 60_000_000_000),
    ("1h", 3_600_000_000_000), ("1d", 86_400_000_000_000), ("1_000ms", 1_000_000_000), ("0x1d", 0x1d),
  ])
  func durationLiterals(_ text: String, _ value: UInt64) {
    #expect(IntegerLiteral.value(of: text) == .success(value), "\(text)")
  }

  @Test func durationOverflowIsRefused() {
    #expect(IntegerLiteral.value(of: "300000000d") == .failure(.tooLarge))
  }

  static let valid: [String] = [
    "config = { max_map_keys = 10; stack_mode = perf } BEGIN { @[kstack] = count(); }",
    "config = { BPFTRACE_MAX_STRLEN = 32; STACK_MODE = raw; print_maps_on_exit = false; unstable_macro = enable; } BEGIN { }",
    "let @a = hash(100); let @b = lruhash(2); BEGIN { @a[1] = 1; @b = count(); }",
    "macro add_one(x) { x + 1 } BEGIN { @x = add_one(add_one(1)); }",
    "BEGIN { print(add(1, 2)); } macro add(a, b) { a + b }",
    "macro set(@m, $v) { @m[$v] = $v; } BEGIN { $k = 1; set(@map, $k); }",
    "BEGIN { $x = if (pid > 1) { 2 } else { 3 }; $y = { let $a = 1; $a + 1 }; _ = $x + $y; }",
    "BEGIN { let $x: int64 = 5; let $s: string; $s = \"a\"; }",
    "BEGIN { if (pid() > 0 && comm() != \"\" && ncpus >= 1 && nsecs(monotonic) > 0) { } }",
    "BEGIN { @c = count(); if (@c > 10) { printf(\"%d\\n\", @c + 1); } }",
    "BEGIN { $t = (1, \"a\"); print($t[1]); printf(\"%d\\n\", $t[0]); }",
    "interval:1s { exit(); }",
    // Hygiene: the body's `$t` is not the caller's string `$t`.
    "macro m() { $t = 5; $t } BEGIN { $t = \"s\"; $a = m(); printf(\"%s %d\\n\", $t, $a); }",
  ]

  @Test(arguments: valid)
  func newerFormsCheck(_ text: String) {
    let checked = compile(text)
    #expect(!checked.diagnostics.hasErrors, "\(text)\n\(rendered(checked))")
  }

  /// Each refusal: the script, the text its error must contain, the source text under its caret,
  /// and a word of its hint or note.
  static let refused: [(String, String, String, String)] = [
    ("config = { max_map_key = 2 } BEGIN { }", "unknown config variable 'max_map_key'", "max_map_key", "max_map_keys"),
    ("config = { stack_mode = fast } BEGIN { }", "not a value for 'stack_mode'", "fast", "perf"),
    ("config = { max_strlen = 500 } BEGIN { }", "from 1 to 200", "500", ""),
    ("config = { missing_probes = maybe } BEGIN { }", "not a value for 'missing_probes'", "maybe", "warn"),
    ("config = { str_trunc_trailer = \"..\" } BEGIN { }", "not supported", "\"..\"", "trailer"),
    ("let @a = btree(10); BEGIN { @a = 1; }", "unknown map kind 'btree'", "btree", "hash"),
    ("let @a = hash(); BEGIN { @a = 1; }", "one argument", "hash()", "hash(1024)"),
    ("macro f(x) { f(x) } BEGIN { @a = f(1); }", "calls itself", "f(x)", "recursive"),
    ("macro g() { @x++ } BEGIN { g(); }", "not one of its parameters", "@x", "macro g(…, @x)"),
    ("macro h($v) { $v++ } BEGIN { h(1 + 1); }", "takes a scratch variable", "1 + 1", "sigil"),
    ("macro k(a, b) { a + b } BEGIN { @x = k(1); }", "takes 2 arguments, not 1", "k(1)", "k(a, b)"),
    ("macro m(x) { x + \"s\" } BEGIN { @x = m(1); }", "'+' needs integers", "\"s\"", "expansion of macro 'm'"),
    ("macro m(x) { $u + x } BEGIN { $a = m(1); }", "undefined variable '$u (in macro m)'", "$u", "expansion of macro 'm'"),
    ("BEGIN { $x = if (1) { 2 }; }", "needs an 'else'", "if (1) { 2 }", "else"),
    ("BEGIN { $x = { $y = 1; }; }", "has no value", "{ $y = 1; }", "no ';'"),
    ("BEGIN { $x = { return; 1 }; }", "'return' inside a block", "return", "outside"),
    ("BEGIN { @t = tseries(1, 1s, 5); }", "not supported by Scry", "tseries", "hist"),
    ("BEGIN { @t = nsecs(boot); }", "not supported by Scry", "nsecs", "CLOCK_MONOTONIC"),
    ("BEGIN { $t = (1, 2); $i = 0; print($t[$i]); }", "must be a literal", "$i", "$t.0"),
  ]

  @Test(arguments: refused)
  func refusalsAreLocated(_ script: String, _ message: String, _ under: String, _ help: String) throws {
    let checked = compile(script)
    let diagnostic = try #require(checked.diagnostics.first { $0.message.contains(message) }, "\(script)\n\(rendered(checked))")
    #expect(checked.program.source.text(of: diagnostic.span) == under, "\(script)\n\(rendered(checked))")
    let help_ = (diagnostic.hint ?? "") + diagnostic.notes.map(\.message).joined()
    #expect(help.isEmpty || help_.contains(help), "\(script)\n\(rendered(checked))")
  }

  @Test func configReachesTheCheckedProgram() {
    let checked = compile("config = { max_map_keys = 7; print_maps_on_exit = false; max_cat_bytes = 99 } BEGIN { @[kstack] = count(); }")
    #expect(checked.config.numbers[.mapKeysMax] == 7)
    #expect(checked.config.numbers[.catBytesMax] == 99)
    #expect(checked.config.printsMapsOnExit == false)
    let perf = compile("config = { stack_mode = perf } BEGIN { @[kstack] = count(); @[ustack(3)] = count(); }")
    let stacks = perf.types.compactMap { type -> StackType? in
      if case .stack(let stack) = type { return stack }
      return nil
    }
    #expect(!stacks.isEmpty && stacks.allSatisfy { $0.mode == .perf })
  }

  @Test func environmentSettingsWinOverTheConfigBlock() {
    var options = CheckOptions()
    options.environmentSettings = [.mapKeysMax]
    let checked = Frontend.compile(
      SourceFile(name: "t", text: "config = { max_map_keys = 7 } BEGIN { }"), catalog: RecordedCatalog(), options: options)
    #expect(checked.config.numbers[.mapKeysMax] == nil)
  }

  @Test func mapDeclarationsBoundTheirMaps() {
    let checked = compile("let @a = lruhash(3); let @b = hash(9); BEGIN { @a[1] = 1; }")
    #expect(checked.map(named: "@a")?.maxEntries == 3)
    #expect(checked.diagnostics.contains { $0.message.contains("'@b' is declared but never assigned") })
  }

  @Test func macroArgumentsAreParsedAtEachUse() {
    // `x` used twice: two nodes, as bpftrace inserts the expression at each use.
    let checked = compile("macro twice(x) { x + x } BEGIN { @a = twice(@n++); }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
    var updates = 0
    for probe in checked.program.probes {
      probe.forEachExpression { if case .update = $0.kind { updates += 1 } }
    }
    #expect(updates == 2)
  }

  @Test func doublingMacrosStopAtTheExpansionCapWithOneError() {
    var text = ""
    for i in 0..<30 { text += "macro m\(i)(x) { m\(i + 1)(x) + m\(i + 1)(x) }\n" }
    text += "macro m30(x) { x }\nBEGIN { @a = m0(1); }"
    let checked = compile(text)
    #expect(checked.diagnostics.filter { $0.message.contains("too many macro expansions") }.count == 1)
  }

  @Test func deepMacroNestingIsCapped() {
    var text = ""
    for i in 0..<80 { text += "macro m\(i)(x) { m\(i + 1)(x) }\n" }
    text += "macro m80(x) { x }\nBEGIN { @a = m0(1); }"
    let checked = compile(text)
    #expect(checked.diagnostics.contains { $0.message.contains("too many macro expansions") })
  }
}
