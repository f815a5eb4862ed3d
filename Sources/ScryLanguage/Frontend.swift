/// The whole front end in one call: parse, read the script's C declarations, then check if
/// neither found errors.
public enum Frontend {
  /// `requiresProbes`: a program without a probe (empty, or only comments and `#include` lines) is an
  /// error, as bpftrace refuses it, rather than a run that waits for nothing until Ctrl-C. The REPL,
  /// which checks one entry at a time, leaves it off. `targetPid` is SystemTap's `-x PID`, what its
  /// `target()` reads (without it, `target()` is the `-c` child).
  public static func compile(
    _ source: SourceFile, catalog: any ProbeCatalog, positionals: [String] = [], options: CheckOptions = CheckOptions(),
    requiresProbes: Bool = false, language: ScriptLanguage = .bpftrace, targetPid: Int32? = nil, isSession: Bool = false
  ) -> CheckedProgram {
    let (parsed, parseDiagnostics) =
      language == .systemTap ? StapLowering.lower(source, catalog: catalog, targetPid: targetPid, positionals: positionals, isSession: isSession) : Parser.parse(source)
    let program = parseDiagnostics.hasErrors ? parsed : PointerStringMaps.rewrite(parsed)
    var diagnostics = parseDiagnostics
    // Only a script that carries C pays for reading it (and the system's headers).
    var declarations = CDeclarations()
    if !diagnostics.hasErrors && (!program.declarations.isEmpty || !options.forcedIncludes.isEmpty) {
      let (read, declarationDiagnostics) = CDeclarationParser.parse(
        source, spans: program.declarations, includeDirectories: options.includeDirectories,
        forcedIncludes: options.forcedIncludes, kernel: catalog)
      declarations = read
      diagnostics += declarationDiagnostics
    }
    if requiresProbes && program.probes.isEmpty && !diagnostics.hasErrors {
      diagnostics.append(
        .error(
          .at(0), "the program has no probes",
          hint: "a program is a list of probes such as 'BEGIN { printf(\"hello\\n\"); }'"))
    }
    // A declaration that could not be read would only come back as every use of its types.
    if diagnostics.hasErrors {
      var result = CheckedProgram(program: program)
      result.diagnostics = MacroExpansion.noting(program.macroExpansions, in: diagnostics)
      return result
    }
    var checked = Checker.check(
      program, catalog: catalog, positionals: positionals, options: options, declarations: declarations)
    checked.diagnostics = MacroExpansion.noting(program.macroExpansions, in: diagnostics + checked.diagnostics)
    return checked
  }
}
