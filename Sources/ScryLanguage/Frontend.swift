/// The whole front end in one call: parse, then check if parsing found no errors.
public enum Frontend {
  /// `requiresProbes`: a program without a probe (empty, or only comments and `#include` lines) is an
  /// error, as bpftrace refuses it, rather than a run that waits for nothing until Ctrl-C. The REPL,
  /// which checks one entry at a time, leaves it off.
  public static func compile(
    _ source: SourceFile, catalog: any ProbeCatalog, positionals: [String] = [], options: CheckOptions = CheckOptions(),
    requiresProbes: Bool = false
  ) -> CheckedProgram {
    let (program, diagnostics) = Parser.parse(source)
    var parseDiagnostics = diagnostics
    if requiresProbes && program.probes.isEmpty && !parseDiagnostics.hasErrors {
      parseDiagnostics.append(
        .error(
          .at(0), "the program has no probes",
          hint: "a program is a list of probes such as 'BEGIN { printf(\"hello\\n\"); }'"))
    }
    if parseDiagnostics.hasErrors {
      var result = CheckedProgram(program: program)
      result.diagnostics = parseDiagnostics
      return result
    }
    var declarations = CDeclarations()
    if !program.declarations.isEmpty || !options.forcedIncludes.isEmpty {
      let (read, diagnostics) = CDeclarationParser.parse(
        source, spans: program.declarations, includeDirectories: options.includeDirectories,
        forcedIncludes: options.forcedIncludes)
      declarations = read
      parseDiagnostics += diagnostics
      // A declaration that could not be read would only come back as every use of its types.
      if parseDiagnostics.hasErrors {
        var result = CheckedProgram(program: program)
        result.diagnostics = parseDiagnostics
        return result
      }
    }
    var checked = Checker.check(
      program, catalog: catalog, positionals: positionals, options: options, declarations: declarations)
    checked.diagnostics = parseDiagnostics + checked.diagnostics
    return checked
  }
}
