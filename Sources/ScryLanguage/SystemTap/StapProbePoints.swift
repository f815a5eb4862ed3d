/// SystemTap probe points as Scry probe specs: `kernel.trace("sys_enter")` is
/// `tracepoint:*:sys_enter`, `timer.ms(100)` is `interval:ms:100`, `process("p").function("f")` is
/// `uprobe:p:f`. The checker then resolves them exactly as it resolves bpftrace's.
struct StapProbeMapping {
  var provider: String
  var parts: [String]
  /// The syscall a `syscall.NAME` point stands for, which its `name` reads.
  var syscall: String?
  /// A return probe: `$return` and `retstr` read the return value.
  var isReturn = false
  /// `probe error`: an END block that runs only when an `error()` ended the run (and `end`
  /// probes do not).
  var isErrorProbe = false
  /// `syscall.*` on raw_syscalls: `name` is looked up by the syscall's number.
  var namesByNumber = false
}

enum StapProbePoints {
  /// The point names Scry maps, for "did you mean".
  static let known = [
    "begin", "end", "error", "timer.s", "timer.jiffies", "timer.ms", "timer.us", "timer.ns", "timer.hz", "timer.profile", "kernel.trace",
    "perf.sw", "perf.hw", "perf.type.config", "process.function", "process.function.return", "process.mark", "process.begin",
    "process.end", "kernel.function", "kernel.function.return", "module.function", "module.function.return",
    "syscall", "syscall.return",
  ]

  static let softwareEvents = [
    "cpu_clock": "cpu-clock", "task_clock": "task-clock", "page_faults": "page-faults",
    "context_switches": "context-switches", "cpu_migrations": "cpu-migrations", "page_faults_min": "minor-faults",
    "page_faults_maj": "major-faults", "alignment_faults": "alignment-faults", "emulation_faults": "emulation-faults",
  ]

  /// perf's event numbers (`perf.type(T).config(C)`): type 0 is hardware, 1 software, each
  /// config an event of `linux/perf_event.h`, by the name Scry's probes give it.
  static let perfHardwareConfigs = [
    "cpu-cycles", "instructions", "cache-references", "cache-misses", "branch-instructions", "branch-misses",
    "bus-cycles", "frontend-stalls", "backend-stalls", "ref-cycles",
  ]
  static let perfSoftwareConfigs = [
    "cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations", "minor-faults", "major-faults",
    "alignment-faults", "emulation-faults", "dummy", "bpf-output",
  ]

  /// Tapset families SystemTap builds on kernel.function probes, and the tracepoint to use instead.
  static let kprobeTapsets = [
    "vfs": "kernel.trace(\"syscalls:sys_enter_read\") or syscall.read",
    "scheduler": "kernel.trace(\"sched:sched_switch\"), kernel.trace(\"sched:sched_wakeup\")",
    "signal": "kernel.trace(\"signal:signal_generate\"), kernel.trace(\"signal:signal_deliver\")",
    "ioblock": "kernel.trace(\"block:block_rq_issue\"), kernel.trace(\"block:block_rq_complete\")",
    "ioscheduler": "kernel.trace(\"block:block_rq_insert\")",
    "netdev": "kernel.trace(\"net:net_dev_xmit\"), kernel.trace(\"net:netif_receive_skb\")",
    "tcp": "kernel.trace(\"tcp:tcp_probe\") or kernel.trace(\"sock:inet_sock_set_state\")",
    "udp": "syscall.sendto, syscall.recvfrom",
    "socket": "syscall.socket, syscall.sendmsg, syscall.recvmsg",
    "memory": "kernel.trace(\"exceptions:page_fault_user\"), kernel.trace(\"kmem:mm_page_alloc\")",
    "vm": "kernel.trace(\"exceptions:page_fault_user\"), kernel.trace(\"kmem:mm_page_alloc\")",
    "kprocess": "process.begin, process.end, kernel.trace(\"sched:sched_process_fork\")",
    "nfs": "kernel.trace(\"nfs:*\")",
    "irq_handler": "kernel.trace(\"irq:irq_handler_entry\")",
  ]

