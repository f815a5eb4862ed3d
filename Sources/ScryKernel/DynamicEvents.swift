import Glibc

/// The uprobes and kprobes one Scry run creates through tracefs (`uprobe_events`, `kprobe_events`).
///
/// Every event lives in a group named after the run's pid (`scry_4321`), so a run removes exactly
/// what it made, and a later run can tell leftovers of a killed run (the pid is gone) from events
/// of a run still going. Events are removed by `removeAll()` or on release, after the perf events
/// attached to them are closed (the kernel refuses to remove an event in use).
public final class DynamicEvents {
  public let tracefs: TraceFS
  public let group: String
  private var created: [(controlFile: String, name: String)] = []

  /// The group a run with `pid` creates its events in.
  public static func groupName(for pid: Int32) -> String { "scry_\(pid)" }

  public init(tracefs: TraceFS, group: String = DynamicEvents.groupName(for: getpid())) {
    self.tracefs = tracefs
    self.group = group
  }

  deinit { _ = removeAll() }

  /// Writes one definition line (`p:scry_4321/p0_readline /bin/bash:0xc6c20 a0=%di:u64`) to
  /// `controlFile` and returns the new event's id, to open with `PerfEvent.tracepoint`.
  /// `probe` names the probe in errors.
  public func create(definition: String, name: String, controlFile: String, probe: String) throws(KernelError) -> UInt64 {
    let path = tracefs.root + "/" + controlFile
    guard access(path, F_OK) == 0 else {
      let what = controlFile == "kprobe_events" ? "kprobe support (CONFIG_KPROBES and CONFIG_KPROBE_EVENTS)" : "uprobe support (CONFIG_UPROBE_EVENTS)"
      throw KernelError(
        operation: "create probe", subject: probe, errno: ENOENT,
        explanation: "this kernel has no \(controlFile) in tracefs: it was built without \(what)")
    }
    do {
      // O_APPEND: opening the control file for writing without it would delete every dynamic event.
      try FileSystem.writeText(path, definition + "\n", append: true)
    } catch {
      throw Self.explain(error, probe: probe, tracefs: tracefs, definition: definition)
    }
    created.append((controlFile, name))
    do {
      return try tracefs.eventID(category: group, name: name)
    } catch let error as KernelError {
      throw error
    } catch {
      throw KernelError(operation: "create probe", subject: probe, errno: 0, explanation: "\(error)")
    }
  }

  /// Removes every event this object created, newest first; returns the failures (an event
  /// still in use by an open perf event, for instance) rather than throwing, since this runs on
  /// every way out.
  @discardableResult
  public func removeAll() -> [KernelError] {
    var failures: [KernelError] = []
    while let (controlFile, name) = created.popLast() {
      do {
        try FileSystem.writeText(tracefs.root + "/" + controlFile, "-:\(group)/\(name)\n", append: true)
      } catch {
        if error.errno != ENOENT { failures.append(error) }
      }
    }
    return failures
  }

  /// Removes the events of Scry runs that are gone (their group's pid no longer runs Scry) and
  /// returns the groups cleaned, so the caller can say so.
  public static func removeStale(tracefs: TraceFS) -> [String] {
    var cleaned: Set<String> = []
    for controlFile in ["uprobe_events", "kprobe_events"] {
      let path = tracefs.root + "/" + controlFile
      guard let text = try? FileSystem.readText(path) else { continue }
      for line in text.split(separator: "\n") {
        guard let event = staleEvent(in: line) else { continue }
        if (try? FileSystem.writeText(path, "-:\(event.group)/\(event.name)\n", append: true)) != nil {
          cleaned.insert(event.group)
        }
      }
    }
    return cleaned.sorted()
  }

  /// `p:scry_1234/p0_target /path:0x1139 a0=%di:u64` → ("scry_1234", "p0_target") when pid 1234 is
  /// not a running Scry.
  static func staleEvent(in line: Substring) -> (group: String, name: String)? {
    guard let colon = line.firstIndex(of: ":"), let space = line.firstIndex(of: " "), colon < space else { return nil }
    let qualified = line[line.index(after: colon)..<space]
    guard let slash = qualified.firstIndex(of: "/") else { return nil }
    let group = String(qualified[..<slash])
    guard group.hasPrefix("scry_"), let pid = Int32(group.dropFirst(5)), pid > 0 else { return nil }
    if isScryRunning(pid) { return nil }
    return (group, String(qualified[qualified.index(after: slash)...]))
  }

  /// Whether `pid` is alive and is a Scry: a reused pid of some other program does not keep leftovers.
  static func isScryRunning(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let comm = try? FileSystem.readText("/proc/\(pid)/comm") else { return false }
    return comm.hasPrefix("scry")
  }

  /// The kernel says only EINVAL or ENOENT; its `error_log` says which part of the line it refused.
  static func explain(_ error: KernelError, probe: String, tracefs: TraceFS, definition: String) -> KernelError {
    var explanation: String
    switch error.errno {
    case ENOENT: explanation = "the kernel cannot find the binary or function"
    case EEXIST: explanation = "an event of this name already exists"
    case EINVAL: explanation = "the kernel refused the probe definition"
    case EBUSY: explanation = "the probe point is busy"
    case EACCES, EPERM: explanation = "creating probes needs root"
    default: explanation = "writing the probe definition failed"
    }
    if let log = lastErrorLogEntry(tracefs) { explanation += "; tracefs error_log says: \(log)" }
    explanation += "; definition was '\(definition)'"
    return KernelError(operation: "create probe", subject: probe, errno: error.errno, explanation: explanation)
  }

  /// The message of the newest `error_log` entry, as "trace_uprobe: error: File not found".
  static func lastErrorLogEntry(_ tracefs: TraceFS) -> String? {
    guard let text = try? FileSystem.readText(tracefs.root + "/error_log") else { return nil }
    guard let line = text.split(separator: "\n").last(where: { $0.contains(" error: ") }) else { return nil }
    // Entries start with a "[ timestamp]" prefix that says nothing to the user.
    let message = line.drop { $0 != "]" }.dropFirst()
    return message.trimmingSpaces()
  }
}

extension Substring {
  func trimmingSpaces() -> String {
    String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
  }
}
