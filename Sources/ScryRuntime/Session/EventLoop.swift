import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// The loop of a running session: waits on signals, timers, the traced process and the perf rings
/// in one epoll, and hands each event to its action. Owns every kernel object it opened; `detach()`
/// (and deinit) release them.
final class EventLoop {
  enum Token {
    static let signal: UInt64 = 1 << 62
    static let process: UInt64 = 1 << 62 + 1
    static let rings: UInt64 = 1 << 62 + 2
    /// Timers are `timerBase + attachment index`.
    static let timerBase: UInt64 = 1 << 32
    /// Services are `serviceBase + index in session.services`.
    static let serviceBase: UInt64 = 1 << 61
  }

  unowned let session: Session
  let epoll: Epoll
  let signals: CaughtSignals
  var timers: [(attachment: Int, timer: TimerFD)] = []
  var events: EventSources?
  var traced: TracedProcess?
  /// Events lost so far; read when asked (the BPF ring's count is a map lookup), not at each drain.
  var lostEvents: UInt64 { events?.lostEvents ?? lostAtDetach }
  private var lostAtDetach: UInt64 = 0
  var lostTaskRecords: UInt64 { events?.lostTaskRecords ?? lostTaskRecordsAtDetach }
  private var lostTaskRecordsAtDetach: UInt64 = 0
  var failedReads: UInt64 { events?.failedReads ?? failedReadsAtDetach }
  private var failedReadsAtDetach: UInt64 = 0
  /// SIGHUP arrived with `reloadsOnHangup`: the run ends for a reload.
  private(set) var reloadRequested = false
  /// The signal that ended the run (SIGINT, SIGTERM, SIGHUP, SIGPIPE), if one did.
  private(set) var stopSignal: Int32?
  /// Samples still queued when a stop signal ended the run, dropped unrun (counted at detach).
  private(set) var discardedEvents: UInt64 = 0
  /// How long what is queued at a stop (or at SIGUSR1) may still run before the rest is dropped
  /// (a stop) or left for later (SIGUSR1): enough for the queue of a busy machine whose actions only
  /// count (a counting tool stopped by Ctrl-C keeps its counts), short to a person.
  static let queueGraceNanoseconds: UInt64 = 500_000_000
  /// Folds this loop's kernel counters into their maps. The machine's `foldCounters` is this one,
  /// except where the REPL runs a loop per block and folds them all (see `LiveSession`).
  private(set) var counterFolder: ((Machine) -> Void)?
  /// Times each interval attachment's action ran, by attachment index (for the REPL's `.probes`).
  private(set) var timerRuns: [Int: UInt64] = [:]
  /// What the kernel counters had counted at the last fold before they closed, by attachment index.
  private(set) var countedAtDetach: [Int: UInt64] = [:]

  /// `ownsSignals`: this loop reads SIGINT and the others itself (a script's run). The REPL's
  /// loops leave them to the REPL's signalfd.
  init(session: Session, ownsSignals: Bool = true) throws {
    self.session = session
    // Signals first: from here on Ctrl-C ends the loop through the caught signals, never
    // mid-teardown, and stops a drain between two records (see `CaughtSignals`). SIGPIPE too: a
    // closed output ends the run through END and cleanup like Ctrl-C, instead of killing Scry
    // with its probes still in tracefs. SIGUSR1 prints the maps, as in bpftrace.
    signals = try CaughtSignals(catching: [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGUSR1], unblocking: ownsSignals)
    epoll = try Epoll()
    try epoll.add(signals.fd, token: Token.signal)
    StaleProbeCleanup.removeLeftovers()
    let plan = session.plan
    let options = session.options
    if let command = options.command {
      traced = try TracedProcess(launching: command)
    } else if let pid = options.targetPid {
      traced = try TracedProcess(attachingTo: pid)
    }
    if let traced {
      session.machine.childPid = UInt32(bitPattern: traced.pid)
      try epoll.add(traced.exitFD, token: Token.process)
    }
    if plan.hasEventProbes {
      let sources = try EventSources(session: session, tracedPid: traced?.pid)
      session.samplesRead = { sources.samplesRead }
      // `print` and `clear` of a counted map fold the kernel's counters in first, during the run too.
      counterFolder = sources.counterFolder(plan: plan, maps: session.maps)
      session.machine.foldCounters = counterFolder
      for fd in sources.pollFDs { try epoll.add(fd, token: Token.rings) }
      events = sources
    }
    for (index, service) in session.services.enumerated() {
      try epoll.add(service.pollFD, token: Token.serviceBase + UInt64(index))
    }
    // Timers start last, as bpftrace's start with its other probes: the time attaching takes is
    // not counted into their first period, which BEGIN's `nsecs` measures from.
    for (index, attachment) in plan.attachments.enumerated() where attachment.probe.kind == .interval {
      guard case .timer(let period, _, _) = attachment.probe.target else { continue }
      let timer = try TimerFD(periodNanoseconds: period)
      try epoll.add(timer.fd, token: Token.timerBase + UInt64(index))
      timers.append((index, timer))
    }
  }

