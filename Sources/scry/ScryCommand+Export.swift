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

  /// SIGHUP re-reads the script for an exporter running a script file (nothing to re-read for
  /// `-e` or stdin; `-c` and `-p` runs end with their process, so SIGHUP ends them as in bpftrace).
  var reloadsOnHangup: Bool {
    exports && e == nil && c == nil && p == nil && arguments.first.map { $0 != "-" } == true
  }

  /// Runs `first`, and on each SIGHUP reload the next program: the same exporters (the listener
  /// stays open), the maps' contents carried over by name and layout. A script that no longer
  /// compiles is reported and the previous program attached again. Returns the exit status.
  func runReloading(
    _ first: Session, options: SessionOptions, limits: TracingEnvironment, renderer: DiagnosticRenderer
  ) -> Int32 {
    var session = first
    var options = options
    options.appendsOutput = true
    while true {
      let status = session.run()
      guard session.endedForReload else { return status }
      printError("SIGHUP: re-reading \(arguments[0])")
      let plan = reloadedPlan(limits: limits, renderer: renderer) ?? session.plan
      do {
        let next = try Session(plan: plan, options: options)
        next.adoptMaps(from: session)
        next.services = session.services
        session = next
      } catch {
        printError("ERROR: cannot start the reloaded program: \(error)")
        return 1
      }
    }
  }

  /// The script compiled again, as `run()` compiles it; nil (diagnostics said) when it no longer compiles.
  func reloadedPlan(limits: TracingEnvironment, renderer: DiagnosticRenderer) -> Plan? {
    guard let (source, positionals) = try? readScript() else { return nil }
    let checked = LargeStack.run {
      Frontend.compile(
        source, catalog: TraceFSCatalog(targetPid: p), positionals: positionals,
        options: CheckOptions(
          allowsUnsafe: unsafe, stringCapacity: limits.stringLength, includeDirectories: includeDirectories,
          forcedIncludes: includes, tracedBinary: tracedBinary),
        requiresProbes: true)
    }
    if !checked.diagnostics.isEmpty { printError(renderer.render(Array(checked.diagnostics.prefix(20)), in: source), newline: false) }
    guard !checked.diagnostics.hasErrors else {
      printError("the previous program goes on")
      return nil
    }
    do {
      let plan = try Planner.plan(checked)
      guard plan.attachments.count <= limits.maxProbes else {
        printError("ERROR: the reloaded program attaches more than \(limits.maxProbes) probes; the previous program goes on")
        return nil
      }
      return plan
    } catch {
      printError(renderer.render(Array(error.diagnostics.prefix(20)), in: source), newline: false)
      printError("the previous program goes on")
      return nil
    }
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
