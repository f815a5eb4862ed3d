import ScryKernel

/// Uprobes and kprobes outlive the process that made them in tracefs; each carries its owner's
/// pid, so every run removes those left by Scry runs that did not end cleanly (killed with
/// SIGKILL, say), whatever it traces itself. A live Scry's events are never touched.
enum StaleProbeCleanup {
  /// Removes the dead runs' probes and says which on stderr. Without tracefs (no root, a BEGIN-only
  /// run on a machine without it) there is nothing this run could have cleaned.
  static func removeLeftovers() {
    guard let tracefs = try? TraceFS.locate() else { return }
    let stale = DynamicEvents.removeStale(tracefs: tracefs)
    if !stale.isEmpty {
      printToStandardError(
        "Removed probes left in tracefs by Scry runs that did not end cleanly: \(stale.joined(separator: ", "))\n")
    }
  }
}
