import CScrySystem
import Glibc

/// One perf event (one fd): a tracepoint, software or hardware event on one CPU and/or task.
///
/// Build it with `tracepoint(id:…)`, `software(_:…)` or `hardware(_:…)`; map a ring on it
/// with `PerfRing`; it closes in deinit. `description` (e.g. "tracepoint:sched:sched_switch")
/// names it in every error. The corresponding kernel call is `perf_event_open(2)`.
public final class PerfEvent {
  private var handle: OwnedFD
  /// The perf fd (for `Epoll` and `PerfRing`).
  public var fd: Int32 { handle.raw }
  /// What the event is, as the user wrote it; used in messages.
  public let description: String
  /// The CPU it counts on (-1: any CPU, following `pid`).
  public let cpu: Int32
  /// The task it follows (-1: every task on `cpu`).
  public let pid: Int32
  /// The options it was opened with.
  public let options: PerfEventOptions

  private init(fd: Int32, description: String, cpu: Int32, pid: Int32, options: PerfEventOptions) {
    handle = OwnedFD(fd)
    self.description = description
    self.cpu = cpu
    self.pid = pid
    self.options = options
  }

  /// Closes every event's fd now. Closing the last event of a tracepoint unregisters it and
  /// waits for RCU grace periods: the 361 syscall tracepoints on two CPUs take about 13 s here
  /// (bpftrace: 27 s). Closing from 1, 16 or 32 threads measured the same on 6.18, where the
  /// waits are serialised in the kernel, so this closes them one after another. The events must
  /// not be used afterwards (their rings already unmapped).
  public static func closeAll(_ events: [PerfEvent]) {
    for event in events {
      let fd = event.handle.take()
      if fd >= 0 { close(fd) }
    }
  }

  /// A tracepoint by tracefs id (`TraceFS.eventID`), PERF_TYPE_TRACEPOINT.
  public static func tracepoint(
    id: UInt64, description: String, cpu: Int32 = -1, pid: Int32 = -1, options: PerfEventOptions = .init()
  ) throws -> PerfEvent {
    try open(
      type: SCRY_PERF_TYPE_TRACEPOINT, config: id, kind: .tracepoint, description: description, cpu: cpu, pid: pid,
      options: options)
  }

  /// A kernel software event, PERF_TYPE_SOFTWARE.
  public static func software(
    _ event: SoftwareEvent, description: String? = nil, cpu: Int32 = -1, pid: Int32 = -1,
    options: PerfEventOptions = .init()
  ) throws -> PerfEvent {
    try open(
      type: SCRY_PERF_TYPE_SOFTWARE, config: event.config, kind: .software,
      description: description ?? "software:\(event.rawValue)", cpu: cpu, pid: pid, options: options)
  }

  /// A software event by name ("cpu-clock", "cs", ...); throws for an unknown name.
  public static func software(
    named name: String, description: String? = nil, cpu: Int32 = -1, pid: Int32 = -1,
    options: PerfEventOptions = .init()
  ) throws -> PerfEvent {
    guard let event = SoftwareEvent(name: name) else {
      let known = SoftwareEvent.allCases.map(\.rawValue).joined(separator: ", ")
      throw KernelError(
        operation: "perf_event_open", subject: description ?? "software:\(name)", errno: EINVAL,
        explanation: "unknown software event '\(name)'; known: \(known)")
    }
    return try software(event, description: description, cpu: cpu, pid: pid, options: options)
  }

  /// A generic hardware counter, PERF_TYPE_HARDWARE. Fails with a clear message where the
  /// machine (typically a VM) has no PMU.
  public static func hardware(
    _ event: HardwareEvent, description: String? = nil, cpu: Int32 = -1, pid: Int32 = -1,
    options: PerfEventOptions = .init()
  ) throws -> PerfEvent {
    try open(
      type: SCRY_PERF_TYPE_HARDWARE, config: event.config, kind: .hardware,
      description: description ?? "hardware:\(event.rawValue)", cpu: cpu, pid: pid, options: options)
  }

