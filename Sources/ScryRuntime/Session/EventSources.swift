import ScryKernel
import ScryLanguage
import ScryPlan

/// The kernel side of a session: every event the plan attaches, through the delivery each
/// attachment's facts choose (see `AttachmentFacts`), and the drain that routes their records to
/// the actions. Owns every fd and mapping it opens; they are released when it is released, on
/// every way out of the session.
final class EventSources {
  private let context: AttachContext
  private let perfRings = PerfRingDelivery()
  private let bpfRing = BPFRingDelivery()
  private let counting = CountingDelivery()
  private lazy var fetch = BPFFetchDelivery(perfRings: perfRings)
  private lazy var syscallCarriers = SyscallCarrierDelivery(counting: counting, bpfRing: bpfRing)
  private lazy var watchpoints = WatchpointDelivery(perfRings: perfRings)
  /// The uprobes and kprobes this session created in tracefs; removed after the events are closed.
  private var dynamicEvents: DynamicEvents?
  /// Set once everything is attached; nil again at teardown, before the events close.
  private var ringDrain: RingDrain?

  var pollFDs: [Int32] { perfRings.rings.map { $0.event.fd } + watchpoints.pollFDs }
  /// Whether samples reach Scry through a ring. Without one (every probe counted in the kernel)
  /// nothing waits to be drained between signals and timers: task records alone wake Scry at
  /// their ring's watermark, and every print drains them first.
  var deliversThroughRings: Bool { perfRings.carriesSamples || bpfRing.ring != nil || !watchpoints.pollFDs.isEmpty }
  /// Samples handed to actions, for tests and `--stats`.
  var samplesRead: UInt64 { context.dispatcher.samplesRead }

  /// Events lost so far, perf's and the BPF ring's. Perf's own per-event counts are exact; the
  /// LOST records a ring carries are a floor (one comes only once a later record fits) that also
  /// counts the task records lost in that ring, which are no events: those are taken off.
  var lostEvents: UInt64 {
    guard let ringDrain else { return 0 }
    let taskRecords = perfRings.lostTaskRecords
    let perf = Swift.max(perfRings.lostSamples, ringDrain.perfLost &- Swift.min(ringDrain.perfLost, taskRecords))
    do {
      return try bpfRing.lostRecords() &+ perf
    } catch {
      printToStandardError("WARNING: cannot read the BPF ring's lost count: \(error)\n")
      return perf
    }
  }

  /// Reads of memory at the event that failed (an unmapped address): their values were 0.
  var failedReads: UInt64 { (try? bpfRing.failedReads()) ?? 0 }

  /// Task records (COMM, FORK, MMAP2) lost: counted apart, since no event was lost with them.
  var lostTaskRecords: UInt64 { perfRings.lostTaskRecords }

  init(session: Session, tracedPid: Int32?) throws(SessionError) {
    let plan = session.plan
    let cpus = SystemInfo.onlineCPUs()
    try FileDescriptorLimit.check(for: plan, cpus: cpus.count)
    let needsTraceFS = plan.attachments.contains { $0.probe.kind == .tracepoint || $0.dynamicProbe != nil }
    let tracefs: TraceFS?
    do { tracefs = needsTraceFS ? try TraceFS.locate() : nil } catch { throw SessionError(error) }
    if let tracefs, plan.attachments.contains(where: { $0.dynamicProbe != nil }) {
      dynamicEvents = DynamicEvents(tracefs: tracefs)
    }
    // The REPL's blocks share one machine, and so one table of task names.
    let dispatcher = RecordDispatcher(
      machine: session.machine, processTable: session.machine.processTable ?? ProcessTable(), identifiesSamples: AttachmentFacts.identifiesSamples(plan))
    context = AttachContext(session: session, cpus: cpus, tracefs: tracefs, dispatcher: dispatcher)
    do {
      try attachAll(plan, options: session.options, usesBPF: session.usesBPF, tracedPid: tracedPid)
    } catch {
      throw SessionError(error)
    }
    ringDrain = RingDrain(
      dispatcher: dispatcher, perfRings: perfRings.rings, taskRecordTimeFromEnd: perfRings.taskRecordTimeFromEnd,
      bpfRing: bpfRing.ring)
    session.machine.processTable = dispatcher.processTable
  }

