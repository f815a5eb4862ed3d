/// Turns diagnostics into the text a user reads:
///
///     script.trace:3:12: error: unknown function 'prinf'
///         printf("%d\n", 1); prinf("x");
///                            ^~~~~
///         hint: did you mean 'printf'?
///
/// Columns count bytes; tabs in the source line are kept so the caret lines up under them.
public struct DiagnosticRenderer: Sendable {
  public var useColor: Bool

  public init(useColor: Bool = false) { self.useColor = useColor }

  public func render(_ diagnostics: [Diagnostic], in source: SourceFile) -> String {
    var out = ""
    for diagnostic in diagnostics { out += render(diagnostic, in: source) }
    return out
  }

  public func render(_ diagnostic: Diagnostic, in source: SourceFile) -> String {
    let label = diagnostic.severity == .error ? paint("error", "1;31") : paint("warning", "1;35")
    var out = excerpt(diagnostic.span, in: source, label: label, message: diagnostic.message)
    for note in diagnostic.notes {
      out += excerpt(note.span, in: source, label: paint("note", "1;36"), message: note.message)
    }
    if let hint = diagnostic.hint { out += "    " + paint("hint", "1;32") + ": " + hint + "\n" }
    return out
  }

  private func excerpt(_ span: SourceSpan, in source: SourceFile, label: String, message: String) -> String {
    let (location, lines) = site(span, in: source)
    return paint(location + ":", "1") + " \(label): \(message)\n" + lines
  }

  /// `file:line:column` of a span, and its source line with the caret under it.
  private func site(_ span: SourceSpan, in source: SourceFile) -> (location: String, excerpt: String) {
    let (line, column) = source.location(of: span.start)
    let text = source.line(line)
    // Caret under the span's first line, spaces (or tabs) up to it.
    let prefix = text.utf8.prefix(column - 1).map { $0 == 0x09 ? "\t" : " " }.joined()
    let (endLine, endColumn) = source.location(of: span.end)
    let width = endLine == line ? max(1, endColumn - column) : max(1, text.utf8.count - column + 1)
    let caret = "    " + prefix + paint("^" + String(repeating: "~", count: width - 1), "1;32") + "\n"
    return ("\(source.name):\(line):\(column)", "    " + text + "\n" + caret)
  }

  private func paint(_ text: String, _ code: String) -> String {
    useColor ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
  }
}
