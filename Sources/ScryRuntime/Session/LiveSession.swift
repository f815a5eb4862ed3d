import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// The runtime side of the REPL: one program that grows block by block while it runs.
///
/// Each block with events or timers runs on its own event loop (`BlockRun`), sharing the
/// session's machine, maps and output. A change (a block added or detached) is compared with the
/// running program (`BlockChange`): blocks whose plan is unchanged keep running with their kernel
/// objects, removed or changed blocks are detached, added or changed ones attached. Where the maps
/// cannot carry over (a map changed its type) every block is attached again, and the user is told.
/// Waiting goes through one epoll holding the caller's input fd, a signalfd and each block's epoll,
/// so events keep flowing while the user types. Invariant: every run's session shares `session`'s machine.
public final class LiveSession {
  /// Why `wait` returned.
  public enum Wake: Equatable, Sendable {
    /// The input fd is readable.
    case input
    /// SIGINT (Ctrl-C).
    case interrupt
    /// SIGTERM or SIGHUP: leave.
    case terminate
    /// SIGWINCH: the terminal changed size.
    case resize
    /// An action called exit(), or the followed process (`-p`) ended.
    case exitRequested
  }

  private enum Token {
    static let input: UInt64 = 1
    static let signal: UInt64 = 2
    /// Block runs' epolls are `firstRun` and up, one number each, never reused.
    static let firstRun: UInt64 = 16
  }

  public private(set) var options: SessionOptions
  /// The whole program: its maps, machine, output and every block's action.
  private var session: Session?
  private var runs: [BlockRun] = []
  private var nextToken = Token.firstRun
  private let epoll: Epoll
  private let signals: SignalFD
  private var ready = [UInt64](repeating: 0, count: 16)
  private var innerReady = [UInt64](repeating: 0, count: 64)
  /// `CLOCK_MONOTONIC` at the start, so `elapsed` counts from the REPL's start across rebuilds.
  private let startTime = Clock.monotonicNanoseconds()
  private var processEnded = false
  /// Events of the blocks' finished runs (detached, stopped, or replaced), by block.
  private var pastEvents: [Int: BlockEvents] = [:]
  private var pastSamples: UInt64 = 0
  private var pastLost: UInt64 = 0

  /// Blocks SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE and SIGUSR1 into a signalfd and watches `inputFD` (nil: none).
  public init(options: SessionOptions, inputFD: Int32?) throws {
    self.options = options
    signals = try SignalFD(blocking: [SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE, SIGUSR1])
    epoll = try Epoll()
    try epoll.add(signals.fd, token: Token.signal)
    if let inputFD { try epoll.add(inputFD, token: Token.input) }
  }

  deinit {
    for run in runs { finish(run) }
    session = nil
  }

  /// The plan being run (attached blocks only), if any.
  public var plan: Plan? { session?.plan }
  /// Maps of the session by name, with their types.
  public var maps: [MapInfo] { session?.maps.map(\.info) ?? [] }
  /// Whether timers or kernel events are attached (something can still happen without input).
  public var isRunning: Bool { !runs.isEmpty }
  /// Samples read from the rings and events lost, since the session started.
  public var eventCounts: (read: UInt64, lost: UInt64) {
    drainAll()
    return runs.reduce((pastSamples, pastLost)) { ($0.0 &+ $1.session.samplesRead(), $0.1 &+ $1.loop.lostEvents) }
  }
  /// Each block's events since it was added, by block index (see `BlockRun.events`).
  public func blockEvents() -> [Int: BlockEvents] {
    drainAll()
    var events = pastEvents
    for run in runs { events[run.block, default: BlockEvents()].add(run.events()) }
    return events
  }
  /// exit() was called by an action since the last attach.
  public var exitRequested: Bool { session?.machine.exitRequested ?? false || processEnded }

