import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// One run of a plan: its maps, compiled actions, attachments and output.
/// `run()` attaches, runs BEGIN, the event loop, END, prints the maps and releases every
/// kernel object, on every way out (exit(), end of the traced command, SIGINT, SIGTERM, errors).
public final class Session {
  public let plan: Plan
  let options: SessionOptions
  let output: OutputBuffer
  public let maps: [MapStorage]
  let machine: Machine
  let actions: [Action]
  /// Samples handed to actions so far (set once event sources exist), for tests and statistics.
  var samplesRead: () -> UInt64 = { 0 }
  /// BPF programs may be loaded: they fetch tracepoints' pointer data (else it is read from the
  /// process), deliver system-wide tracepoints through one BPF ring, and count dynamic probes.
  let usesBPF: Bool
  /// Served from the event loop between events (see `LoopService`); none for a plain run.
  public var services: [any LoopService] = []
  /// The run ended on SIGHUP for a reload (`SessionOptions.reloadsOnHangup`): detached, without
  /// END or the maps printed; the caller starts the next session (see `adoptMaps`).
  public private(set) var endedForReload = false
  /// The output fd is this session's own (`-o FILE`), closed with it; shared ones are not.
  var closesOutput = false

  public convenience init(plan: Plan, options: SessionOptions) throws(SessionError) {
    let maps = plan.maps.map { MapStorage(info: $0, maxEntries: $0.maxEntries ?? options.maxMapEntries) }
    Self.prepare(maps, of: plan)
    let usesBPF = Self.usesBPF(plan, options: options)
    var binder = ActionBinder(maps: maps, readsPointersInProcess: !usesBPF, variablesSize: plan.variablesSize)
    binder.helperChecks = options.helperChecks
    binder.source = plan.source
    let fd: Int32
    if let path = options.outputPath {
      // A reloaded program writes after what the previous one wrote.
      fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (options.appendsOutput ? O_APPEND : O_TRUNC), 0o644)
      if fd < 0 { throw .failure("cannot open output file '\(path)': \(String(cString: strerror(errno)))") }
    } else {
      fd = 1
    }
    let output = OutputBuffer(fd: fd, format: options.format)
    let machine = Machine(
      maps: maps, output: output, variablesSize: plan.variablesSize, positionals: options.positionals,
      allowsUnsafe: options.allowsUnsafe)
    machine.catBytesMax = options.catBytesMax
    machine.flushesEachEvent = options.flushesEachEvent
    self.init(
      plan: plan, options: options, maps: maps, machine: machine, actions: plan.actions.map { binder.bind($0) },
      usesBPF: usesBPF)
    closesOutput = options.outputPath != nil
  }

  /// A session made of given parts: the REPL's sessions share one machine, output and set of maps.
  init(plan: Plan, options: SessionOptions, maps: [MapStorage], machine: Machine, actions: [Action], usesBPF: Bool) {
    self.plan = plan
    self.options = options
    self.maps = maps
    self.machine = machine
    self.output = machine.output
    self.actions = actions
    self.usesBPF = usesBPF
  }

  /// Fresh maps as a run starts them: the plan's histogram style, and bpftrace's `@: 0` for a
  /// keyless count even before its first event.
  static func prepare(_ maps: [MapStorage], of plan: Plan) {
    for map in maps { map.histogramStyle = plan.histogramStyle }
    for map in maps where map.keySize == 0 && map.info.valueType == .aggregate(.count) {
      _ = map.lookup(key: UnsafeRawPointer(bitPattern: 8)!, hash: MapStorage.hash(UnsafeRawPointer(bitPattern: 8)!, count: 0), insert: true)
    }
  }

  /// Whether the plan's BPF programs may be loaded. Data behind tracepoint pointers is copied by a
  /// BPF program; without BPF it is read from the process after the event, which a process that
  /// exits or reuses the buffer can defeat.
  static func usesBPF(_ plan: Plan, options: SessionOptions) -> Bool {
    guard options.allowsBPF else { return false }
    guard plan.attachments.contains(where: { $0.pointerFetch != nil || $0.ringDelivery != nil || $0.dynamicProbe != nil })
    else { return true }
    guard let refusal = BPFProgram.loadingRefusal() else { return true }
    if plan.attachments.contains(where: { $0.pointerFetch != nil }) {
      printToStandardError(
        "WARNING: cannot load BPF programs (\(refusal.errnoText)): strings behind pointers are read from the process after the event, best-effort\n")
    }
    return false
  }

  deinit {
    output.flush()
    if closesOutput { close(output.fd) }
    for bytes in probeNames.values { bytes.deallocate() }
  }

  /// Runs to the end and returns the exit status.
  public func run() -> Int32 {
    let loop: EventLoop
    do {
      try prepareOnDemandCaptures()
    } catch {
      printToStandardError("ERROR: \(error)\n")
      return 1
    }
    do {
      loop = try EventLoop(session: self)
    } catch {
      output.flush()
      printToStandardError("ERROR: \(error)\n")
      return 1
    }
    do {
      try loop.enableEvents()
    } catch {
      loop.abandon()
      output.flush()
      printToStandardError("ERROR: \(error)\n")
      return 1
    }
    if options.announcesProbes { output.attachedProbes(plan.attachments.count) }
    output.flush()
    let status = loop.run()
    loop.detach()
    if loop.reloadRequested {
      output.flush()
      reportDiscarded(by: loop)
      endedForReload = true
      return 0
    }
    // END blocks read counted maps whole: fold the kernel's counters in before they run (and
    // after, for what END added; folding takes each counter's growth since the last fold).
    machine.foldCounters?(machine)
    runSpecial(.end)
    machine.foldCounters?(machine)
    if options.foldsStacks {
      FoldedStacks.print(maps, to: output) { printToStandardError("WARNING: " + $0 + "\n") }
    } else if plan.printsMapsAtExit && options.printsMapsOnExit {
      MapPrinter.printAtExit(maps, to: output)
    }
    if let path = options.flameGraphPath { writeFlameGraph(to: path) }
    output.flush()
    for service in services { service.finish { metricsSnapshot(run: loop.runStatistics()) } }
    warnAboutFullMaps()
    let lost = loop.lostEvents
    if options.printsStatistics {
      printToStandardError("Read \(samplesRead()) samples from the rings; lost \(lost); discarded \(loop.discardedEvents)\n")
    }
    let lostTaskRecords = loop.lostTaskRecords
    if lostTaskRecords > 0 {
      printToStandardError(
        "WARNING: \(lostTaskRecords) task records (exec, fork, mmap) were lost: names of some tasks may be stale\n")
    }
    if lost > 0 {
      printToStandardError("Lost \(lost) events\n")
    }
    reportDiscarded(by: loop)
    let failedReads = maps.reduce(loop.failedReads &+ machine.failedProcessReads &+ onDemandFailedReads) { $0 &+ $1.kernelFailedReads }
    if failedReads > 0 {
      printToStandardError(
        "WARNING: \(failedReads) reads of memory failed (an unmapped address, or a process already gone): they read as 0 or empty\n")
    }
    // Discarded events are no failure: the user asked the run to stop before they ran.
    if (lost > 0 || lostTaskRecords > 0) && options.failOnLost { return 1 }
    return status ?? machine.exitCode
  }

  /// Says on stderr how many events a stop dropped unrun, and which signal it was.
  func reportDiscarded(by loop: EventLoop) {
    let discarded = loop.discardedEvents
    guard discarded > 0 else { return }
    let stop = loop.stopSignal.map { signal in
      " at " + (Signal.table.first { $0.number == signal }.map { "SIG" + $0.name } ?? "signal \(signal)")
    } ?? ""
    printToStandardError("Discarded \(discarded) events still queued\(stop)\n")
  }

  /// Takes over the contents of `previous`'s maps of the same name and layout (a reload: the
  /// counters go on instead of starting again).
  public func adoptMaps(from previous: Session) {
    LiveSession.copyMaps(from: previous.maps, to: maps)
  }

  /// Draws the maps keyed by stacks into an SVG file at `path`, and says so.
  func writeFlameGraph(to path: String) {
    let stacks = FoldedStacks.stacks(of: maps) { _ in }
    guard !stacks.isEmpty else {
      printToStandardError("WARNING: no map keyed by stacks has samples: no flame graph written to \(path)\n")
      return
    }
    let title = plan.actions.map(\.header).joined(separator: ", ")
    do {
      try FileSystem.createFile(path, FlameGraph.svg(stacks, title: "Flame graph: " + title))
      let total = stacks.reduce(UInt64(0)) { $0 &+ $1.count }
      printToStandardError("Wrote a flame graph of \(total) samples to \(path)\n")
    } catch {
      printToStandardError("ERROR: cannot write the flame graph: \(error)\n")
    }
  }

  /// Says on stderr which maps dropped inserts because they were full, and how many.
  func warnAboutFullMaps() {
    for map in maps {
      if let warning = map.fullWarning { printToStandardError(warning + "\n") }
    }
  }

  /// Runs every BEGIN or END block, in source order.
  func runSpecial(_ kind: ProbeKind) {
    for (index, attachment) in plan.attachments.enumerated() where attachment.probe.kind == kind {
      runInProcess(index)
      output.flush()
      if kind == .begin && machine.exitRequested { return }
    }
  }

  /// Runs the block of a BEGIN, END or interval attachment, which has no kernel event: what it
  /// reads at the event (`curtask->…`) is read first, on this thread (see `OnDemandCapture`).
  func runInProcess(_ index: Int) {
    let attachment = plan.attachments[index]
    machine.resetEvent()
    setProbeName(attachment.probe.name)
    if !attachment.eventReads.isEmpty {
      do {
        try onDemandCapture(index).load(into: machine)
        reportFailedReads(of: attachment)
      } catch {
        printToStandardError("ERROR: \(attachment.probe.name): cannot read what the block reads at its event: \(error)\n")
        machine.exitCode = 1
        machine.exitRequested = true
        return
      }
    }
    actions[attachment.blockIndex].run(machine)
  }

  /// The capture programs of the blocks Scry runs itself, by attachment index, made on first use.
  private var onDemandCaptures: [Int: OnDemandCapture] = [:]

  func onDemandCapture(_ index: Int) throws(KernelError) -> OnDemandCapture {
    if let made = onDemandCaptures[index] { return made }
    let made = try OnDemandCapture(reads: plan.attachments[index].eventReads, reportsFailures: reportsFailedReads)
    onDemandCaptures[index] = made
    return made
  }

  /// Loads every capture program of the blocks Scry runs itself, so a kernel that refuses one
  /// stops the run before anything is attached.
  func prepareOnDemandCaptures() throws(KernelError) {
    for (index, attachment) in plan.attachments.enumerated() where !attachment.eventReads.isEmpty {
      if !attachment.probe.kind.hasEventContext { _ = try onDemandCapture(index) }
    }
  }

  /// `-kk`: the capture programs say which of their reads failed, and the run says where they are written.
  var reportsFailedReads: Bool { options.helperChecks >= 2 }

  /// bpftrace's helper error for each read of the event in the machine's RAW that failed.
  func reportFailedReads(of attachment: Attachment) {
    guard reportsFailedReads, let raw = machine.raw, !attachment.eventReadSites.isEmpty,
      attachment.eventReadFailureCodesOffset + attachment.eventReadSites.count <= machine.rawSize
    else { return }
    HelperErrors.report(
      codes: raw + attachment.eventReadFailureCodesOffset, sites: attachment.eventReadSites, source: plan.source, to: output)
  }

  /// Failed reads of the blocks Scry runs itself.
  var onDemandFailedReads: UInt64 { onDemandCaptures.values.reduce(0) { $0 &+ $1.failedReads } }

  /// Probe names live as long as the session, so the machine can point at their bytes.
  private var probeNames: [String: UnsafeMutableRawBufferPointer] = [:]

  func setProbeName(_ name: String) {
    machine.probeName = UnsafeRawBufferPointer(probeNameBytes(name))
  }

  func probeNameBytes(_ name: String) -> UnsafeMutableRawBufferPointer {
    if let bytes = probeNames[name] { return bytes }
    let utf8 = Array(name.utf8)
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(utf8.count, 1), alignment: 1)
    bytes.copyBytes(from: utf8)
    probeNames[name] = UnsafeMutableRawBufferPointer(rebasing: bytes[0..<utf8.count])
    return probeNames[name]!
  }

  func action(_ index: Int) -> Action { actions[index] }
}

func printToStandardError(_ text: String) {
  let bytes = Array(text.utf8)
  _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
