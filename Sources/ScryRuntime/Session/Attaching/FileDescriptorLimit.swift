import Glibc
import ScryKernel
import ScryPlan

/// The fd-limit policy: each probe takes one fd per CPU, and a wildcard over many tracepoints can
/// need thousands. Raises the soft RLIMIT_NOFILE to the hard limit, and says what to do before
/// anything is opened when even that is too low.
enum FileDescriptorLimit {
  static func check(for plan: Plan, cpus: Int) throws(SessionError) {
    // Raising is an improvement, not a need: when it fails, the limit as it is is checked below.
    let limit = (try? SystemInfo.raiseFileLimit()) ?? currentLimit()
    let needed = plan.attachments.filter { $0.probe.kind.hasEventContext }.count * cpus
    let open = FileSystem.entries(of: "/proc/self/fd").count
    guard needed + open + 16 > limit else { return }
    throw .failure(
      "this program needs about \(needed) file descriptors (one per CPU for each of its \(needed / max(cpus, 1)) probes), "
        + "but this process may open only \(limit): raise the limit (as root: `ulimit -n \(needed + 1024)` and "
        + "`ulimit -Hn` if the hard limit is lower, or LimitNOFILE= for a service), or attach fewer probes")
  }

  /// The soft limit as it is (1024, the usual default, if even that cannot be read).
  private static func currentLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    return Int(clamping: limit.rlim_cur)
  }
}
