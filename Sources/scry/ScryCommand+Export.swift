import ArgumentParser
import ScryExport
import ScryLanguage
import ScryPlan
import ScryRuntime

/// `--serve`, `--push` and `--otlp`: the maps as live metrics (see docs/export.md). Nothing here
/// runs, and ScryExport does no work, unless one of them is given.
extension ScryCommand {
  var exports: Bool { serve != nil || push != nil || otlp != nil }

  func validateExport() throws {
    guard exports else { return }
    if i || l { throw ValidationError("--serve, --push and --otlp export a running script: they take no -i or -l") }
  }

  /// How the maps will be exported, checked with the script (so `--dry-run` refuses a bad label
  /// annotation too); nil without an exporter.
  func exposition(_ plan: Plan, source: SourceFile, renderer: DiagnosticRenderer) throws -> Exposition? {
    guard exports else { return nil }
    return Exposition(labelNames: try labelNames(plan, source: source, renderer: renderer))
  }

  /// The exporters asked for, listening or ready before anything is attached; a problem is said
  /// and ends the run with status 1.
  func makeExporters(_ exposition: Exposition?) throws -> [any LoopService] {
    guard let exposition else { return [] }
    var services: [any LoopService] = []
    do {
      if let serve {
        let server = try MetricsServer(endpoint: try Endpoint.listening(serve), exposition: exposition)
        printError("Serving metrics at \(server.url)")
        services.append(server)
      }
      let report: (String) -> Void = { printError($0, newline: false) }
      if let push {
        services.append(
          try MetricsPusher(
            url: push, destination: .pushgateway, intervalSeconds: pushInterval, exposition: exposition, report: report))
      }
      if let otlp {
        services.append(
          try MetricsPusher(
            url: otlp, destination: .otlp, intervalSeconds: pushInterval, exposition: exposition, report: report))
      }
    } catch {
      printError("ERROR: " + error.description)
      throw ExitCode(1)
    }
    return services
  }

  /// `// scry:labels @map=name,…` comments, checked against the plan's maps.
  func labelNames(_ plan: Plan, source: SourceFile, renderer: DiagnosticRenderer) throws -> [String: [String]] {
    var names: [String: [String]] = [:]
    var diagnostics: [Diagnostic] = []
    for annotation in LabelAnnotation.find(in: source.bytes) {
      let keyCount = plan.maps.first { $0.name == annotation.map }?.keyTypes.count
      if let (message, hint) = annotation.problem(keyCount: keyCount) {
        diagnostics.append(.error(SourceSpan(start: annotation.start, end: annotation.end), message, hint: hint))
      } else {
        names[annotation.map] = annotation.labels
      }
    }
    if !diagnostics.isEmpty {
      printError(renderer.render(diagnostics, in: source), newline: false)
      throw ExitCode(1)
    }
    return names
  }
}
