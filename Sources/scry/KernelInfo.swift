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
    let canLoad = isRoot || Privileges.canTrace
    let sections: [(String, [Feature])] = [
      ("System", [
        Feature(name: "OS", value: "\(field(system.sysname)) \(release) \(field(system.version))"),
        Feature(name: "Arch", value: machine),
      ]),
      ("Build", [
        Feature(name: "version", value: "v\(ScryCommand.version)"),
        Feature(name: "bpftrace compatibility", value: "v\(ScryCommand.bpftraceVersion)"),
        Feature(name: "libdw (DWARF support)", value: "yes"),  // Scry's own reader (ScryKernel/DWARF)
      ]),
      ("Kernel helpers", kernelHelpers(release: release, canLoad: canLoad)),
      ("Kernel features", [
        Feature(name: "tracefs", value: tracefs?.root ?? "no (not mounted, and it could not be mounted)"),
        Feature(name: "BPF program loading", value: bpfLoading(isRoot: isRoot)),
        Feature(name: "btf", value: exists("/sys/kernel/btf/vmlinux") ? "yes" : "no (/sys/kernel/btf/vmlinux is missing)"),
        Feature(name: "perf_event_paranoid", value: sysctl("/proc/sys/kernel/perf_event_paranoid") ?? "unknown"),
        Feature(name: "privileges", value: isRoot ? "root" : Privileges.canTrace ? "CAP_PERFMON and CAP_BPF" : "none (not root)"),
        // bpftrace's names for these two, as scripts and test harnesses grep `bpftrace --info`.
        Feature(name: "Loop support", value: "yes"),
        Feature(name: "uprobe refcount (depends on Build:bcc bpf_attach_uprobe refcount)",
                value: exists("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset")
                  ? "yes" : "no (the uprobe PMU has no ref_ctr_offset)"),
      ]),
      ("Map types", mapTypes()),
      ("Probe types", [
        Feature(name: "tracepoint", value: tracefs.map { exists($0.eventsPath) ? "yes" : "no" } ?? "no (no tracefs)"),
        Feature(name: "kprobe", value: dynamicEvents("kprobe_events", in: tracefs)),
        Feature(name: "uprobe", value: dynamicEvents("uprobe_events", in: tracefs)),
        Feature(name: "software", value: "yes"),
        Feature(name: "watchpoint", value: exists("/sys/bus/event_source/devices/breakpoint")
          ? "yes" : "no (no hardware breakpoints: /sys/bus/event_source/devices/breakpoint is missing)"),
        Feature(name: "hardware", value: exists("/sys/bus/event_source/devices/cpu")
          ? "yes" : "no (no hardware PMU: /sys/bus/event_source/devices/cpu is missing)"),
      ]),
    ]
    return sections.map { title, features in
      title + "\n" + features.map { "  \($0.name): \($0.value)\n" }.joined()
    }.joined(separator: "\n")
  }

  /// The helpers Scry's capture programs call, under bpftrace's names: the kernel has them from 5.5
  /// on, and they are usable when Scry may load programs. Helpers Scry does not call are "no", so
  /// a harness that greps for "yes" does not expect what Scry cannot do. `send_signal` is called
  /// by the setup program of `watchpoint:FUNC+argN` (to stop the task): "yes" only when the
  /// kernel accepts that program, found by loading it. (`signal()` is still sent with kill(2)
  /// after the event, not by bpf_send_signal.)
  static func kernelHelpers(release: String, canLoad: Bool) -> [Feature] {
    let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    let hasThem = numbers.count == 2 && (numbers[0], numbers[1]) >= (5, 5)
    let called = !canLoad ? "no (Scry may not load BPF programs)" : hasThem ? "yes" : "no (the kernel is older than 5.5)"
    let notCalled = "no (Scry's programs do not call it)"
    return [
      Feature(name: "probe_read", value: notCalled),
      Feature(name: "probe_read_str", value: notCalled),
      Feature(name: "probe_read_user", value: called),
      Feature(name: "probe_read_user_str", value: called),
      Feature(name: "probe_read_kernel", value: called),
      Feature(name: "probe_read_kernel_str", value: called),
      Feature(name: "send_signal", value: canLoad ? sendSignal() : "no (Scry may not load BPF programs)"),
      Feature(name: "override_return", value: notCalled),
    ]
  }

  /// Whether the kernel loads the watchpoint setup program, which calls bpf_send_signal.
  static func sendSignal() -> String {
    do {
      try WatchpointSetupProgram.checkLoadable()
      return "yes"
    } catch {
      return "no (\(error.description))"
    }
  }

  /// The map types Scry creates, found by creating a small one of each; bpftrace's plain hash is
  /// "no": Scry's counters in the kernel are per-CPU hashes, its other maps live in Scry.
  static func mapTypes() -> [Feature] {
    func created(_ make: () throws(KernelError) -> BPFMap) -> String {
      do {
        _ = try make()
        return "yes"
      } catch {
        return "no (\(error.description))"
      }
    }
    return [
      Feature(name: "hash", value: "no (Scry does not use it)"),
      Feature(name: "percpu hash", value: created { () throws(KernelError) in try BPFMap.perCPUHash(keySize: 8, valueSize: 8, entries: 1) }),
      Feature(name: "array", value: created { () throws(KernelError) in try BPFMap.array(entries: 1, name: "scry_info") }),
      Feature(name: "percpu array", value: created { () throws(KernelError) in try BPFMap.perCPUArray(valueSize: 8, entries: 1) }),
      Feature(name: "stack_trace", value: created { () throws(KernelError) in try BPFMap.stackTrace(depth: 1, entries: 1) }),
      Feature(name: "perf_event_array", value: created { () throws(KernelError) in try BPFMap.perfEventArray(entries: 1) }),
      Feature(name: "ringbuf", value: created { () throws(KernelError) in try BPFMap.ringBuffer(bytes: Int(getpagesize())) }),
    ]
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
