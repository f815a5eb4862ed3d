import Glibc

/// A failed kernel call: what was attempted, on what, and the errno it returned.
///
/// `description` is one sentence a user can act on: it names the operation and the probe
/// or file, and for the common causes (permissions, no PMU, fd limit) says what to do.
public struct KernelError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The operation that failed, e.g. "perf_event_open", "open", "mmap".
  public var operation: String
  /// What it was applied to, e.g. "tracepoint:sched:sched_switch" or a path; may be empty.
  public var subject: String
  /// The errno value, or 0 when the failure is not an errno (e.g. a parse error).
  public var errno: Int32
  /// A human explanation that replaces the generic "operation failed: strerror" text.
  public var explanation: String?
  /// The CPU the call concerned, when it was per-CPU.
  public var cpu: Int32?

  public init(operation: String, subject: String = "", errno: Int32, explanation: String? = nil, cpu: Int32? = nil) {
    self.operation = operation
    self.subject = subject
    self.errno = errno
    self.explanation = explanation
    self.cpu = cpu
  }

  /// The C library's text for `errno`, e.g. "Permission denied".
  public var errnoText: String {
    guard errno != 0, let text = strerror(errno) else { return "" }
    return String(cString: text)
  }

  public var description: String {
    var location = subject.isEmpty ? "" : " \(subject)"
    if let cpu { location += " on cpu \(cpu)" }
    if let explanation {
      return errno == 0
        ? "\(operation)\(location): \(explanation)"
        : "\(operation)\(location): \(explanation) (\(errnoText))"
    }
    return "\(operation)\(location) failed: \(errnoText) (errno \(errno))"
  }
}

/// Runs `body`, retrying on EINTR, and turns a negative result into a `KernelError`.
///
/// One funnel for raw calls, as swift-system does: every wrapper goes through here so
/// EINTR handling and error shape are the same everywhere.
@inline(__always)
func checkedCall<T: FixedWidthInteger>(
  _ operation: String, _ subject: String = "", _ body: () -> T
) throws(KernelError) -> T {
  while true {
    let result = body()
    if result >= 0 { return result }
    let code = Glibc.errno
    if code == EINTR { continue }
    throw KernelError(operation: operation, subject: subject, errno: code)
  }
}