  /// Runs `plan` (the whole session program) from now on: the blocks whose `attached` flag is set
  /// run, keeping the maps' contents; blocks already running as planned go on untouched. Prints
  /// bpftrace's "Attaching N probes..." for the attachments of `newBlocks`, and runs the BEGIN
  /// blocks among them once. On error the previous program keeps running.
  public func install(_ plan: Plan, attached: [Bool], newBlocks: [Int], announce: Bool = true) throws(SessionError) {
    var running = plan
    running.attachments = plan.attachments.filter { $0.blockIndex < attached.count && attached[$0.blockIndex] }
    let next: Session
    switch session.map({ BlockChange.between($0.plan, running) }) {
    case .incremental(let unchanged)?:
      next = try change(to: running, keeping: unchanged)
    case .whole(let reason)?:
      next = try replace(with: running)
      printToStandardError("note: \(reason), so every block was attached again: events during the switch were missed\n")
    case nil:
      next = try replace(with: running)
    }
    processEnded = false
    let fresh = running.attachments.filter { newBlocks.contains($0.blockIndex) }
    if announce && !fresh.isEmpty { next.output.attachedProbes(fresh.count) }
    for index in newBlocks {
      for (position, attachment) in running.attachments.enumerated()
      where attachment.blockIndex == index && attachment.probe.kind == .begin {
        next.runInProcess(position)
        if next.machine.exitRequested { return }
      }
    }
  }

  /// Block by block: runs of removed or changed blocks stop, added or changed blocks attach, the
  /// rest run on. If a block cannot attach, the new ones are closed and the stopped ones restarted.
  private func change(to plan: Plan, keeping unchanged: Set<Int>) throws(SessionError) -> Session {
    guard let previous = session else { preconditionFailure("a change needs a running program") }
    let next = previous.extended(to: plan, keeping: unchanged)
    let staying = runs.filter { unchanged.contains($0.block) && next.hasEvents(block: $0.block) }
    let leaving = runs.filter { run in !staying.contains { $0 === run } }
    // Stopped before the new ones start: a changed block must not count twice meanwhile.
    for run in leaving { finishAndRecord(run) }
    let added = next.plan.actions.indices.filter { block in
      next.hasEvents(block: block) && !staying.contains { $0.block == block }
    }
    do {
      runs = staying + (try attach(added, of: next))
    } catch {
      previous.takeOutput(from: next)
      let restarted = try? attach(leaving.map(\.block), of: previous)
      if restarted == nil && !leaving.isEmpty {
        printToStandardError("WARNING: blocks \(leaving.map { String($0.block + 1) }.joined(separator: ", ")) could not be attached again\n")
      }
      runs = staying + (restarted ?? [])
      composeCounterFolders()
      throw error
    }
    session = next
    composeCounterFolders()
    return next
  }

  /// The whole program anew: every run stops (draining what it read), the maps' contents move to
  /// the new program's maps of the same name and layout, and every block attaches again.
  private func replace(with plan: Plan) throws(SessionError) -> Session {
    let next = try Session(plan: plan, options: options)
    next.machine.startTime = startTime
    let previous = session
    let stopped = runs
    for run in stopped { finishAndRecord(run) }
    runs = []
    if let previous {
      previous.output.flush()
      Self.copyMaps(from: previous.maps, to: next.maps)
    }
    do {
      runs = try attach(next.plan.actions.indices.filter { next.hasEvents(block: $0) }, of: next)
    } catch {
      if let previous {
        do {
          runs = try attach(stopped.map(\.block), of: previous)
        } catch {
          printToStandardError("WARNING: the previous program could not be attached again, so nothing runs: \(error)\n")
        }
        composeCounterFolders()
      }
      throw error
    }
    session = next
    composeCounterFolders()
    return next
  }

  /// Attaches each block of `blocks` on a loop of its own; on error closes the ones it attached.
  private func attach(_ blocks: [Int], of program: Session) throws(SessionError) -> [BlockRun] {
    var made: [BlockRun] = []
    for block in blocks {
      let part = program.part(block: block)
      var loop: EventLoop?
      do {
        loop = try EventLoop(session: part, ownsSignals: false)
        try loop!.enableEvents()
        try epoll.add(loop!.epoll.fd, token: nextToken)
      } catch {
        loop?.abandon()
        part.samplesRead = { 0 }
        for run in made { finish(run) }
        throw SessionError(error)
      }
      made.append(BlockRun(block: block, session: part, loop: loop!, token: nextToken))
      nextToken += 1
    }
    return made
  }