  /// A hardware event by name ("cycles", "branches", ...); throws for an unknown name.
  public static func hardware(
    named name: String, description: String? = nil, cpu: Int32 = -1, pid: Int32 = -1,
    options: PerfEventOptions = .init()
  ) throws -> PerfEvent {
    guard let event = HardwareEvent(name: name) else {
      let known = HardwareEvent.allCases.map(\.rawValue).joined(separator: ", ")
      throw KernelError(
        operation: "perf_event_open", subject: description ?? "hardware:\(name)", errno: EINVAL,
        explanation: "unknown hardware event '\(name)'; known: \(known)")
    }
    return try hardware(event, description: description, cpu: cpu, pid: pid, options: options)
  }

  /// Which family an event belongs to, for error wording.
  enum Kind { case tracepoint, software, hardware, probe, breakpoint }

  /// A hardware breakpoint (a watchpoint), PERF_TYPE_BREAKPOINT: a debug register of the CPUs
  /// `pid` runs on watches `length` bytes at `address` for `access`. x86-64 has four such
  /// registers; the fifth breakpoint a task (or CPU) asks for fails with ENOSPC.
  public static func breakpoint(
    address: UInt64, length: UInt64, access: BreakpointAccess, description: String, cpu: Int32 = -1, pid: Int32 = -1,
    options: PerfEventOptions = .init()
  ) throws -> PerfEvent {
    try open(
      type: SCRY_PERF_TYPE_BREAKPOINT, config: 0, config1: address, config2: length, breakpointType: access.rawValue,
      kind: .breakpoint, description: description, cpu: cpu, pid: pid, options: options)
  }

  /// A uprobe or uretprobe made through the kernel's `uprobe` PMU rather than `uprobe_events`: it
  /// lives exactly as long as the returned event, so no run (not even one killed with SIGKILL)
  /// can leave it behind in tracefs. It carries no fetch arguments: a BPF program attached to it
  /// reads what it needs. The corresponding call is `perf_event_open(2)` with the PMU's type from
  /// /sys/bus/event_source/devices/uprobe/type. A nonzero `semaphoreOffset` (a USDT probe's
  /// semaphore, as a file offset) is the probe's `ref_ctr_offset`: the kernel adds one to the
  /// semaphore in every process that maps the file while the probe exists.
  public static func uprobe(
    path: String, fileOffset: UInt64, semaphoreOffset: UInt64 = 0, isReturn: Bool, description: String, cpu: Int32,
    pid: Int32, options: PerfEventOptions
  ) throws -> PerfEvent {
    let pmu = try ProbePMU.named("uprobe", for: description)
    var config = isReturn ? pmu.returnFlag : 0
    if semaphoreOffset != 0 {
      guard let shift = pmu.referenceCounterShift(), semaphoreOffset < 1 << (64 - shift) else {
        throw KernelError(
          operation: "perf_event_open", subject: description, errno: EINVAL,
          explanation: "this kernel's uprobe PMU cannot set a USDT semaphore (no ref_ctr_offset field)")
      }
      config |= semaphoreOffset << shift
    }
    return try path.withCString { text in
      try open(
        type: pmu.type, config: config, config1: UInt64(UInt(bitPattern: text)),
        config2: fileOffset, kind: .probe, description: description, cpu: cpu, pid: pid, options: options)
    }
  }

