import Glibc
import ScryKernel

/// Whether this process may trace kernel events: root, or the capabilities that stand in for it.
enum Privileges {
  /// `CAP_PERFMON` and `CAP_BPF` (Linux 5.8): perf events and BPF programs without root.
  static let perfmon = 38
  static let bpf = 39

  /// Root, or both CAP_PERFMON and CAP_BPF in the effective set.
  static var canTrace: Bool {
    if geteuid() == 0 { return true }
    guard let effective = effectiveCapabilities() else { return false }
    return effective & (1 << perfmon) != 0 && effective & (1 << bpf) != 0
  }

  /// The `CapEff` mask from /proc/self/status, or nil if it cannot be read.
  static func effectiveCapabilities() -> UInt64? {
    guard let status = try? FileSystem.readText("/proc/self/status") else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
      return UInt64(line.dropFirst("CapEff:".count).trimmingWhitespace(), radix: 16)
    }
    return nil
  }

  /// bpftrace's "ERROR: bpftrace currently only supports running as the root user.", saying what Scry needs.
  static let refusal =
    "ERROR: tracing kernel events needs root: run scry as root (e.g. with sudo), or give it the CAP_PERFMON and CAP_BPF capabilities"
}

extension Substring {
  func trimmingWhitespace() -> Substring {
    var s = self
    while let c = s.first, c.isWhitespace { s = s.dropFirst() }
    while let c = s.last, c.isWhitespace { s = s.dropLast() }
    return s
  }
}
