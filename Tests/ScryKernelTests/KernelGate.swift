import Glibc
import Testing

@testable import ScryKernel

/// Parent of every suite that opens kernel objects: serialized, so the /proc/self/fd
/// before/after comparisons are not disturbed by another test's fds.
@Suite(.serialized) enum KernelSuites {}

/// Whether kernel tests can run here (root and tracefs), and the reason when not.
///
/// With `SCRY_REQUIRE_KERNEL=1` a skip is a failure: CI on a kernel machine must not
/// silently pass by skipping everything.
enum KernelGate {
  static var skipReason: String? {
    if geteuid() != 0 { return "needs root (euid is \(geteuid()))" }
    if access("/sys/kernel/tracing/events", F_OK) != 0 && access("/sys/kernel/debug/tracing/events", F_OK) != 0 {
      return "needs tracefs (no /sys/kernel/tracing/events)"
    }
    return nil
  }

  static var isRequired: Bool {
    guard let value = getenv("SCRY_REQUIRE_KERNEL") else { return false }
    return String(cString: value) == "1"
  }

  /// Returns true when the test may go on; otherwise prints why and (if required) fails.
  static func check(_ test: String = #function) -> Bool {
    guard let reason = skipReason else { return true }
    if isRequired {
      Issue.record("\(test) skipped but SCRY_REQUIRE_KERNEL=1: \(reason)")
    } else {
      print("skipping \(test): \(reason)")
    }
    return false
  }
}

/// The fds open in this process, from /proc/self/fd.
func openFDs() -> Set<Int32> {
  var result = Set<Int32>()
  guard let dir = opendir("/proc/self/fd") else { return result }
  let dirFD = dirfd(dir)
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
      String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
    }
    // Only kernel-object fds (perf events, epoll, signalfd, timerfd, pidfd): pipes and files
    // come and go as other suites run in parallel.
    if let fd = Int32(name), fd != dirFD {
      var target = [CChar](repeating: 0, count: 256)
      let n = readlink("/proc/self/fd/\(name)", &target, 255)
      if n > 0, String(cString: target).hasPrefix("anon_inode:") { result.insert(fd) }
    }
  }
  closedir(dir)
  return result
}
