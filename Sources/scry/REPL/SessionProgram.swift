import ScryLanguage
import ScryPlan

/// The REPL session as a script: every probe block accepted so far, in order, each with whether
/// it is attached. New input is checked as one program with it, so map types come from the session.
struct SessionProgram {
  /// One accepted probe block.
  struct Block {
    var text: String
    /// The probe specs as written, for `.probes`.
    var specs: String
    var kind: ProbeKind?
    /// BEGIN blocks are never attached (they ran once); END blocks are while pending.
    var attached: Bool
  }

  var blocks: [Block] = []
  /// The C the session declared (`struct Foo { int m; };`, `#define N 4`), in order: it comes
  /// before every block, so later entries can use its types.
  var declarations: [String] = []

  /// A SystemTap session's entries as typed (globals, functions, probes), in order: its script.
  /// (Its blocks are what they lowered to, which may be more than one per probe.)
  var systemTapEntries: [String] = []

  /// The session's language, from its first entry that joined it; nil while it has none. The
  /// other language's blocks cannot join: the two name globals apart (`count` is `@count`).
  var language: ScriptLanguage? {
    if !systemTapEntries.isEmpty { return .systemTap }
    return blocks.isEmpty && declarations.isEmpty ? nil : .bpftrace
  }

  /// The text `.save` writes: a script that `scry FILE.trace` (or `FILE.stp`) runs.
  var scriptText: String {
    if language == .systemTap { return systemTapEntries.map { $0 + "\n" }.joined() }
    return declarations.map { $0 + "\n" }.joined() + blocks.map { $0.text + "\n" }.joined()
  }
  var attachedFlags: [Bool] { blocks.map(\.attached) }
  var pendingEndBlocks: [Int] { blocks.indices.filter { blocks[$0].attached && blocks[$0].kind == .end } }
  var hasAttachedBlocks: Bool { blocks.contains { $0.attached } }

  /// The outcome of checking an entry against the session.
  struct Checked {
    var checked: CheckedProgram
    /// The whole program's source; the entry starts at `entryStart` in it.
    var source: SourceFile
    var entryStart: Int
    var entry: String
    var language = ScriptLanguage.bpftrace
  }

  /// Checks probe blocks typed at the prompt, appended to the session's program.
  func check(
    blocks entry: String, language: ScriptLanguage = .bpftrace, catalog: any ProbeCatalog, positionals: [String], options: CheckOptions
  ) -> Checked {
    let prefix = scriptText
    let source = SourceFile(name: "session", text: prefix + entry)
    let checked = Frontend.compile(
      source, catalog: catalog, positionals: positionals, options: options, language: language, isSession: language == .systemTap)
    return Checked(checked: checked, source: source, entryStart: prefix.utf8.count, entry: entry, language: language)
  }

  /// A statement typed in a SystemTap session: the body of a `probe begin` appended to it.
  func checkSystemTap(statement entry: String, catalog: any ProbeCatalog, positionals: [String], options: CheckOptions) -> Checked {
    let prefix = scriptText + "probe begin {\n"
    let source = SourceFile(name: "session", text: prefix + entry + "\n}\n")
    let checked = Frontend.compile(
      source, catalog: catalog, positionals: positionals, options: options, language: .systemTap, isSession: true)
    return Checked(checked: checked, source: source, entryStart: prefix.utf8.count, entry: entry, language: .systemTap)
  }

  /// The block a statement that creates a map joins the session as.
  func beginBlock(_ statement: String) -> String {
    language == .systemTap ? "probe begin {\n" + statement + "\n}" : "BEGIN {\n" + statement + "\n}"
  }

  /// Checks a statement typed at the prompt as the body of a BEGIN block appended to the session's
  /// program. A bare expression (`@m`, `1 + 2`) is printed: it becomes `print(…)`.
  func check(statement entry: String, catalog: any ProbeCatalog, positionals: [String], options: CheckOptions)
    -> Checked
  {
    if language == .systemTap { return checkSystemTap(statement: entry, catalog: catalog, positionals: positionals, options: options) }
    let prefix = scriptText + "BEGIN {\n"
    var opening = ""
    var closing = ""
    if Self.isBareExpression(prefix + entry + "\n}\n", block: blocks.count) {
      opening = "print("
      closing = ")"
    }
    let source = SourceFile(name: "session", text: prefix + opening + entry + closing + "\n}\n")
    let checked = Frontend.compile(source, catalog: catalog, positionals: positionals, options: options)
    return Checked(checked: checked, source: source, entryStart: (prefix + opening).utf8.count, entry: entry)
  }

  /// A single expression statement with no effect of its own: a value to show.
  private static func isBareExpression(_ text: String, block: Int) -> Bool {
    let (program, diagnostics) = Parser.parse(SourceFile(name: "session", text: text))
    guard !diagnostics.hasErrors, block < program.probes.count else { return false }
    let statements = program.probes[block].body.statements
    guard statements.count == 1, case .expression(let e) = statements[0].kind else { return false }
    switch e.kind {
    case .call, .update, .missing: return false
    default: return true
    }
  }

  /// The C declarations the entry added, as text.
  func newDeclarations(in result: Checked) -> [String] {
    result.checked.program.declarations.filter { $0.start >= UInt32(result.entryStart) }.map { result.source.text(of: $0) }
  }

  /// The probe blocks the entry added to the checked program, as session blocks.
  func newBlocks(in result: Checked) -> [Block] {
    let program = result.checked.program
    return program.probes.indices.dropFirst(blocks.count).map { index in
      let probe = program.probes[index]
      let kind = result.checked.probes.indices.contains(index) ? result.checked.probes[index].first?.kind : nil
      return Block(
        text: result.source.text(of: probe.span), specs: probe.specs.map(\.text).joined(separator: ","),
        kind: kind ?? probe.specs.first.flatMap { ProbeKind(provider: $0.provider) }, attached: true)
    }
  }

  /// Diagnostics of an entry, with carets pointing into the text the user typed. Warnings about
  /// earlier blocks (already shown when they were entered) are left out.
  static func render(_ diagnostics: [Diagnostic], of result: Checked, renderer: DiagnosticRenderer) -> String {
    let start = UInt32(result.entryStart)
    let end = start + UInt32(result.entry.utf8.count)
    let entrySource = SourceFile(name: "repl", text: result.entry)
    func inEntry(_ span: SourceSpan) -> Bool { span.start >= start && span.end <= end }
    func shifted(_ span: SourceSpan) -> SourceSpan { SourceSpan(start: span.start - start, end: span.end - start) }
    var out = ""
    for diagnostic in diagnostics.prefix(20) {
      let spans = [diagnostic.span] + diagnostic.notes.map(\.span)
      if spans.allSatisfy(inEntry) {
        var moved = diagnostic
        moved.span = shifted(diagnostic.span)
        moved.notes = diagnostic.notes.map { Diagnostic.Note(span: shifted($0.span), message: $0.message) }
        out += renderer.render(moved, in: entrySource)
      } else if diagnostic.severity == .error || inEntry(diagnostic.span) {
        out += renderer.render(diagnostic, in: result.source)
      }
    }
    return out
  }
}
