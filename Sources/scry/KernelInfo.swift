import Glibc
import ScryKernel

/// `scry --info`: the kernel's tracing features as Scry sees them, in the shape of `bpftrace --info`.
enum KernelInfo {
  /// One line: what was looked at and what was found.
  struct Feature {
    let name: String
    let value: String
  }

  static func report() -> String {
    var system = utsname()
    uname(&system)
    let release = field(system.release)
    let machine = field(system.machine)
    let tracefs = try? TraceFS.locate()
    let isRoot = geteuid() == 0
    let sections: [(String, [Feature])] = [
      ("System", [
        Feature(name: "OS", value: "\(field(system.sysname)) \(release) \(field(system.version))"),
        Feature(name: "Arch", value: machine),
      ]),
      ("Build", [Feature(name: "version", value: "v\(ScryCommand.version)")]),
      ("Kernel features", [
        Feature(name: "tracefs", value: tracefs?.root ?? "no (not mounted, and it could not be mounted)"),
        Feature(name: "BPF program loading", value: bpfLoading(isRoot: isRoot)),
        Feature(name: "btf", value: exists("/sys/kernel/btf/vmlinux") ? "yes" : "no (/sys/kernel/btf/vmlinux is missing)"),
        Feature(name: "perf_event_paranoid", value: sysctl("/proc/sys/kernel/perf_event_paranoid") ?? "unknown"),
        Feature(name: "privileges", value: isRoot ? "root" : Privileges.canTrace ? "CAP_PERFMON and CAP_BPF" : "none (not root)"),
      ]),
      ("Probe types", [
        Feature(name: "tracepoint", value: tracefs.map { exists($0.eventsPath) ? "yes" : "no" } ?? "no (no tracefs)"),
        Feature(name: "kprobe", value: dynamicEvents("kprobe_events", in: tracefs)),
        Feature(name: "uprobe", value: dynamicEvents("uprobe_events", in: tracefs)),
        Feature(name: "software", value: "yes"),
        Feature(name: "hardware", value: exists("/sys/bus/event_source/devices/cpu")
          ? "yes" : "no (no hardware PMU: /sys/bus/event_source/devices/cpu is missing)"),
      ]),
      // bpftrace's own names for these, as scripts and test harnesses grep `bpftrace --info`.
      ("Features (bpftrace's names)", [
        Feature(name: "Loop support", value: "yes"),
        Feature(name: "uprobe refcount (depends on Build:bcc bpf_attach_uprobe refcount)",
                value: exists("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset")
                  ? "yes" : "no (the uprobe PMU has no ref_ctr_offset)"),
      ]),
    ]
    return sections.map { title, features in
      title + "\n" + features.map { "  \($0.name): \($0.value)\n" }.joined()
    }.joined(separator: "\n")
  }

  /// Whether Scry may load its capture programs: root (or CAP_BPF) always may; others only when
  /// kernel.unprivileged_bpf_disabled is 0. Nothing is loaded to find out.
  static func bpfLoading(isRoot: Bool) -> String {
    let disabled = sysctl("/proc/sys/kernel/unprivileged_bpf_disabled")
    if isRoot { return "yes (root)" }
    if Privileges.canTrace { return "yes (CAP_BPF)" }
    if disabled == "0" { return "yes (unprivileged_bpf_disabled=0)" }
    return "no (not root, and unprivileged_bpf_disabled=\(disabled ?? "unknown"))"
  }

  static func dynamicEvents(_ file: String, in tracefs: TraceFS?) -> String {
    guard let tracefs else { return "no (no tracefs)" }
    return exists(tracefs.root + "/" + file) ? "yes" : "no (\(tracefs.root)/\(file) is missing)"
  }

  static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

  /// The first line of a /proc/sys file.
  static func sysctl(_ path: String) -> String? {
    guard let text = try? FileSystem.readText(path) else { return nil }
    return String(text.prefix { $0 != "\n" })
  }

  private static func field<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }
}
