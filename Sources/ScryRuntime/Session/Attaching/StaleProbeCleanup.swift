import ScryKernel

/// Uprobes and kprobes outlive the process that made them in tracefs; each carries its owner's
/// pid, so a run removes those left by Scry runs that did not end cleanly before making its own.
enum StaleProbeCleanup {
  /// Removes the dead runs' probes, says which on stderr, and returns this run's ledger.
  static func start(tracefs: TraceFS) -> DynamicEvents {
    let stale = DynamicEvents.removeStale(tracefs: tracefs)
    if !stale.isEmpty {
      printToStandardError(
        "Removed probes left in tracefs by Scry runs that did not end cleanly: \(stale.joined(separator: ", "))\n")
    }
    return DynamicEvents(tracefs: tracefs)
  }
}