  private func attachAll(_ plan: Plan, options: SessionOptions, usesBPF: Bool, tracedPid: Int32?) throws {
    let facts = AttachmentFacts.describe(plan, options: options)
    if plan.attachments.indices.contains(where: { Self.needsTaskRecords(plan.attachments[$0], on: facts[$0], usesBPF: usesBPF) }) {
      try perfRings.openTaskRecordCarriers(in: context)
    }
    if usesBPF && facts.values.contains(where: { $0.carrier != nil }) { syscallCarriers.prepare(facts) }
    for index in Self.attachOrder(plan, facts: facts, usesBPF: usesBPF) {
      let attachment = plan.attachments[index]
      guard let fact = facts[index] else { continue }
      var path = usesBPF ? fact.path : fact.fallback
      // A probe the capture program serves is a uprobe_multi link or a uprobe PMU event, not a
      // tracefs event; so is a keyed count's on a uprobe.
      // A keyed count on a tracepoint, software or timer event needs no dynamic probe at all.
      // So does a whole count on a uprobe (a kprobe's is counted on its tracefs event).
      let ownProbe = path.makesItsOwnProbe
        || (path == .bpfCounter && (attachment.counting?.key != nil || attachment.dynamicProbe?.binaryPath != nil))
      var request = try makeRequest(
        index, attachment, options: options, tracedPid: tracedPid, inTraceFS: !ownProbe, counts: path.counts)
      try Self.requireCapture(of: plan.blocks[attachment.blockIndex], on: path, for: attachment, options: options)
      if WatchpointDelivery.serves(attachment) {
        try watchpoints.attach(request, in: context)
        continue
      }
      if usesBPF, let carried = fact.carrier {
        if try syscallCarriers.attach(request, carried, path: path, in: context) { continue }
        // Not carried: the path behind the carrier's process test would keep every process's hits.
        if carried.followsProcess { path = fact.fallback }
      }
      if try delivery(for: path).attach(request, path: path, in: context) { continue }
      try Self.requireCapture(of: plan.blocks[attachment.blockIndex], on: fact.fallback, for: attachment, options: options)
      if fact.fallback.counts != path.counts {
        // Counted per key in the kernel, else sampled: the events then carry samples.
        request.options = perfOptions(for: attachment, options: options, counts: fact.fallback.counts)
      }
      // Carriers open now if nothing needed them before (then no ring exists yet, so each CPU gets one).
      if Self.needsTaskRecords(attachment, on: fact, usesBPF: false) { try perfRings.openTaskRecordCarriers(in: context) }
      if request.dynamicID == nil, let dynamic = attachment.dynamicProbe {
        request.dynamicID = try ProbeEvents.createDynamicEvent(dynamic, for: attachment.probe, in: dynamicEvents)
      }
      guard try delivery(for: fact.fallback).attach(request, path: fact.fallback, in: context) else {
        throw SessionError.failure("\(attachment.probe.name): could not be attached by \(fact.fallback) either")
      }
    }
  }

  /// Whether an attachment's records need the task records (COMM, FORK, MMAP2 of every task, one
  /// carrier per CPU) to name the tasks and mappings they come from. A count in the kernel takes
  /// the name at the event and needs none, unless its key holds a user stack; a carrier would cost
  /// Scry a wakeup and a drain of every task's records every 100 ms (1 ms of CPU a second here).
  static func needsTaskRecords(_ attachment: Attachment, on fact: AttachmentFact?, usesBPF: Bool) -> Bool {
    guard attachment.probe.kind.hasEventContext, !attachment.isCountedOnly, let fact else { return false }
    let path = usesBPF ? fact.path : fact.fallback
    guard path == .bpfCounter else { return true }
    if case .stacks(let parts)? = attachment.counting?.key?.source { return parts.hasUserStack }
    return false
  }

