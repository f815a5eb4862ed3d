/// Options that change what the checker accepts.
public struct CheckOptions: Sendable {
  /// `--unsafe`: allows `system()` and other functions with side effects outside Scry.
  public var allowsUnsafe: Bool
  public init(allowsUnsafe: Bool = false) { self.allowsUnsafe = allowsUnsafe }
}

/// Settles every type and name in a parsed program and reports every error it can find.
public struct Checker {
  public static func check(
    _ program: Program, catalog: any ProbeCatalog, positionals: [String] = [], options: CheckOptions = CheckOptions()
  ) -> CheckedProgram {
    fatalError("checker not written yet")
  }
}