  static func open(
    type: UInt32, config: UInt64, config1: UInt64 = 0, config2: UInt64 = 0, breakpointType: UInt32 = 0, kind: Kind,
    description: String, cpu: Int32, pid: Int32, options: PerfEventOptions
  ) throws -> PerfEvent {
    if cpu < 0 && pid < 0 {
      throw KernelError(
        operation: "perf_event_open", subject: description, errno: EINVAL,
        explanation: "an event needs a CPU or a pid (both were -1)")
    }
    var attr = scry_perf_config()
    attr.type = type
    attr.config = config
    attr.config1 = config1
    attr.config2 = config2
    attr.bp_type = breakpointType
    attr.disabled = options.startDisabled ? 1 : 0
    attr.inherit = options.inherit ? 1 : 0
    attr.want_comm = options.recordComm ? 1 : 0
    attr.want_task = options.recordTasks ? 1 : 0
    attr.want_mmap = options.recordMappings ? 1 : 0
    attr.exclude_callchain_kernel = options.callchainKernel ? 0 : 1
    attr.exclude_callchain_user = options.callchainUser ? 0 : 1
    attr.sample_max_stack = options.callchainDepth
    // Task records then carry the sample's time (at their end), so they can be merged with samples in time order.
    attr.sample_id_all = (options.recordComm || options.recordTasks) && options.sampleType.contains(.time) ? 1 : 0
    attr.read_format = options.readLostCount ? readFormatLost : 0
    if options.useMonotonicClock {
      attr.use_clockid = 1
      attr.clockid = CLOCK_MONOTONIC
    }
    if !options.countingOnly {
      attr.sample_type = options.sampleType.rawValue
      if let frequency = options.sampleFrequency {
        attr.use_freq = 1
        attr.period_or_freq = frequency
      } else {
        attr.period_or_freq = max(options.samplePeriod, 1)
      }
      attr.wakeup_watermark = options.wakeupWatermarkBytes
    }
    let fd = scry_perf_event_open(&attr, pid, cpu, -1)
    guard fd >= 0 else {
      throw openError(errno: Glibc.errno, kind: kind, description: description, cpu: cpu, pid: pid)
    }
    return PerfEvent(fd: fd, description: description, cpu: cpu, pid: pid, options: options)
  }

  /// PERF_FORMAT_LOST.
  static let readFormatLost: UInt64 = 1 << 4

  /// Turns a perf_event_open errno into a sentence with the usual cause and fix.
  static func openError(errno code: Int32, kind: Kind, description: String, cpu: Int32, pid: Int32) -> KernelError {
    let explanation: String?
    switch code {
    case EACCES, EPERM:
      let paranoid =
        (try? FileSystem.readText("/proc/sys/kernel/perf_event_paranoid"))?
        .filter { $0 != "\n" } ?? "unknown"
      explanation = "needs root or CAP_PERFMON (kernel.perf_event_paranoid is \(paranoid))"
    case ENOENT where kind == .hardware, EOPNOTSUPP where kind == .hardware, ENODEV where kind == .hardware:
      explanation = "this machine has no hardware performance counters (no PMU); \(description) cannot be counted here"
    case ENOSPC where kind == .breakpoint:
      // bpftrace's words, which its users and tests look for.
      explanation = "You are out of watchpoint registers (every hardware breakpoint register is in use)"
    case ENOENT where kind == .breakpoint, ENODEV where kind == .breakpoint, EOPNOTSUPP where kind == .breakpoint:
      explanation = "this machine has no hardware breakpoint support (CONFIG_HAVE_HW_BREAKPOINT), so \(description) cannot be watched here"
    case EINVAL where kind == .breakpoint:
      explanation = "the kernel refused the breakpoint: the address must be aligned to its length, and lie in the "
        + (pid >= 0 ? "process's" : "kernel's") + " address space"
    case ENOENT where kind == .tracepoint:
      explanation = "the kernel has no tracepoint with this id"
    case ENOENT where kind == .probe, EINVAL where kind == .probe:
      explanation = "the kernel cannot place a probe there (no such file, or the offset is not an instruction)"
    case EMFILE, ENFILE:
      explanation = "too many open files: raise the limit with `ulimit -n` (one fd per CPU per probe)"
    case ENODEV:
      explanation = cpu >= 0 ? "cpu \(cpu) is offline or does not exist" : "the device does not support this event"
    case ESRCH:
      explanation = "no process with pid \(pid)"
    case EINVAL:
      explanation = "the kernel rejected the event's attributes for \(description) (invalid argument)"
    case EOPNOTSUPP:
      explanation = "this event does not support the requested sampling mode"
    case EBUSY:
      explanation = "the counter is in exclusive use by another program"
    default:
      explanation = nil
    }
    return KernelError(
      operation: "perf_event_open", subject: description, errno: code, explanation: explanation,
      cpu: cpu >= 0 ? cpu : nil)
  }

