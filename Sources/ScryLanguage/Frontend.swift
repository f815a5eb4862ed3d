/// The whole front end in one call: parse, then check if parsing found no errors.
public enum Frontend {
  public static func compile(
    _ source: SourceFile, catalog: any ProbeCatalog, positionals: [String] = [], options: CheckOptions = CheckOptions()
  ) -> CheckedProgram {
    let (program, parseDiagnostics) = Parser.parse(source)
    if parseDiagnostics.hasErrors {
      var result = CheckedProgram(program: program)
      result.diagnostics = parseDiagnostics
      return result
    }
    var checked = Checker.check(program, catalog: catalog, positionals: positionals, options: options)
    checked.diagnostics = parseDiagnostics + checked.diagnostics
    return checked
  }
}