  /// Runs until exit(), a signal, or the end of the traced process. Returns a status to override
  /// the machine's exit code (nil: use it).
  func run() -> Int32? {
    let machine = session.machine
    do {
      try traced?.start()
    } catch {
      printToStandardError("ERROR: \(error)\n")
      return 1
    }
    session.runSpecial(.begin)
    if machine.exitRequested { return nil }
    if session.options.notifiesProbesAttached {
      session.output.flush()
      printToStandardError("__BPFTRACE_NOTIFY_PROBES_ATTACHED\n")
    }
    // Nothing could run after BEGIN (no events, timers, traced process or service): unless the
    // run waits as bpftrace 0.17's does, it ends here, END runs and the maps print.
    let idle = events == nil && timers.isEmpty && traced == nil && session.services.isEmpty
    if idle && !session.options.waitsWhenIdle { return nil }
    var ready = [UInt64](repeating: 0, count: 64)
    while !machine.exitRequested {
      // A ring is drained at least every 100 ms, records short of its wakeup mark included; a
      // run with none (counted in the kernel) sleeps until a signal, timer or service wakes it:
      // its CPU was 1 ms a second of those wakeups (and the kernel's balancing on each).
      let timeout: Int32 = events?.deliversThroughRings == true ? 100 : -1
      let count = epoll.wait(into: &ready, timeoutMilliseconds: timeout)
      var drainRings = count == 0
      for token in ready.prefix(count) {
        switch token {
        case Token.signal:
          // A stop drops what is still queued (see `detach`) instead of running it first.
          if printsMapsOnly() { continue }
          return nil
        case Token.process:
          drainAll()
          return nil
        case Token.rings:
          drainRings = true
        case Token.serviceBase..<Token.signal:
          // The service sees every event so far, as a timer does.
          drainAll()
          session.services[Int(token - Token.serviceBase)].serve {
            session.metricsSnapshot(run: runStatistics())
          }
        default:
          let index = Int(token - Token.timerBase)
          if let timer = timers.first(where: { $0.attachment == index })?.timer { _ = timer.read() }
          // Timers see every event that happened before them.
          drainAll()
          runTimer(index)
        }
        if machine.exitRequested { break }
      }
      if drainRings { drainAll() }
      session.output.flush()
    }
    return nil
  }

  /// Starts the kernel events; a refusal names the probe and stops the run before it starts.
  func enableEvents() throws(SessionError) {
    try events?.enable()
  }

  /// Reads the pending signals; false when one of them ends the run. SIGUSR1 alone prints every
  /// map now (after the events queued so far, for at most the grace) and the run goes on.
  func printsMapsOnly() -> Bool {
    let printsMaps = readSignals().printsMaps
    if stopSignal != nil { return false }
    if printsMaps {
      drainQueued()
      // A stop during that drain: the maps print at the end instead.
      if stopSignal != nil { return false }
      session.machine.foldCounters?(session.machine)
      MapPrinter.printAll(session.maps, to: session.output)
      session.output.flush()
    }
    return true
  }

