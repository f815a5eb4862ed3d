import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// The runtime side of the REPL: one program that grows block by block while it runs.
///
/// Each change (a block added or detached, the output format switched) builds a new `Session` for
/// the whole program, moves the old maps' contents into it by name (when name and layout agree),
/// and re-attaches every attached block; BEGIN blocks run only when they are added. Waiting goes
/// through one epoll holding the caller's input fd, a signalfd and the running loop's own epoll,
/// so events keep flowing while the user types. Invariant: `loop` never outlives `session`.
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
    static let loop: UInt64 = 3
  }

  public private(set) var options: SessionOptions
  private var session: Session?
  private var loop: EventLoop?
  private let epoll: Epoll
  private let signals: SignalFD
  private var ready = [UInt64](repeating: 0, count: 16)
  private var innerReady = [UInt64](repeating: 0, count: 64)
  /// `CLOCK_MONOTONIC` at the start, so `elapsed` counts from the REPL's start across rebuilds.
  private let startTime = Clock.monotonicNanoseconds()
  private var processEnded = false

  /// Blocks SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE and SIGUSR1 into a signalfd and watches `inputFD` (nil: none).
  public init(options: SessionOptions, inputFD: Int32?) throws {
    self.options = options
    signals = try SignalFD(blocking: [SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE, SIGUSR1])
    epoll = try Epoll()
    try epoll.add(signals.fd, token: Token.signal)
    if let inputFD { try epoll.add(inputFD, token: Token.input) }
  }

  deinit {
    loop = nil
    session = nil
  }

  /// The plan being run (attached blocks only), if any.
  public var plan: Plan? { session?.plan }
  /// Maps of the session by name, with their types.
  public var maps: [MapInfo] { session?.maps.map(\.info) ?? [] }
  /// Whether timers or kernel events are attached (something can still happen without input).
  public var isRunning: Bool { loop != nil && (session?.plan.attachments.contains { $0.probe.kind != .begin && $0.probe.kind != .end } ?? false) }
  /// Samples read from the rings and events lost, since the last (re)attach.
  public var eventCounts: (read: UInt64, lost: UInt64) {
    guard let session, let loop else { return (0, 0) }
    loop.drainAll()
    return (session.samplesRead(), loop.lostEvents)
  }
  /// exit() was called by an action since the last attach.
  public var exitRequested: Bool { session?.machine.exitRequested ?? false || processEnded }

  /// Runs `plan` (the whole session program) from now on: attaches the probes of every block whose
  /// `attached` flag is set, keeps the maps' contents, prints bpftrace's "Attaching N probes..."
  /// for the attachments of `newBlocks`, and runs the BEGIN blocks among them once.
  /// On error the previous program keeps running.
  public func install(_ plan: Plan, attached: [Bool], newBlocks: [Int], announce: Bool = true) throws(SessionError) {
    var running = plan
    running.attachments = plan.attachments.filter { $0.blockIndex < attached.count && attached[$0.blockIndex] }
    let next = try Session(plan: running, options: options)
    next.machine.startTime = startTime
    let previous = session
    if let loop {
      // Stopped and drained before the copy, so no event of the old program is lost in the move.
      loop.detach()
      self.loop = nil
    }
    if let previous {
      previous.samplesRead = { 0 }
      previous.output.flush()
      Self.copyMaps(from: previous.maps, to: next.maps)
    }
    var nextLoop: EventLoop?
    do {
      nextLoop = try EventLoop(session: next)
      try nextLoop?.enableEvents()
      try epoll.add(nextLoop!.epoll.fd, token: Token.loop)
    } catch {
      nextLoop?.abandon()
      if let previous { loop = Self.reattach(previous, to: epoll) }
      throw SessionError(error)
    }
    session = next
    loop = nextLoop
    processEnded = false
    let fresh = running.attachments.filter { newBlocks.contains($0.blockIndex) }
    if announce && !fresh.isEmpty { next.output.attachedProbes(fresh.count) }
    for index in newBlocks {
      for attachment in running.attachments where attachment.blockIndex == index && attachment.probe.kind == .begin {
        next.machine.resetEvent()
        next.setProbeName(attachment.probe.name)
        next.action(index).run(next.machine)
        if next.machine.exitRequested { return }
      }
    }
  }

  /// Re-attaches a session after a failed replacement; says so when even that fails, since the
  /// previous program then no longer runs.
  private static func reattach(_ session: Session, to epoll: Epoll) -> EventLoop? {
    do {
      let loop = try EventLoop(session: session)
      try loop.enableEvents()
      try epoll.add(loop.epoll.fd, token: Token.loop)
      return loop
    } catch {
      printToStandardError("WARNING: the previous program could not be attached again, so nothing runs: \(error)\n")
      return nil
    }
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
    action.run(machine)
  }

  /// Waits up to `timeoutMilliseconds` (-1: until something happens) while the attached probes run,
  /// and says why it returned; nil when it timed out. Actions' output stays buffered until
  /// `flushOutput()`, so the caller can clear its prompt line first.
  public func wait(timeoutMilliseconds: Int32) -> Wake? {
    // Rings wake us only at their watermark; drain at least every 100 ms as the script loop does.
    let hasRings = loop?.events != nil
    let timeout = hasRings ? (timeoutMilliseconds < 0 ? 100 : min(timeoutMilliseconds, 100)) : timeoutMilliseconds
    let count = epoll.wait(into: &ready, timeoutMilliseconds: timeout)
    if count == 0 && hasRings { loop?.drainAll() }
    var wake: Wake?
    // Signals first: reading ours consumes the signal the loop's own signalfd would also report.
    if ready.prefix(count).contains(Token.signal) {
      while let signal = signals.read() {
        switch signal {
        case SIGINT: wake = .interrupt
        case SIGWINCH: if wake == nil { wake = .resize }
        case SIGUSR1:
          // As in a script: every map now, and the session goes on (the prompt is redrawn).
          loop?.drainAll()
          printMaps()
          if wake == nil { wake = .resize }
        default: return .terminate
        }
      }
    }
    if ready.prefix(count).contains(Token.loop) { step() }
    if exitRequested && isRunning { return .exitRequested }
    if wake != nil { return wake }
    if ready.prefix(count).contains(Token.input) { return .input }
    return nil
  }

  /// One pass over the running loop's ready fds: due timers run, rings drain.
  private func step() {
    guard let loop, let session else { return }
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
        loop.drainAll()
        loop.runTimer(index)
      }
      if session.machine.exitRequested { break }
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
    if let loop {
      loop.detach()
      self.loop = nil
    }
    // The statistics closure holds the event sources: let go of it so their fds close now.
    session.samplesRead = { 0 }
    for attachment in session.plan.attachments
    where attachment.probe.kind == .end && endBlocks.contains(attachment.blockIndex) {
      session.machine.exitRequested = false
      session.machine.resetEvent()
      session.setProbeName(attachment.probe.name)
      session.action(attachment.blockIndex).run(session.machine)
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
    session.machine.foldCounters?(session.machine)
    MapPrinter.printAll(session.maps, to: session.output)
    session.output.flush()
  }

  /// Switches the output format; the running program is rebuilt around a new output.
  public func setFormat(_ format: OutputFormat, attached: [Bool]) throws(SessionError) {
    options.format = format
    guard let plan = session?.plan else { return }
    try install(plan, attached: attached, newBlocks: [])
  }

  /// Detaches every probe and forgets every map: an empty session.
  public func reset() {
    if let loop {
      loop.detach()
      self.loop = nil
    }
    session?.samplesRead = { 0 }
    session?.output.flush()
    session = nil
    processEnded = false
  }
}