  /// Stops a run: disables its events, runs the actions of what they wrote, folds its counters
  /// and closes everything it opened. Returns what it counted.
  @discardableResult
  private func finish(_ run: BlockRun) -> (events: BlockEvents, samples: UInt64, lost: UInt64) {
    try? epoll.remove(run.loop.epoll.fd)
    run.loop.detach()
    let finished = (run.events(), run.session.samplesRead(), run.loop.lostEvents)
    // The statistics closure holds the event sources: let go of it so their fds close now.
    run.session.samplesRead = { 0 }
    return finished
  }

  /// Finishes a run and keeps what it counted for `.probes`.
  private func finishAndRecord(_ run: BlockRun) {
    let finished = finish(run)
    pastEvents[run.block, default: BlockEvents()].add(finished.events)
    pastSamples &+= finished.samples
    pastLost &+= finished.lost
  }

  /// The machine folds every run's kernel counters (each loop set only its own).
  private func composeCounterFolders() {
    guard let machine = session?.machine else { return }
    let folders = runs.compactMap(\.loop.counterFolder)
    machine.foldCounters = folders.isEmpty ? nil : { machine in for fold in folders { fold(machine) } }
  }

  private func drainAll() {
    for run in runs { run.loop.drainAll() }
  }

  /// Moves every entry of each old map into the new map of the same name and layout.
  static func copyMaps(from old: [MapStorage], to new: [MapStorage]) {
    for source in old {
      guard
        let target = new.first(where: {
          $0.info.name == source.info.name && $0.info.keyTypes == source.info.keyTypes
            && $0.info.valueType == source.info.valueType
        })
      else { continue }
      let size = source.valueSize
      let keySize = source.keySize
      source.forEach { key, value in
        let hash = MapStorage.hash(key, count: keySize)
        guard let slot = target.lookup(key: key, hash: hash, insert: true) else { return }
        slot.copyMemory(from: value, byteCount: size)
      }
    }
  }

  /// Runs block `block` of `plan` once, now, against the live maps: a statement typed at the prompt,
  /// wrapped by the REPL in a BEGIN block of the session program so the checker typed it with the
  /// session's maps. Every map the block names must already exist in the session.
  public func runOnce(block: Int, of plan: Plan) throws(SessionError) {
    if session == nil {
      // Nothing installed yet: a session with no attachments holds the output and (no) maps.
      var empty = plan
      empty.attachments = []
      session = try Session(plan: empty, options: options)
      session!.machine.startTime = startTime
    }
    guard let session else { return }
    // The statement sees every event so far, as a timer does.
    drainAll()
    let binder = ActionBinder(maps: session.maps, readsPointersInProcess: false, variablesSize: plan.variablesSize)
    let action = binder.bind(plan.actions[block])
    let live = session.machine
    let machine = Machine(
      maps: session.maps, output: session.output, variablesSize: plan.variablesSize,
      positionals: options.positionals, allowsUnsafe: options.allowsUnsafe)
    machine.startTime = startTime
    machine.foldCounters = live.foldCounters
    machine.childPid = live.childPid
    machine.resetEvent()
    machine.probeName = UnsafeRawBufferPointer(session.probeNameBytes("BEGIN"))
    // A statement reading `curtask` reads it now, on this thread, as a BEGIN block does.
    var capture: OnDemandCapture?
    if let reads = plan.attachments.first(where: { $0.blockIndex == block && !$0.eventReads.isEmpty })?.eventReads {
      do {
        let made = try OnDemandCapture(reads: reads)
        try made.load(into: machine)
        capture = made
      } catch {
        throw .failure("cannot read what the statement reads at its event: \(error)")
      }
    }
    action.run(machine)
    withExtendedLifetime(capture) {}
  }

