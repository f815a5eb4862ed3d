import Glibc

/// The kernel's tracing filesystem: lists tracepoints and reads their ids and formats.
///
/// `root` is the mount point (it has an `events/` directory). Found by `locate()`.
/// See the kernel's Documentation/trace/ftrace.rst and events.rst.
public struct TraceFS: Sendable {
  /// The tracefs mount point, e.g. "/sys/kernel/tracing".
  public let root: String

  /// Uses the tracefs mounted at `root` (not checked).
  public init(root: String) {
    self.root = root
  }

  /// Finds tracefs: /sys/kernel/tracing, then /sys/kernel/debug/tracing, then mounts it at
  /// /sys/kernel/tracing when running as root. Throws a `KernelError` saying what to do.
  public static func locate() throws -> TraceFS {
    let candidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
    for path in candidates where FileSystem.isDirectory(path + "/events") {
      return TraceFS(root: path)
    }
    let target = candidates[0]
    guard geteuid() == 0 else {
      throw KernelError(
        operation: "tracefs", subject: target, errno: EACCES,
        explanation:
          "tracefs is not mounted or not readable; run as root, or mount it with `mount -t tracefs nodev \(target)`")
    }
    if mount("nodev", target, "tracefs", 0, nil) != 0 {
      let code = errno
      throw KernelError(
        operation: "mount tracefs", subject: target, errno: code,
        explanation: "tracefs is not mounted and mounting it failed; is CONFIG_TRACING enabled?")
    }
    guard FileSystem.isDirectory(target + "/events") else {
      throw KernelError(
        operation: "tracefs", subject: target, errno: ENOENT, explanation: "mounted, but it has no events/ directory")
    }
    return TraceFS(root: target)
  }

  /// The path of `events/`.
  public var eventsPath: String { root + "/events" }

  /// The path of one event's directory.
  public func eventPath(category: String, name: String) -> String {
    "\(eventsPath)/\(category)/\(name)"
  }

  /// The tracepoint categories (subsystems), sorted: "sched", "syscalls", ...
  public func categories() -> [String] {
    FileSystem.subdirectories(of: eventsPath)
  }

  /// The events of `category`, sorted; empty if the category does not exist.
  public func events(in category: String) -> [String] {
    FileSystem.subdirectories(of: eventsPath + "/" + category)
  }

  /// Whether `category:name` exists.
  public func hasEvent(category: String, name: String) -> Bool {
    FileSystem.isDirectory(eventPath(category: category, name: name))
  }

  /// The tracepoint id of `category:name` (the perf_event_attr config for PERF_TYPE_TRACEPOINT).
  public func eventID(category: String, name: String) throws -> UInt64 {
    let path = eventPath(category: category, name: name) + "/id"
    let text: String
    do {
      text = try FileSystem.readText(path)
    } catch {
      throw notFound(error, category: category, name: name)
    }
    guard let id = UInt64(text.filter { $0 != "\n" && $0 != " " }) else {
      throw KernelError(operation: "read", subject: path, errno: 0, explanation: "not a number: '\(text)'")
    }
    return id
  }

  /// The record layout of `category:name`.
  public func format(category: String, name: String) throws -> EventFormat {
    let path = eventPath(category: category, name: name) + "/format"
    let text: String
    do {
      text = try FileSystem.readText(path)
    } catch {
      throw notFound(error, category: category, name: name)
    }
    return try EventFormat.parse(text, source: path)
  }

  /// Rewords ENOENT as "no such tracepoint" with the usual hint.
  private func notFound(_ error: KernelError, category: String, name: String) -> KernelError {
    guard error.errno == ENOENT else { return error }
    return KernelError(
      operation: "tracepoint", subject: "\(category):\(name)", errno: ENOENT,
      explanation: "no such tracepoint under \(eventsPath); list them with `scry -l`")
  }
}