  /// The Scry spec for a point, or a message saying why there is none. `jiffy` is the length of
  /// the kernel's tick in nanoseconds (1/HZ), when known, for `timer.jiffies(N)`.
  static func map(_ point: StapProbePoint, jiffy: UInt64? = nil) -> Result<StapProbeMapping, StapPointError> {
    let c = point.components
    let names = c.map(\.name)
    func string(_ i: Int) -> String? {
      if i < c.count, case .string(let s)? = c[i].argument { return s }
      return nil
    }
    func number(_ i: Int) -> UInt64? {
      if i < c.count, case .integer(let n)? = c[i].argument { return n }
      return nil
    }
    let isReturn = names.last == "return"
    switch names.first {
    case "begin" where c.count == 1: return .success(StapProbeMapping(provider: "BEGIN", parts: []))
    case "end" where c.count == 1: return .success(StapProbeMapping(provider: "END", parts: []))
    case "error" where c.count == 1:
      return .success(StapProbeMapping(provider: "END", parts: [], isErrorProbe: true))
    case "timer":
      // `.randomize(M)` lets each period vary by up to ±M; a fixed period is one SystemTap may
      // pick, so the timer runs unrandomized.
      if c.count == 3 && names[2] == "randomize" && number(2) != nil
        && ["s", "sec", "ms", "msec", "us", "usec", "ns", "nsec", "jiffies"].contains(names[1])
      {
        var fixed = point
        fixed.components.removeLast()
        return map(fixed, jiffy: jiffy)
      }
      if names.contains("randomize") {
        return .failure(StapPointError(message: "'.randomize(N)' follows a timer in time units", hint: "timer.ms(100).randomize(10)"))
      }
      if c.count == 2 && names[1] == "profile" { return .success(StapProbeMapping(provider: "profile", parts: ["hz", "250"])) }
      let units = ["s": "s", "sec": "s", "ms": "ms", "msec": "ms", "us": "us", "usec": "us", "ns": "ns", "nsec": "ns", "hz": "hz"]
      if c.count == 2, let unit = units[names[1]], let n = number(1) {
        return .success(StapProbeMapping(provider: "interval", parts: [unit, String(n)]))
      }
      if c.count == 2 && names[1] == "jiffies", let n = number(1) {
        guard let jiffy else {
          return .failure(StapPointError(message: "'timer.jiffies' needs the length of the kernel's tick, which is not known here",
            hint: "write the interval in time units: 'timer.ms(N)'"))
        }
        return .success(StapProbeMapping(provider: "interval", parts: ["ns", String(n &* jiffy)]))
      }
    case "kernel" where c.count == 2 && names[1] == "trace":
      guard let name = string(1) else { break }
      if let colon = name.firstIndex(of: ":") {
        return .success(StapProbeMapping(provider: "tracepoint", parts: [String(name[..<colon]), String(name[name.index(after: colon)...])]))
      }
      // SystemTap matches the name across categories: `sys_enter` is `raw_syscalls:sys_enter`.
      return .success(StapProbeMapping(provider: "tracepoint", parts: ["*", name]))
    case "kernel" where names.count >= 2 && names[1] == "function":
      guard let function = string(1) else { break }
      return .success(StapProbeMapping(provider: isReturn ? "kretprobe" : "kprobe", parts: [function], isReturn: isReturn))
    case "module" where names.count >= 2 && names[1] == "function":
      guard let module = string(0), let function = string(1) else { break }
      return .success(StapProbeMapping(provider: isReturn ? "kretprobe" : "kprobe", parts: [module, function], isReturn: isReturn))
    case "perf" where c.count >= 3 && names[1] == "type" && names[2] == "config":
      guard let type = number(1), let config = number(2), c.count == 3 || (c.count == 4 && names[3] == "sample" && number(3) != nil) else { break }
      let table = type == 0 ? perfHardwareConfigs : type == 1 ? perfSoftwareConfigs : []
      guard !table.isEmpty else {
        return .failure(StapPointError(message: "perf event type \(type) is not one Scry's probes attach",
          hint: "type 0 is hardware, 1 software: 'perf.type(1).config(0)' is cpu-clock"))
      }
      guard config < UInt64(table.count) else {
        return .failure(StapPointError(message: "perf \(type == 0 ? "hardware" : "software") event \(config) is not known",
          hint: "configs 0 to \(table.count - 1): " + table.joined(separator: ", ")))
      }
      var parts = [table[Int(config)]]
      if c.count == 4, let n = number(3) { parts.append(String(n)) }
      return .success(StapProbeMapping(provider: type == 0 ? "hardware" : "software", parts: parts))
    case "perf" where c.count >= 3 && (names[1] == "sw" || names[1] == "hw"):
      let event = names[1] == "sw" ? softwareEvents[names[2]] ?? names[2] : String(names[2].map { $0 == "_" ? "-" : $0 })
      var parts = [event]
      if c.count == 4 && names[3] == "sample", let n = number(3) { parts.append(String(n)) }
      return .success(StapProbeMapping(provider: names[1] == "sw" ? "software" : "hardware", parts: parts))
    case "process":
      if c.count == 2 && names[1] == "begin" {
        return .success(StapProbeMapping(provider: "tracepoint", parts: ["sched", "sched_process_exec"]))
      }
      if c.count == 2 && names[1] == "end" {
        return .success(StapProbeMapping(provider: "tracepoint", parts: ["sched", "sched_process_exit"]))
      }
      guard let path = string(0), names.count >= 2 else { break }
      // `.call` is the entry of a function that is not inlined: the only kind a uprobe meets.
      if names[1] == "function", let function = string(1), c.count == (isReturn || names.last == "call" ? 3 : 2) {
        return .success(StapProbeMapping(provider: isReturn ? "uretprobe" : "uprobe", parts: [path, function], isReturn: isReturn))
      }
      if names[1] == "mark", let mark = string(1), c.count == 2 {
        return .success(StapProbeMapping(provider: "usdt", parts: [path, mark]))
      }
    case "syscall", "nd_syscall":
      guard c.count == (isReturn ? 3 : 2), c[1].argument == nil else { break }
      let name = names[1]
      return .success(StapProbeMapping(
        provider: "tracepoint", parts: ["syscalls", (isReturn ? "sys_exit_" : "sys_enter_") + name],
        syscall: name, isReturn: isReturn))
    default:
      if let suggestion = kprobeTapsets[names[0]] {
        let written = names.joined(separator: ".")
        return .failure(StapPointError(
          message: "'\(written)' is a SystemTap tapset alias of kernel.function probes (kprobes), which Scry does not map",
          hint: "trace the kernel's tracepoint instead: " + suggestion))
      }
    }
    let written = names.joined(separator: ".")
    let hint = Suggestions.hint(for: written, in: known) ?? "probe points Scry maps: see docs/systemtap.md"
    return .failure(StapPointError(message: "unknown or unsupported probe point '\(written)'", hint: hint))
  }
}

struct StapPointError: Error {
  var message: String
  var hint: String?
}