  /// Waits up to `timeoutMilliseconds` (-1: until something happens) while the attached probes run,
  /// and says why it returned; nil when it timed out. Actions' output stays buffered until
  /// `flushOutput()`, so the caller can clear its prompt line first.
  public func wait(timeoutMilliseconds: Int32) -> Wake? {
    // Rings wake us only at their watermark; drain at least every 100 ms as the script loop does.
    let hasRings = runs.contains { $0.loop.events?.deliversThroughRings == true }
    let timeout = hasRings ? (timeoutMilliseconds < 0 ? 100 : min(timeoutMilliseconds, 100)) : timeoutMilliseconds
    let count = epoll.wait(into: &ready, timeoutMilliseconds: timeout)
    if count == 0 && hasRings { drainAll() }
    var wake: Wake?
    // Signals first: reading ours consumes the signal the loops' own signalfds would also report.
    if ready.prefix(count).contains(Token.signal) {
      while let signal = signals.read() {
        switch signal {
        case SIGINT: wake = .interrupt
        case SIGWINCH: if wake == nil { wake = .resize }
        case SIGUSR1:
          // As in a script: every map now, and the session goes on (the prompt is redrawn).
          printMaps()
          if wake == nil { wake = .resize }
        default: return .terminate
        }
      }
    }
    for token in ready.prefix(count) where token >= Token.firstRun {
      if let run = runs.first(where: { $0.token == token }) { step(run) }
    }
    if exitRequested && isRunning { return .exitRequested }
    if wake != nil { return wake }
    if ready.prefix(count).contains(Token.input) { return .input }
    return nil
  }

  /// One pass over a block's ready fds: due timers run, rings drain.
  private func step(_ run: BlockRun) {
    let loop = run.loop
    let count = loop.epoll.wait(into: &innerReady, timeoutMilliseconds: 0)
    var drain = false
    for token in innerReady.prefix(count) {
      switch token {
      case EventLoop.Token.signal:
        break  // ours reports it
      case EventLoop.Token.process:
        loop.drainAll()
        processEnded = true
      case EventLoop.Token.rings:
        drain = true
      default:
        let index = Int(token - EventLoop.Token.timerBase)
        if let timer = loop.timers.first(where: { $0.attachment == index })?.timer { _ = timer.read() }
        // Timers see every event before them, whichever block read it.
        drainAll()
        loop.runTimer(index)
      }
      if run.session.machine.exitRequested { break }
    }
    if drain { loop.drainAll() }
  }

  /// Whether actions wrote output that is not on the terminal yet.
  public var hasPendingOutput: Bool { !(session?.output.capturedString.isEmpty ?? true) }

  public func flushOutput() { session?.output.flush() }

  /// Detaches every probe, runs the END blocks among `endBlocks`, and prints every map as a script's
  /// end does. The maps are kept; nothing stays attached.
  public func stop(endBlocks: [Int]) {
    guard let session else { return }
    for run in runs { finishAndRecord(run) }
    runs = []
    composeCounterFolders()
    for (index, attachment) in session.plan.attachments.enumerated()
    where attachment.probe.kind == .end && endBlocks.contains(attachment.blockIndex) {
      session.machine.exitRequested = false
      session.runInProcess(index)
    }
    session.machine.exitRequested = false
    processEnded = false
    // A SystemTap session's globals are its own to print (Scry's map names are not its).
    if session.plan.printsMapsAtExit { MapPrinter.printAtExit(session.maps, to: session.output) }
    session.output.flush()
    session.warnAboutFullMaps()
  }

  /// Prints every map now, sorted by name, without detaching anything.
  public func printMaps() {
    guard let session else { return }
    drainAll()
    session.machine.foldCounters?(session.machine)
    MapPrinter.printAll(session.maps, to: session.output)
    session.output.flush()
  }

  /// Switches the output format from the next record on; nothing is attached again.
  public func setFormat(_ format: OutputFormat) {
    options.format = format
    session?.output.flush()
    session?.output.format = format
  }

  /// Detaches every probe and forgets every map: an empty session.
  public func reset() {
    for run in runs { finish(run) }
    runs = []
    session?.output.flush()
    session = nil
    processEnded = false
    pastEvents = [:]
    pastSamples = 0
    pastLost = 0
  }
}