  /// The order that makes blocks of one event run in script order, as bpftrace runs them: the
  /// kernel runs a tracepoint's BPF programs in the order they were attached, but hands a record
  /// to its perf events newest first, and calls a uprobe's consumers newest first (each link or
  /// uprobe PMU event is a consumer of its own), as it calls the perf events of one software
  /// event (page faults, context switches) newest first, each with its own program. So tracepoint
  /// and timer programs attach in script order, uprobe and software programs and perf events in
  /// reverse.
  static func attachOrder(_ plan: Plan, facts: [Int: AttachmentFact], usesBPF: Bool) -> [Int] {
    var inOrder: [Int] = []
    var newestFirst: [Int] = []
    for index in plan.attachments.indices {
      guard let fact = facts[index] else { continue }
      switch usesBPF ? fact.path : fact.fallback {
      case .bpfRing, .bpfFetch, .bpfCounter:
        switch plan.attachments[index].probe.kind {
        case .uprobe, .uretprobe, .usdt, .software, .watchpoint, .asyncwatchpoint: newestFirst.append(index)
        default: inOrder.append(index)
        }
      case .perfRing, .perfCounter: newestFirst.append(index)
      }
    }
    // Blocks in reverse, but the probes one block's wildcard matched in their own order, as
    // bpftrace attaches them: a running process's first event comes from the first match.
    let reversedBlocks = newestFirst.sorted { a, b in
      let (blockA, blockB) = (plan.attachments[a].blockIndex, plan.attachments[b].blockIndex)
      return blockA != blockB ? blockA > blockB : a < b
    }
    return inOrder + reversedBlocks
  }

  /// Stacks are copied at the event by the capture program, or by perf (PERF_SAMPLE_CALLCHAIN) on
  /// the perf ring; a path with neither would give empty stacks, so the run stops with the reason.
  static func requireCapture(
    of block: BlockNeeds, on path: DeliveryPath, for attachment: Attachment, options: SessionOptions
  ) throws(SessionError) {
    if attachment.readsMemoryOnlyAtTheEvent, case .bpfRing = path {
    } else if attachment.readsMemoryOnlyAtTheEvent, path == .bpfCounter, attachment.counting?.key != nil {
    } else if attachment.readsMemoryOnlyAtTheEvent {
      throw .failure(
        "\(attachment.probe.name): memory behind pointers (a tracepoint's pointer fields, curtask, a USDT argument at an indexed address) is read by Scry's BPF"
          + " capture program, which this run cannot use here (--no-bpf, -p, a per-task predicate, or BPF refused)")
    }
    guard block.kernelStackDepth > 0 || block.userStackDepth > 0 else { return }
    switch path {
    case .bpfRing, .perfRing: return
    case .bpfCounter where attachment.counting?.key?.stacks != nil: return
    default:
      throw .failure("\(attachment.probe.name): kstack and ustack are not copied together with the data behind pointers yet (read the strings in another block)")
    }
  }

  private func delivery(for path: DeliveryPath) -> any EventDelivery {
    switch path {
    case .perfRing: perfRings
    case .perfCounter, .bpfCounter: counting
    case .bpfRing: bpfRing
    case .bpfFetch: fetch
    }
  }

  /// The perf options of an attachment's events: counting, or sampling what its block reads.
  private func perfOptions(for attachment: Attachment, options: SessionOptions, counts: Bool) -> PerfEventOptions {
    var perf = PerfEventOptions()
    perf.sampleType = AttachmentFacts.sampleType(
      attachment.sampleFields, counting: counts, identified: context.dispatcher.identifiesSamples)
    perf.countingOnly = counts
    // Stacks on the perf path (--no-bpf, per-task probes): perf's callchain, only the sides read.
    let block = context.session.plan.blocks[attachment.blockIndex]
    perf.callchainKernel = block.kernelStackDepth > 0
    perf.callchainUser = block.userStackDepth > 0
    // perf counts the frames of both sides against one bound.
    perf.callchainDepth = UInt16(clamping: block.kernelStackDepth + block.userStackDepth)
    perf.wakeupWatermarkBytes = UInt32(clamping: options.ringPages * 4096 / 4)
    return perf
  }

