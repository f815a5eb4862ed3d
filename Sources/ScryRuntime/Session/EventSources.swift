import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// The perf side of a session: every kernel event the plan attaches, the rings they write into,
/// and the routing of each sample to its action. Owns every fd and mapping it opens; they are
/// released when it is released, on every way out of the session.
final class EventSources {
  /// Where the samples of one perf event go.
  private struct Route {
    /// The probe block's action; the session keeps it alive, the route does not count references.
    var action: Unretained<Action>
    var decoder: PerfSampleDecoder
    var probeName: UnsafeRawBufferPointer
    /// The kernel filter took the whole predicate: the action need not evaluate it again.
    var skipPredicate: Bool
    /// tid comes from the record's `common_pid` (PERF_SAMPLE_TID not requested).
    var tidFromRecord: Bool
    /// Where PERF_SAMPLE_TIME sits in the sample, found once from the sample type; nil without time.
    var timeOffset: Int?
    /// Where the task's name sits in the body (BPF ring records that carry it); nil: the process table's.
    var commOffset: Int?

    /// perf lays a sample out as IDENTIFIER, IP, TID, TIME, …: time follows the fields before it.
    static func timeOffset(in type: PerfSampleType) -> Int? {
      guard type.contains(.time) else { return nil }
      return (type.contains(.identifier) ? 8 : 0) + (type.contains(.ip) ? 8 : 0) + (type.contains(.tid) ? 8 : 0)
    }
  }

