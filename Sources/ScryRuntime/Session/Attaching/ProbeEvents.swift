import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// Opening the perf event of a probe on one CPU and task, and the tracefs side of dynamic probes.
enum ProbeEvents {
  /// The event of `request`'s probe for task `pid` (-1: any) on `cpu`; `options` gains the
  /// probe's period or frequency.
  static func open(
    _ request: AttachRequest, pid: Int32, cpu: Int32, options: inout PerfEventOptions, in context: AttachContext
  ) throws -> PerfEvent {
    let probe = request.probe
    if let id = request.dynamicID {
      return try PerfEvent.tracepoint(id: id, description: probe.name, cpu: cpu, pid: pid, options: options)
    }
    switch probe.target {
    case .tracepoint:
      return try PerfEvent.tracepoint(
        id: try context.tracepointID(of: probe), description: probe.name, cpu: cpu, pid: pid, options: options)
    case .perfEvent(let name, let period):
      options.samplePeriod = period
      if probe.kind == .software {
        return try PerfEvent.software(named: name, description: probe.name, cpu: cpu, pid: pid, options: options)
      }
      return try PerfEvent.hardware(named: name, description: probe.name, cpu: cpu, pid: pid, options: options)
    case .timer(let period, let unit, let value):
      if unit == "hz" {
        options.sampleFrequency = value
      } else {
        options.samplePeriod = period
      }
      return try PerfEvent.software(named: "cpu-clock", description: probe.name, cpu: cpu, pid: pid, options: options)
    case .breakpoint(let watch):
      guard case .address(let address) = watch.site else { throw SessionError.failure(unsupportedMessage(probe)) }
      return try breakpoint(watch, at: address, description: probe.name, pid: pid, cpu: cpu, options: &options)
    default:
      throw SessionError.failure(unsupportedMessage(probe))
    }
  }

  /// A watchpoint's breakpoint at `address`: every hit is a sample, as bpftrace samples each.
  static func breakpoint(
    _ watch: Watchpoint, at address: UInt64, description: String, pid: Int32, cpu: Int32, options: inout PerfEventOptions
  ) throws -> PerfEvent {
    options.samplePeriod = 1
    options.sampleFrequency = nil
    return try PerfEvent.breakpoint(
      address: address, length: UInt64(watch.length), access: BreakpointAccess(mode: watch.mode), description: description,
      cpu: cpu, pid: pid, options: options)
  }

  /// Creates the uprobe or kprobe of `probe` in tracefs and returns its event id.
  static func createDynamicEvent(
    _ dynamic: DynamicProbe, for probe: ResolvedProbe, in dynamicEvents: DynamicEvents?
  ) throws -> UInt64 {
    if dynamic.isKernel, let tracefs = dynamicEvents?.tracefs, access(tracefs.root + "/kprobe_events", F_OK) != 0 {
      throw SessionError.failure(unsupportedMessage(probe))
    }
    guard let dynamicEvents else { throw SessionError.failure("\(probe.name): tracefs is not available") }
    let id = try dynamicEvents.create(
      definition: dynamic.definition(group: dynamicEvents.group), name: dynamic.name,
      controlFile: dynamic.controlFile, probe: probe.name)
    // The runtime reads fetched values at offsets the planner laid out; check the kernel agrees.
    guard !dynamic.fetchArguments.isEmpty else { return id }
    let format = try dynamicEvents.tracefs.format(category: dynamicEvents.group, name: dynamic.name)
    if let first = format.fields.first(where: { $0.name == "a0" }), first.offset != dynamic.firstArgumentOffset {
      throw SessionError.failure(
        "\(probe.name): the kernel laid out the probe's record differently than expected "
          + "(a0 at \(first.offset), not \(dynamic.firstArgumentOffset))")
    }
    return id
  }

  /// Every thread of a process, so an existing multi-threaded process is followed whole.
  static func threads(of pid: Int32) -> [Int32] {
    let tids = FileSystem.entries(of: "/proc/\(pid)/task").compactMap { Int32($0) }.sorted()
    return tids.isEmpty ? (kill(pid, 0) == 0 ? [pid] : []) : tids
  }

  /// Why a probe kind cannot be attached by this build or on this kernel. (The checker refuses
  /// kprobes on a kernel without them first, with the script's location and a similar tracepoint.)
  static func unsupportedMessage(_ probe: ResolvedProbe) -> String {
    switch probe.kind {
    case .kprobe, .kretprobe:
      if (try? TraceFS.locate()).map({ access($0.root + "/kprobe_events", F_OK) != 0 }) ?? true {
        return "\(probe.name): this kernel has no kprobe support (no kprobe_events in tracefs; CONFIG_KPROBES is off)"
      }
      return "\(probe.name): this build of Scry cannot attach kprobes yet"
    default:
      return "\(probe.name): this build of Scry cannot attach \(probe.kind.rawValue) probes yet"
    }
  }
}