  /// Starts counting/sampling. The corresponding call is `ioctl(PERF_EVENT_IOC_ENABLE)`.
  public func enable() throws {
    _ = try checkedCall("PERF_EVENT_IOC_ENABLE", description) { scry_perf_enable(handle.raw) }
  }

  /// Stops counting/sampling (records already in the ring stay there).
  public func disable() throws {
    _ = try checkedCall("PERF_EVENT_IOC_DISABLE", description) { scry_perf_disable(handle.raw) }
  }

  /// Resets the count to zero.
  public func reset() throws {
    _ = try checkedCall("PERF_EVENT_IOC_RESET", description) { scry_perf_reset(handle.raw) }
  }

  /// Sets a tracefs filter (tracepoints only), e.g. "common_pid == 42 && fd > 2"; the kernel
  /// then drops non-matching events before they reach the ring.
  public func setFilter(_ filter: String) throws {
    let result = scry_perf_set_filter(handle.raw, filter)
    if result < 0 {
      let code = Glibc.errno
      throw KernelError(
        operation: "PERF_EVENT_IOC_SET_FILTER", subject: description, errno: code,
        explanation: code == EINVAL ? "the kernel rejected the filter '\(filter)'" : nil,
        cpu: cpu >= 0 ? cpu : nil)
    }
  }

  /// Sends this event's records into `other`'s ring (same CPU), so several events on one
  /// CPU share one ring. The corresponding call is `ioctl(PERF_EVENT_IOC_SET_OUTPUT)`.
  public func setOutput(to other: PerfEvent) throws {
    _ = try checkedCall("PERF_EVENT_IOC_SET_OUTPUT", description) { scry_perf_set_output(handle.raw, other.fd) }
  }

  /// The id the kernel stamps on this event's samples (PERF_SAMPLE_IDENTIFIER), to tell
  /// apart events that share one ring.
  public func kernelID() throws -> UInt64 {
    var id: UInt64 = 0
    _ = try checkedCall("PERF_EVENT_IOC_ID", description) { scry_perf_event_id(handle.raw, &id) }
    return id
  }

  /// The event's count so far (events seen, or nanoseconds for the clock events); 0 if the
  /// read fails.
  /// The count; a read the kernel refuses is an error, not a count of 0.
  public func readCount() throws(KernelError) -> UInt64 {
    var value: UInt64 = 0
    let want = options.readLostCount ? 16 : 8
    var values: (UInt64, UInt64) = (0, 0)
    let got = withUnsafeMutableBytes(of: &values) { Glibc.read(handle.raw, $0.baseAddress, want) }
    guard got == want else {
      throw KernelError(
        operation: "read", subject: description, errno: got < 0 ? Glibc.errno : 0,
        explanation: got < 0 ? nil : "the counter gave \(got) bytes, not \(want)")
    }
    value = values.0
    return value
  }

  /// The count and, with `options.readLostCount`, the samples the kernel dropped.
  public func readCounts() -> (count: UInt64, lost: UInt64) {
    var values: (UInt64, UInt64) = (0, 0)
    let want = options.readLostCount ? 16 : 8
    let got = withUnsafeMutableBytes(of: &values) { Glibc.read(handle.raw, $0.baseAddress, want) }
    guard got == want else { return (0, 0) }
    return (values.0, options.readLostCount ? values.1 : 0)
  }
}
