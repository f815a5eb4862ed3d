/// Hand-written recursive-descent parser for `Grammar/scry.ebnf`.
/// Never throws: missing pieces become `.missing` nodes plus a diagnostic, and parsing goes on.
public struct Parser {
  public static func parse(_ source: SourceFile) -> (program: Program, diagnostics: [Diagnostic]) {
    fatalError("parser not written yet")
  }
}
