/// One problem found in a script: where, what, and what to do about it.
/// Diagnostics are values; only `DiagnosticRenderer` knows how they look on a terminal.
public struct Diagnostic: Sendable, Equatable {
  public enum Severity: String, Sendable { case error, warning }

  /// A secondary location that explains the main one ("'x' got its type here").
  public struct Note: Sendable, Equatable {
    public var span: SourceSpan
    public var message: String
    public init(span: SourceSpan, message: String) {
      self.span = span
      self.message = message
    }
  }

  public var severity: Severity
  public var span: SourceSpan
  public var message: String
  public var notes: [Note]
  public var hint: String?

  public init(
    _ severity: Severity = .error, span: SourceSpan, message: String, notes: [Note] = [], hint: String? = nil
  ) {
    self.severity = severity
    self.span = span
    self.message = message
    self.notes = notes
    self.hint = hint
  }

  public static func error(_ span: SourceSpan, _ message: String, hint: String? = nil, notes: [Note] = [])
    -> Diagnostic
  {
    Diagnostic(.error, span: span, message: message, notes: notes, hint: hint)
  }

  public static func warning(_ span: SourceSpan, _ message: String, hint: String? = nil) -> Diagnostic {
    Diagnostic(.warning, span: span, message: message, hint: hint)
  }
}

extension Array where Element == Diagnostic {
  public var hasErrors: Bool { contains { $0.severity == .error } }
}