  func runTimer(_ index: Int) {
    session.runInProcess(index)
    timerRuns[index, default: 0] &+= 1
  }

  /// The run's own counters now, for exporters.
  func runStatistics() -> RunStatistics {
    var run = RunStatistics()
    run.eventsRead = session.samplesRead()
    run.eventsLost = lostEvents
    run.failedReads = session.maps.reduce(failedReads &+ session.machine.failedProcessReads) { $0 &+ $1.kernelFailedReads }
    run.residentBytes = Self.residentBytes()
    return run
  }

  /// Resident set size from /proc/self/statm (its second field, in pages).
  static func residentBytes() -> UInt64 {
    guard let text = try? FileSystem.readText("/proc/self/statm") else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
    return pages &* UInt64(sysconf(Int32(_SC_PAGESIZE)))
  }

  func drainAll() {
    guard let events else { return }
    events.drain()
  }

  /// Reads the pending signals: the first that ends the run becomes `stopSignal`. Says whether
  /// SIGUSR1 was among them, and SIGALRM (the end of a drain's grace).
  @discardableResult
  private func readSignals() -> (printsMaps: Bool, graceEnded: Bool) {
    var printsMaps = false
    var graceEnded = false
    while let signal = signals.read() {
      switch signal {
      case SIGUSR1: printsMaps = true
      case SIGALRM: graceEnded = true
      default:
        if signal == SIGHUP && session.options.reloadsOnHangup { reloadRequested = true }
        if stopSignal == nil { stopSignal = signal }
      }
    }
    return (printsMaps, graceEnded)
  }

  /// Runs what is queued for at most the grace (`final`: everything, staged records too). Other
  /// signals meanwhile are read and the drain goes on: a second SIGINT (`timeout` sends one to
  /// the process and one to its group) must not cut the grace short. A stop ends a drain for
  /// SIGUSR1 at once.
  private func drainQueued(final: Bool = false) {
    guard let events else { return }
    signals.interrupt(afterNanoseconds: Self.queueGraceNanoseconds)
    defer { signals.interrupt(afterNanoseconds: 0) }
    while true {
      events.drain(final: final)
      // Not stopped by a signal: the rings are empty (up to what came in meanwhile).
      guard CaughtSignals.arePending else { return }
      if readSignals().graceEnded || (!final && stopSignal != nil) { return }
    }
  }

  /// Closes what the loop opened without running anything more: for a run that fails to start.
  func abandon() {
    session.machine.foldCounters = nil
    counterFolder = nil
    events = nil
    timers.removeAll()
    traced?.finish()
  }

  /// Stops every event and closes what the loop opened; runs before END so END sees a quiet system.
  func detach() {
    // Stop the events first, so the final drain sees the last record of every ring.
    events?.disable()
    // A signal that came during the last drain must not stop this one at its first record.
    readSignals()
    var drained = false
    if stopSignal == nil || reloadRequested {
      // exit(), the traced process's end, a reload: every event so far runs, unless a stop
      // comes meanwhile (SIGUSR1 only pauses it).
      while !drained {
        events?.drain(final: true)
        drained = !CaughtSignals.arePending
        if !drained { readSignals() }
        if stopSignal != nil && !reloadRequested { break }
      }
    }
    if !drained && stopSignal != nil {
      // bpftrace stops reading at once: what is queued runs for the grace, the rest is dropped.
      drainQueued(final: true)
    }
    discardedEvents = events?.discardRemaining() ?? 0
    if let sources = events {
      lostAtDetach = sources.lostEvents
      lostTaskRecordsAtDetach = sources.lostTaskRecords
      failedReadsAtDetach = sources.failedReads
    }
    // Last read of the kernel's counters, while their fds are still open.
    counterFolder?(session.machine)
    counterFolder = nil
    countedAtDetach = events?.foldedEvents ?? [:]
    session.machine.foldCounters = nil
    events = nil
    timers.removeAll()
    // The trace is over: a `-c` command still running is ended, as bpftrace ends it.
    traced?.terminate()
    traced?.finish()
  }
}