  /// The threads to follow, the perf options and the dynamic event of one attachment.
  private func makeRequest(
    _ index: Int, _ attachment: Attachment, options: SessionOptions, tracedPid: Int32?, inTraceFS: Bool, counts: Bool
  ) throws -> AttachRequest {
    let probe = attachment.probe
    var perf = perfOptions(for: attachment, options: options, counts: counts)
    // Per-task events are still opened once per CPU: the kernel maps no ring for an inherited
    // event on "any CPU", and per-CPU events can share that CPU's ring.
    let followed: [Int32]?
    var followedProcess = tracedPid
    switch attachment.scope {
    case .systemWide:
      // `-p` limits every probe to the process; `-c` traces system-wide (as bpftrace does)
      // unless the predicate pins the events to the child.
      followed = options.targetPid != nil ? tracedPid.map(ProbeEvents.threads(of:)) : nil
    case .tracedProcess:
      guard let pid = tracedPid else { throw SessionError.failure("\(probe.name): no process to follow (use -p or -c)") }
      followed = ProbeEvents.threads(of: pid)
    case .process(let pid):
      followed = ProbeEvents.threads(of: pid)
      followedProcess = pid
      if followed?.isEmpty ?? true { throw SessionError.failure("\(probe.name): no process with pid \(pid) to follow") }
    }
    perf.inherit = followed != nil
    // A uprobe or kprobe is created once in tracefs, then opened per CPU like a tracepoint.
    let dynamicID = try attachment.dynamicProbe.flatMap { dynamic in
      inTraceFS ? try ProbeEvents.createDynamicEvent(dynamic, for: probe, in: dynamicEvents) : nil
    }
    return AttachRequest(
      index: index, attachment: attachment, followed: followed, followedProcess: followedProcess,
      dynamicID: dynamicID, options: perf)
  }

  deinit {
    // Rings unmap before their events close, and the kernel keeps a dynamic event while a
    // perf event uses it: close those first.
    ringDrain = nil
    // First: no task is stopped by a watchpoint's uprobe after this, and a stopped one goes on.
    watchpoints.release()
    counting.release()
    syscallCarriers.release()
    perfRings.release()
    fetch.release()
    bpfRing.release()
    PerfEvent.closeAll(context.events)
    context.events.removeAll()
    context.kernelObjects.removeAll()
    for failure in dynamicEvents?.removeAll() ?? [] { printToStandardError("WARNING: \(failure)\n") }
  }

  /// Starts every event; the first that the kernel refuses to enable stops the run.
  func enable() throws(SessionError) {
    for event in context.events {
      do { try event.enable() } catch { throw SessionError(error) }
    }
  }

  /// Stops every event before the final drain. A failure is harmless here: the event keeps
  /// writing into its ring until it is closed, and the drain reads what it wrote.
  func disable() {
    for event in context.events { try? event.disable() }
    counting.stop()
  }

  /// Runs the action of every record waiting in the rings (see `RingDrain`).
  func drain(final: Bool = false) {
    // Breakpoints asked for since the last drain are opened (and their routes added) first; the
    // tasks their uprobes stopped go on after the actions have run.
    guard let ringDrain else { return }
    watchpoints.openRequested(in: context)
    ringDrain.drain(final: final)
    // Samples stamped after the previous drain began wait for the next one (see `RingDrain`);
    // a stopped task's hits all came before this drain began, so a second pass runs them all.
    if watchpoints.holdsStoppedTasks && !final { ringDrain.drain() }
    watchpoints.settle(in: context)
  }

  /// Drops what is still queued, running no action; returns how many samples that was.
  func discardRemaining() -> UInt64 {
    ringDrain?.discardRemaining() ?? 0
  }

  /// Events each counting attachment's kernel counter has counted so far, by attachment index.
  func countedEvents() -> [Int: UInt64] { counting.eventCounts() }
  /// The same as of the last fold: what the maps hold.
  var foldedEvents: [Int: UInt64] { counting.foldedCounts }

  /// Folds the kernel's counters into their maps: counts read at exit or at each `print`.
  func counterFolder(plan: Plan, maps: [MapStorage]) -> ((Machine) -> Void)? {
    counting.folder(plan: plan, maps: maps)
  }
}