  private unowned let session: Session
  /// The session's machine and the process table, for the per-sample path without reference counting.
  private unowned(unsafe) let machine: Machine
  private let machineRef: Unretained<Machine>
  private let processTableRef: Unretained<ProcessTable>
  private var rings: [PerfRing] = []
  /// Per ring: where the time sits, counted from the end, in its COMM and FORK records (which
  /// carry the owner's sample id fields, `sample_id_all`); nil when its samples carry no time.
  private var taskRecordTimeFromEnd: [Int?] = []
  /// One ring per CPU, shared by every sampled event on that CPU; created on first use.
  private var ringOfCPU: [Int32: PerfRing] = [:]
  /// BPF programs and maps, kept while the events they hang on are open.
  private var bpfObjects: [AnyObject] = []
  /// Every event opened, ring owners included, kept open until the session ends.
  private var events: [PerfEvent] = []
  /// Events that only count, with the attachment they count for.
  private var counters: [(attachment: Int, count: () -> UInt64)] = []
  private var routes: [Route] = []
  /// The route of each kernel event id (PERF_SAMPLE_IDENTIFIER, the first word of a sample).
  private var routeByID: [UInt64: Int] = [:]
  /// The kernel ids of the routes, in route order: a scan of a few ids beats hashing the id of
  /// every sample, and most programs have a few events per CPU.
  private var routeIDs: [UInt64] = []
  /// Samples carry PERF_SAMPLE_IDENTIFIER only when more than one probe shares the rings; with
  /// one, every sample takes the same route (the same action on every CPU).
  private var identifiesSamples = true
  private let processTable: ProcessTable
  /// The uprobes and kprobes this session created in tracefs; removed after the events are closed.
  private var dynamicEvents: DynamicEvents?
  /// Tracepoints delivered by BPF programs share this ring (one for every CPU; see
  /// `TracepointDelivery`) and count what did not fit in `ringLost`.
  private var bpfRing: BPFRing?
  private var ringLost: BPFMap?
  /// The ring could not be made (no BPF ring buffers in this kernel): perf delivers everything.
  private var bpfRingUnavailable = false
  /// PERF_RECORD_LOST totals of the perf rings.
  private var perfLost: UInt64 = 0
  /// Events lost so far, perf's and the BPF ring's.
  var lostEvents: UInt64 {
    guard let ringLost, let values = try? ringLost.perCPUValues(index: 0) else { return perfLost }
    return values.reduce(perfLost) { sum, bytes in sum &+ bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
  }
  /// Samples handed to actions, for tests and `--plan` statistics.
  private(set) var samplesRead: UInt64 = 0

  var pollFDs: [Int32] { rings.map { $0.event.fd } }

  init(session: Session, tracedPid: Int32?) throws(SessionError) {
    self.session = session
    self.machine = session.machine
    self.machineRef = Unretained(session.machine)
    self.processTable = ProcessTable()
    self.processTableRef = Unretained(processTable)
    let plan = session.plan
    let cpus = SystemInfo.onlineCPUs()
    try Self.checkFileLimit(for: plan, cpus: cpus.count)
    let needsTraceFS = plan.attachments.contains { $0.probe.kind == .tracepoint || $0.dynamicProbe != nil }
    let tracefs = needsTraceFS ? try Self.locateTraceFS() : nil
    if let tracefs, plan.attachments.contains(where: { $0.dynamicProbe != nil }) {
      let stale = DynamicEvents.removeStale(tracefs: tracefs)
      if !stale.isEmpty {
        printToStandardError("Removed probes left in tracefs by Scry runs that did not end cleanly: \(stale.joined(separator: ", "))\n")
      }
      dynamicEvents = DynamicEvents(tracefs: tracefs)
    }
    let ringPages = session.options.ringPages
    let sampled = Self.sampledCount(plan)
    identifiesSamples = sampled > 1
    do {
      if sampled > 0 { try openTaskRecordCarriers(cpus: cpus) }
      for (index, attachment) in plan.attachments.enumerated() where attachment.probe.kind.hasEventContext {
        let probe = attachment.probe
        let counting = attachment.counting != nil
        var options = PerfEventOptions()
        options.sampleType = Self.sampleType(attachment.sampleFields, counting: counting, identified: identifiesSamples)
        options.countingOnly = counting
        options.wakeupWatermarkBytes = UInt32(clamping: ringPages * 4096 / 4)
        // Per-task events are still opened once per CPU: the kernel maps no ring for an
        // inherited event on "any CPU", and per-CPU events can share that CPU's ring.
        let followed: [Int32]?
        switch attachment.scope {
        case .systemWide:
          // `-p` limits every probe to the process; `-c` traces system-wide (as bpftrace does)
          // unless the predicate pins the events to the child.
          followed = session.options.targetPid != nil ? tracedPid.map(Self.threads(of:)) : nil
        case .tracedProcess:
          guard let pid = tracedPid else { throw SessionError.failure("\(probe.name): no process to follow (use -p or -c)") }
          followed = Self.threads(of: pid)
        case .process(let pid):
          followed = Self.threads(of: pid)
          if followed?.isEmpty ?? true { throw SessionError.failure("\(probe.name): no process with pid \(pid) to follow") }
        }
        options.inherit = followed != nil
        // A uprobe or kprobe is created once in tracefs, then opened per CPU like a tracepoint.
        let dynamicID = try attachment.dynamicProbe.map { try createDynamicEvent($0, for: probe) }
        if counting, let dynamicID, followed == nil, session.usesBPF, let counter = Self.bpfCounter(dynamicID, probe: probe, cpu: cpus[0], options: options) {
          events.append(counter.event)
          counters.append((index, counter.total))
          continue
        }
        if let delivery = attachment.ringDelivery, followed == nil, session.usesBPF, let tracefs,
          try attachRingProgram(delivery, for: attachment, tracefs: tracefs, cpus: cpus)
        {
          continue
        }
        if let pointerFetch = attachment.pointerFetch, session.usesBPF, let tracefs {
          try attachFetchProgram(
            pointerFetch, for: attachment, tracefs: tracefs, cpus: cpus, onlyProcess: followed == nil ? nil : tracedPid,
            options: options)
          continue
        }
        let targets: [(pid: Int32, cpu: Int32)] =
          followed.map { tids in tids.flatMap { tid in cpus.map { (tid, $0) } } } ?? cpus.map { (-1, $0) }
        for target in targets {
          let event: PerfEvent
          if let dynamicID {
            event = try PerfEvent.tracepoint(id: dynamicID, description: probe.name, cpu: target.cpu, pid: target.pid, options: options)
          } else {
            event = try Self.open(probe, tracefs: tracefs, pid: target.pid, cpu: target.cpu, options: &options)
          }
          events.append(event)
          if counting {
            counters.append((index, event.readCount))
            continue
          }
          var skipPredicate = false
          if let filter = attachment.kernelFilter {
            // A filter the kernel refuses falls back to the predicate in user space: slower, never wrong.
            if (try? event.setFilter(filter)) != nil { skipPredicate = attachment.kernelFilterIsWholePredicate }
          }
          try route(event, cpu: target.cpu, to: attachment, sampleType: options.sampleType, skipPredicate: skipPredicate)
        }
      }
    } catch let error as SessionError {
      throw error
    } catch let error as KernelError {
      throw SessionError.failure(error.description)
    } catch {
      throw SessionError.failure("\(error)")
    }
    session.machine.processTable = processTable
  }

  deinit {
    // The kernel keeps a dynamic event while a perf event uses it: close those first.
    counters.removeAll()
    rings.removeAll()
    ringOfCPU.removeAll()
    PerfEvent.closeAll(events)
    events.removeAll()
    bpfObjects.removeAll()
    bpfRing = nil
    ringLost = nil
    for failure in dynamicEvents?.removeAll() ?? [] { printToStandardError("WARNING: \(failure)\n") }
  }

  /// Sends `event`'s samples into its CPU's ring (the first event on a CPU owns the ring) and
  /// routes them to the attachment's block.
  private func route(
    _ event: PerfEvent, cpu: Int32, to attachment: Attachment, sampleType: PerfSampleType, skipPredicate: Bool
  ) throws {
    try share(ringOf: cpu, with: event, sampleType: sampleType)
    addRoute(id: try event.kernelID(), to: attachment, sampleType: sampleType, skipPredicate: skipPredicate)
  }

  /// Points `event` at its CPU's ring, or makes it the ring's owner when it is the first.
  private func share(ringOf cpu: Int32, with event: PerfEvent, sampleType: PerfSampleType) throws {
    if let ring = ringOfCPU[cpu] {
      try event.setOutput(to: ring.event)
    } else {
      let ring = try PerfRing(event: event, dataPages: session.options.ringPages)
      rings.append(ring)
      taskRecordTimeFromEnd.append(
        sampleType.contains(.time) ? 8 + (sampleType.contains(.cpu) ? 8 : 0) + (sampleType.contains(.identifier) ? 8 : 0) : nil)
      ringOfCPU[cpu] = ring
    }
  }

  private func addRoute(
    id: UInt64, to attachment: Attachment, sampleType: PerfSampleType, skipPredicate: Bool, commOffset: Int? = nil
  ) {
    routeByID[id] = routes.count
    routeIDs.append(id)
    routes.append(Route(
      action: Unretained(session.action(attachment.blockIndex)), decoder: PerfSampleDecoder(sampleType: sampleType),
      probeName: UnsafeRawBufferPointer(session.probeNameBytes(attachment.probe.name)), skipPredicate: skipPredicate,
      tidFromRecord: !sampleType.contains(.tid), timeOffset: Route.timeOffset(in: sampleType), commOffset: commOffset))
  }

  /// A system-wide tracepoint delivered by a BPF program into the shared BPF ring (see
  /// `TracepointDelivery`): the program hangs on one event and runs for hits on every CPU.
  /// False (nothing attached) when this kernel has no BPF ring buffers or refuses the program:
  /// perf delivers the probe instead, as if BPF were not allowed.
  private func attachRingProgram(
    _ delivery: RingDelivery, for attachment: Attachment, tracefs: TraceFS, cpus: [Int32]
  ) throws -> Bool {
    guard !bpfRingUnavailable else { return false }
    if bpfRing == nil {
      do {
        ringLost = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
        bpfRing = try BPFRing(bytes: max(session.options.ringPages * 4096 * cpus.count, Self.minimumBPFRingBytes))
      } catch {
        ringLost = nil
        bpfRingUnavailable = true
        return false
      }
    }
    guard let bpfRing, let ringLost, case .tracepoint(let category, let name, _) = attachment.probe.target else { return false }
    let probe = attachment.probe
    let tracepointID = try tracefs.eventID(category: category, name: name)
    let sampleType = Self.sampleType(delivery.sampleFields, counting: false, identified: identifiesSamples)
    // Kernel event ids are small counters: ids with the top bit set cannot collide with them.
    let routeID = 1 << 63 | UInt64(routes.count)
    let program = TracepointDelivery(
      sampleType: sampleType, identifier: routeID, recordSize: delivery.recordSize,
      commonType: UInt16(truncatingIfNeeded: tracepointID), includesComm: delivery.readsComm)
    let loaded: BPFProgram
    do {
      try program.validate()
      loaded = try BPFProgram.loadTracepointProgram(program.instructions(ringFD: bpfRing.map.fd, lostMapFD: ringLost.fd), name: "scry_deliver")
    } catch {
      printToStandardError("WARNING: \(probe.name): delivered through perf instead of BPF: \(error)\n")
      return false
    }
    var counting = PerfEventOptions()
    counting.countingOnly = true
    let event = try PerfEvent.tracepoint(id: tracepointID, description: probe.name, cpu: cpus[0], pid: -1, options: counting)
    try event.attach(loaded)
    events.append(event)
    bpfObjects.append(loaded)
    addRoute(
      id: routeID, to: attachment, sampleType: sampleType, skipPredicate: false,
      commOffset: delivery.readsComm ? program.commOffset : nil)
    return true
  }

  /// 100 ms of records at the rate this kind of machine can make them, with room to spare:
  /// the ring is drained on the loop's clock, not woken per record.
  static let minimumBPFRingBytes = 32 << 20

  /// Each CPU's ring is owned by a `bpf-output` event that samples nothing and reports task
  /// names (COMM, FORK) stamped with their time, so `comm` stays right for processes that exec,
  /// even when an exec and the fork before it land in different CPUs' rings; the sampled events
  /// write into its ring and pay for no field they do not use.
  private func openTaskRecordCarriers(cpus: [Int32]) throws {
    for cpu in cpus where ringOfCPU[cpu] == nil {
      var options = PerfEventOptions()
      options.sampleType = [.time]
      options.recordComm = true
      options.recordTasks = true
      options.wakeupWatermarkBytes = UInt32(clamping: session.options.ringPages * 4096 / 4)
      let carrier = try PerfEvent.software(named: "bpf-output", description: "task records", cpu: cpu, pid: -1, options: options)
      events.append(carrier)
      try share(ringOf: cpu, with: carrier, sampleType: options.sampleType)
    }
  }

  /// A tracepoint whose block reads behind pointer fields: a BPF program copies the record and
  /// the data into one sample when the event fires, and sends it through a `bpf-output` event
  /// per CPU into the same rings as every other event. The program hangs on one tracepoint
  /// event (it runs for hits on every CPU); with `-p` it drops other processes' hits itself.
  private func attachFetchProgram(
    _ pointerFetch: PointerFetch, for attachment: Attachment, tracefs: TraceFS, cpus: [Int32], onlyProcess: Int32?,
    options: PerfEventOptions
  ) throws {
    let probe = attachment.probe
    guard case .tracepoint(let category, let name, _) = probe.target else { return }
    let id = try tracefs.eventID(category: category, name: name)
    let fetch = pointerFetch.kernelFetch(commonType: UInt16(truncatingIfNeeded: id))
    try fetch.validate()
    guard fetch.itemOffsets == pointerFetch.itemOffsets else {
      throw SessionError.failure("\(probe.name): the fetch program lays out its sample differently than the plan")
    }
    let outputs = try BPFMap.perfEventArray(entries: BPFMap.possibleCPUCount())
    let scratch = try BPFMap.perCPUArray(valueSize: fetch.sampleSize, entries: 1)
    var instructions = TracepointFetchProgram.instructions(for: fetch, outputMapFD: outputs.fd, scratchMapFD: scratch.fd)
    if let pid = onlyProcess { instructions = Self.processFilter(pid) + instructions }
    let program = try BPFProgram.loadTracepointProgram(instructions, name: "scry_fetch")
    bpfObjects += [outputs, scratch, program]
    var outputOptions = options
    outputOptions.inherit = false
    for cpu in cpus {
      let output = try PerfEvent.software(named: "bpf-output", description: probe.name, cpu: cpu, pid: -1, options: outputOptions)
      events.append(output)
      try outputs.update(index: UInt32(cpu), fd: output.fd)
      try route(output, cpu: cpu, to: attachment, sampleType: outputOptions.sampleType, skipPredicate: false)
    }
    var tracepointOptions = PerfEventOptions()
    tracepointOptions.countingOnly = true
    let tracepoint = try PerfEvent.tracepoint(id: id, description: probe.name, cpu: cpus[0], pid: -1, options: tracepointOptions)
    events.append(tracepoint)
    try tracepoint.attach(program)
  }

  /// Instructions that end the program (returning 0) unless the current task belongs to process `pid`.
  static func processFilter(_ pid: Int32) -> [BPFInstruction] {
    [
      .mov64(.r6, .r1),
      .call(.getCurrentPidTgid),
      BPFInstruction(opcode: 0x77, dst: .r0, immediate: 32),  // BPF_ALU64 | BPF_RSH | BPF_K: r0 >>= 32
      .jump(.equal, .r0, pid, 2),
      .mov64(.r0, 0),
      .exit,
      .mov64(.r1, .r6),
    ]
  }

  /// A BPF program counting a dynamic probe's hits, when BPF is allowed: cheaper than the
  /// perf counter (see `BPFEventCounter`). nil falls back to perf counters.
  private static func bpfCounter(_ id: UInt64, probe: ResolvedProbe, cpu: Int32, options: PerfEventOptions) -> BPFEventCounter? {
    guard let event = try? PerfEvent.tracepoint(id: id, description: probe.name, cpu: cpu, pid: -1, options: options) else {
      return nil
    }
    return try? BPFEventCounter(attachingTo: event, name: "scry_count")
  }

  private func createDynamicEvent(_ dynamic: DynamicProbe, for probe: ResolvedProbe) throws -> UInt64 {
    if dynamic.isKernel, let tracefs = dynamicEvents?.tracefs, access(tracefs.root + "/kprobe_events", F_OK) != 0 {
      throw SessionError.failure(Self.unsupportedMessage(probe))
    }
    guard let dynamicEvents else { throw SessionError.failure("\(probe.name): tracefs is not available") }
    let id = try dynamicEvents.create(
      definition: dynamic.definition(group: dynamicEvents.group), name: dynamic.name,
      controlFile: dynamic.controlFile, probe: probe.name)
    // The runtime reads fetched values at offsets the planner laid out; check the kernel agrees.
    if !dynamic.fetchArguments.isEmpty,
      let format = try? dynamicEvents.tracefs.format(category: dynamicEvents.group, name: dynamic.name),
      let first = format.fields.first(where: { $0.name == "a0" }), first.offset != dynamic.firstArgumentOffset
    {
      throw SessionError.failure(
        "\(probe.name): the kernel laid out the probe's record differently than expected (a0 at \(first.offset), not \(dynamic.firstArgumentOffset))")
    }
    return id
  }

  private static func locateTraceFS() throws(SessionError) -> TraceFS {
    do { return try TraceFS.locate() } catch { throw .failure("\(error)") }
  }

  /// Each probe takes one fd per CPU: a wildcard over many tracepoints can need thousands.
  /// Raises the soft RLIMIT_NOFILE to the hard limit, and says what to do before opening
  /// anything when even that is too low.
  private static func checkFileLimit(for plan: Plan, cpus: Int) throws(SessionError) {
    let limit = (try? SystemInfo.raiseFileLimit()) ?? 1024
    let needed = plan.attachments.filter { $0.probe.kind.hasEventContext }.count * cpus
    let open = FileSystem.entries(of: "/proc/self/fd").count
    guard needed + open + 16 > limit else { return }
    throw .failure(
      "this program needs about \(needed) file descriptors (one per CPU for each of its \(needed / max(cpus, 1)) probes), "
        + "but this process may open only \(limit): raise the limit (as root: `ulimit -n \(needed + 1024)` and "
        + "`ulimit -Hn` if the hard limit is lower, or LimitNOFILE= for a service), or attach fewer probes")
  }

  /// Every thread of a process, so an existing multi-threaded process is followed whole.
  private static func threads(of pid: Int32) -> [Int32] {
    let tids = FileSystem.entries(of: "/proc/\(pid)/task").compactMap { Int32($0) }.sorted()
    return tids.isEmpty ? (kill(pid, 0) == 0 ? [pid] : []) : tids
  }

  /// Attachments whose events reach the rings; with more than one, samples carry IDENTIFIER.
  static func sampledCount(_ plan: Plan) -> Int {
    plan.attachments.filter { $0.probe.kind.hasEventContext && $0.counting == nil }.count
  }

  /// Each field costs the traced task tens of nanoseconds per event (measured: adding TID and ID
  /// to RAW took a raw_syscalls sample from +390 to +520 ns), so only what is read is asked for.
  static func sampleType(_ fields: SampleFields, counting: Bool, identified: Bool) -> PerfSampleType {
    if counting { return [] }
    var type: PerfSampleType = identified ? [.identifier] : []
    if fields.contains(.tid) { type.insert(.tid) }
    if fields.contains(.time) { type.insert(.time) }
    if fields.contains(.cpu) { type.insert(.cpu) }
    if fields.contains(.ip) { type.insert(.ip) }
    if fields.contains(.period) { type.insert(.period) }
    if fields.contains(.raw) { type.insert(.raw) }
    if fields.contains(.cgroup) { type.insert(.cgroup) }
    return type
  }

  private static func open(
    _ probe: ResolvedProbe, tracefs: TraceFS?, pid: Int32, cpu: Int32, options: inout PerfEventOptions
  ) throws -> PerfEvent {
    switch probe.target {
    case .tracepoint(let category, let name, _):
      guard let tracefs else { throw SessionError.failure("\(probe.name): tracefs is not available") }
      let id = try tracefs.eventID(category: category, name: name)
      return try PerfEvent.tracepoint(id: id, description: probe.name, cpu: cpu, pid: pid, options: options)
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
    default:
      throw SessionError.failure(unsupportedMessage(probe))
    }
  }

  /// Why a probe kind cannot be attached by this build or on this kernel.
  static func unsupportedMessage(_ probe: ResolvedProbe) -> String {
    switch probe.kind {
    case .kprobe, .kretprobe:
      if (try? TraceFS.locate()).map({ access($0.root + "/kprobe_events", F_OK) != 0 }) ?? true {
        var message = "\(probe.name): this kernel has no kprobe support (no kprobe_events in tracefs; CONFIG_KPROBES is off)"
        if case .kernelFunction(let symbol, _) = probe.target, let alternative = tracepointAlternative(symbol) {
          message += "; the tracepoint '\(alternative)' covers similar ground"
        }
        return message
      }
      return "\(probe.name): this build of Scry cannot attach kprobes yet"
    default:
      return "\(probe.name): this build of Scry cannot attach \(probe.kind.rawValue) probes yet"
    }
  }

  /// Tracepoints that cover what a kernel function does, for kernels without kprobes.
  static func tracepointAlternative(_ function: String) -> String? {
    var name = function
    for prefix in ["__x64_sys_", "__arm64_sys_", "ksys_", "do_sys_", "__se_sys_", "sys_"] where name.hasPrefix(prefix) {
      name = String(name.dropFirst(prefix.count))
      break
    }
    if name == "open" || name == "openat2" { name = "openat" }
    guard let tracefs = try? TraceFS.locate(), tracefs.hasEvent(category: "syscalls", name: "sys_enter_" + name) else {
      return nil
    }
    return "tracepoint:syscalls:sys_enter_" + name
  }

  func enable() {
    for event in events { try? event.enable() }
  }

  func disable() {
    for event in events { try? event.disable() }
  }

  /// Samples copied out of one ring during a drain, to be merged with the other rings' by time.
  /// Buffers keep their capacity between drains, so the steady state allocates nothing.
  private final class Staging {
    var bytes: [UInt8] = []
    var entries: [(time: UInt64, route: Int, offset: Int, length: Int)] = []
    var next = 0
    init() { bytes.reserveCapacity(1 << 16) }
  }

  /// One per perf ring, then one for the BPF ring.
  private lazy var staging: [Staging] = (0..<(rings.count + (bpfRing == nil ? 0 : 1))).map { _ in Staging() }
  /// Some block's output order is visible (its samples carry time): merge the rings by timestamp.
  private lazy var mergesByTime: Bool = staging.count > 1 && routes.contains { $0.timeOffset != nil }

  /// When the previous drain started: every sample stamped before it has been published by now.
  private var previousDrainStart: UInt64 = 0

  /// Runs the action of every sample waiting in the rings. When order is observable, samples of
  /// all CPUs are merged by their CLOCK_MONOTONIC time before the actions run. A sample stamped
  /// after the previous drain began may still have an earlier sample on another CPU that is not
  /// yet visible, so it waits for the next drain; `final` (at detach) runs everything.
  func drain(final: Bool = false) {
    let merging = mergesByTime
    let cutoff = final ? UInt64.max : previousDrainStart
    previousDrainStart = Clock.monotonicNanoseconds()
    for (index, ring) in rings.enumerated() {
      let stage = staging[index]
      let taskTimeFromEnd = taskRecordTimeFromEnd[index]
      ring.drain { record in
        if record.type == PerfRecordType.comm || record.type == PerfRecordType.fork {
          var time: UInt64 = 0
          if let fromEnd = taskTimeFromEnd, record.body.count >= fromEnd {
            time = record.body.loadUnaligned(fromByteOffset: record.body.count - fromEnd, as: UInt64.self)
            // A task record merged by its time names the samples before it by the old name.
            if merging {
              let marker = record.type == PerfRecordType.comm ? Self.commMarker : Self.forkMarker
              stage.entries.append((time, marker, stage.bytes.count, record.body.count))
              stage.bytes.append(contentsOf: record.body)
              return
            }
          }
          apply(record, time: time)
          return
        }
        switch record.type {
        case PerfRecordType.sample:
          take(record.body, merging: merging, into: stage)
        // EXIT records are not acted on: an exited task keeps its name, since samples still
        // waiting in other rings may name it, until its id is reused (a later FORK or COMM).
        case PerfRecordType.lost, PerfRecordType.lostSamples:
          if let lost = PerfLostRecord(record) { perfLost &+= lost.lost }
        default:
          break
        }
      }
    }
    if let bpfRing {
      let stage = staging[rings.count]
      bpfRing.drain { body in take(body, merging: merging, into: stage) }
    }
    if merging { dispatchMerged(upTo: cutoff) }
    machine.raw = nil
    machine.rawSize = 0
    machine.eventComm = nil
  }

  /// A sample body (perf's or the BPF ring's, laid out alike): run now, or staged for the merge.
  @inline(__always)
  private func take(_ body: UnsafeRawBufferPointer, merging: Bool, into stage: Staging) {
    guard let route = self.route(ofID: body.count >= 8 ? body.loadUnaligned(as: UInt64.self) : 0) else { return }
    if merging, let offset = routes[route].timeOffset, offset + 8 <= body.count {
      stage.entries.append((body.loadUnaligned(fromByteOffset: offset, as: UInt64.self), route, stage.bytes.count, body.count))
      stage.bytes.append(contentsOf: body)
    } else {
      dispatch(body, route: routes[route])
    }
  }

  @inline(__always)
  private func route(ofID id: UInt64) -> Int? {
    if !identifiesSamples { return routes.isEmpty ? nil : 0 }
    if routeIDs.count > 16 { return routeByID[id] }
    return routeIDs.withUnsafeBufferPointer { ids in ids.firstIndex(of: id) }
  }

  /// Staged task records, told from samples by these route numbers.
  private static let commMarker = -1
  private static let forkMarker = -2

  /// A COMM or FORK record stamped `time` (0: unknown).
  private func apply(_ record: PerfRecord, time: UInt64) {
    if record.type == PerfRecordType.comm, let comm = PerfCommRecord(record) {
      processTable.update(tid: comm.tid, pid: comm.pid, name: comm.name, time: time)
    } else if record.type == PerfRecordType.fork, let task = PerfTaskRecord(record) {
      processTable.inherit(tid: task.tid, pid: task.pid, from: task.ptid, time: time)
    }
  }

  /// Runs the staged samples of every ring stamped up to `cutoff`, in time order (each ring is
  /// already in order), and keeps the rest for the next drain.
  private func dispatchMerged(upTo cutoff: UInt64) {
    while true {
      var best = -1
      var bestTime = UInt64.max
      for (index, stage) in staging.enumerated() where stage.next < stage.entries.count {
        let time = stage.entries[stage.next].time
        if time <= cutoff && (best < 0 || time < bestTime) {
          best = index
          bestTime = time
        }
      }
      guard best >= 0 else { break }
      let stage = staging[best]
      let entry = stage.entries[stage.next]
      stage.next += 1
      stage.bytes.withUnsafeBytes {
        let body = UnsafeRawBufferPointer(rebasing: $0[entry.offset..<entry.offset + entry.length])
        if entry.route < 0 {
          apply(
            PerfRecord(type: entry.route == Self.commMarker ? PerfRecordType.comm : PerfRecordType.fork, misc: 0, body: body),
            time: entry.time)
        } else {
          dispatch(body, route: routes[entry.route])
        }
      }
    }
    for stage in staging where stage.next > 0 {
      let keptFrom = stage.next < stage.entries.count ? stage.entries[stage.next].offset : stage.bytes.count
      stage.entries.removeSubrange(0..<stage.next)
      stage.bytes.removeSubrange(0..<keptFrom)
      for i in stage.entries.indices { stage.entries[i].offset -= keptFrom }
      stage.next = 0
    }
  }

  /// Loads one sample into the machine and runs its block's action.
  private func dispatch(_ body: UnsafeRawBufferPointer, route: Route) {
    guard let sample = route.decoder.decode(body) else { return }
    samplesRead &+= 1
    machineRef.with { machine in
      machine.raw = sample.raw.baseAddress
      machine.rawSize = sample.raw.count
      if route.tidFromRecord, sample.raw.count >= 8 {
        let tid = sample.raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        machine.tid = tid
        machine.pid = processTableRef.with { $0.processID(of: tid) }
      } else {
        machine.pid = sample.pid
        machine.tid = sample.tid
      }
      machine.cpu = sample.cpu
      machine.time = sample.time
      machine.ip = sample.ip
      machine.cgroup = sample.cgroup
      if let offset = route.commOffset, offset + 16 <= body.count {
        machine.eventComm = body.baseAddress! + offset
      } else {
        machine.eventComm = nil
      }
      machine.probeName = route.probeName
      route.action.with { $0.run(machine, skipPredicate: route.skipPredicate) }
    }
  }

  /// Folds the kernel's counters into their maps: counts read at exit or at each `print`.
  func counterFolder() -> ((Machine) -> Void)? {
    guard !counters.isEmpty else { return nil }
    let plan = session.plan
    let maps = session.maps
    var totals: [(attachment: Int, counts: [() -> UInt64])] = []
    for (attachment, count) in counters {
      if let i = totals.firstIndex(where: { $0.attachment == attachment }) { totals[i].counts.append(count) } else {
        totals.append((attachment, [count]))
      }
    }
    var folded: [Int: UInt64] = [:]
    return { [session] _ in
      for (attachment, counts) in totals {
        let total = counts.reduce(UInt64(0)) { $0 &+ $1() }
        let delta = total &- (folded[attachment] ?? 0)
        folded[attachment] = total
        guard delta > 0, let target = plan.attachments[attachment].counting else { continue }
        let map = maps[target.mapIndex]
        var key = [UInt8](repeating: 0, count: map.keySize)
        if target.isKeyedByProbe {
          let name = Array(plan.attachments[attachment].probe.name.utf8.prefix(max(0, map.keySize - 1)))
          key.replaceSubrange(0..<name.count, with: name)
        }
        key.withUnsafeBytes { keyBytes in
          let pointer = keyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
          let hash = MapStorage.hash(pointer, count: map.keySize)
          guard let value = map.lookup(key: pointer, hash: hash, insert: true) else { return }
          value.storeBytes(of: value.loadUnaligned(as: UInt64.self) &+ delta, as: UInt64.self)
        }
      }
      _ = session
    }
  }
}

extension PointerFetch {
  /// The plan's fetch as the kernel layer builds its program.
  func kernelFetch(commonType: UInt16) -> TracepointFetch {
    let items = items.map { item -> TracepointFetch.Item in
      switch item {
      case .string(let offset, let maxLength, let user): return .string(pointerOffset: offset, maxLength: maxLength, userMemory: user)
      case .stringArray(let offset, let count, let length): return .stringArray(pointerOffset: offset, maxCount: count, maxLength: length)
      }
    }
    return TracepointFetch(recordSize: recordSize, items: items, commonType: commonType)
  }
}
