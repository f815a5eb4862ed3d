/// The language a script is written in: both lower into the same `Program`.
public enum ScriptLanguage: String, Sendable, CaseIterable {
  case bpftrace
  case systemTap = "stap"

  /// A `.stp` file, or a program whose first word is SystemTap's `probe`, `global` or `function`
  /// (the card's `PROBE < … >` notation starts with the probe spec, never with these words).
  public static func detect(_ source: SourceFile, path: String?) -> ScriptLanguage {
    if let path, path.hasSuffix(".stp") { return .systemTap }
    var lexer = StapLexer(bytes: source.bytes)
    // A `#!` line is a comment to SystemTap's lexer too.
    let first = lexer.next()
    guard first.kind == .identifier else { return .bpftrace }
    let word = source.text(of: first.span)
    guard ["probe", "global", "function"].contains(word) else { return .bpftrace }
    // Followed by a name (`probe begin`, `global n`, `function f`), the word is SystemTap's keyword.
    return lexer.next().kind == .identifier ? .systemTap : .bpftrace
  }
}
