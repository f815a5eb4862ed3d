import CScrySystem
import Glibc

/// Machine-wide facts the attacher needs: which CPUs are online, and the fd limit
/// (one perf fd per CPU per probe adds up).
public enum SystemInfo {
  /// The online CPUs from /sys/devices/system/cpu/online ("0-3,5,7-8"); falls back to
  /// 0..<sysconf(_SC_NPROCESSORS_ONLN) if the file cannot be read.
  public static func onlineCPUs() -> [Int32] {
    if let text = try? FileSystem.readText("/sys/devices/system/cpu/online"),
      let cpus = parseCPUList(text), !cpus.isEmpty
    {
      return cpus
    }
    let count = max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1)
    return (0..<Int32(count)).map { $0 }
  }

  /// Parses the kernel's CPU list format ("0-3,5"); nil if malformed.
  public static func parseCPUList(_ text: String) -> [Int32]? {
    var cpus: [Int32] = []
    let trimmed = text.filter { !$0.isWhitespace }
    if trimmed.isEmpty { return [] }
    for part in trimmed.split(separator: ",") {
      let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
      switch bounds.count {
      case 1:
        guard let cpu = Int32(bounds[0]) else { return nil }
        cpus.append(cpu)
      case 2:
        guard let low = Int32(bounds[0]), let high = Int32(bounds[1]), low <= high else { return nil }
        cpus.append(contentsOf: low...high)
      default:
        return nil
      }
    }
    return cpus
  }

  /// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
  @discardableResult
  public static func raiseFileLimit() throws -> Int {
    Int(try checkedCall("setrlimit(RLIMIT_NOFILE)") { scry_raise_nofile_limit() })
  }
}

/// The online CPUs (see `SystemInfo.onlineCPUs`).
public func onlineCPUs() -> [Int32] { SystemInfo.onlineCPUs() }

extension SystemInfo {
  /// The calling thread's id (what PERF_SAMPLE_TID and `common_pid` report).
  public static func currentThreadID() -> Int32 { scry_gettid() }
}

extension SystemInfo {
  /// The cgroup v2 id of a process (what `bpf_get_current_cgroup_id` and PERF_SAMPLE_CGROUP
  /// report): the inode number of its cgroup's directory in the cgroup2 mount; 0 when the
  /// machine has no cgroup2 mount or the process is gone.
  public static func cgroupID(ofProcess pid: Int32) -> UInt64 {
    guard let cgroups = try? FileSystem.readText("/proc/\(pid)/cgroup"),
      let line = cgroups.split(separator: "\n").first(where: { $0.hasPrefix("0::") }),
      let mounts = try? FileSystem.readText("/proc/self/mountinfo"),
      let mount = mounts.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") })
    else { return 0 }
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT …
    let fields = mount.split(separator: " ")
    guard fields.count > 4 else { return 0 }
    var info = stat()
    guard stat(String(fields[4]) + String(line.dropFirst(3)), &info) == 0 else { return 0 }
    return UInt64(info.st_ino)
  }
}
