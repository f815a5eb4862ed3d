import ScryKernel
import ScryLanguage
import ScryPlan

/// One attached block of the REPL's session, run by its own event loop: its perf events, BPF
/// programs, rings and timers are its own, so it attaches and detaches without touching the
/// other blocks. It shares the session's machine, maps, actions and output.
final class BlockRun {
  let block: Int
  let session: Session
  let loop: EventLoop
  /// Its loop's epoll in the REPL's epoll.
  let token: UInt64

  init(block: Int, session: Session, loop: EventLoop, token: UInt64) {
    self.block = block
    self.session = session
    self.loop = loop
    self.token = token
  }

  /// Events the block has seen since it attached: samples its actions ran on, hits its kernel
  /// counters counted, runs of its timers; per probe where the count is the probe's own (a
  /// kernel counter, a timer), since samples are counted per block only.
  func events() -> BlockEvents {
    var events = BlockEvents()
    events.total = session.samplesRead()
    let attachments = session.plan.attachments
    // Once detached, what the counters had counted at their last fold: exactly what the maps got.
    var perProbe: [(Int, UInt64)] = Array(loop.events?.countedEvents() ?? loop.countedAtDetach)
    perProbe += loop.timerRuns.map { ($0.key, $0.value) }
    for (index, count) in perProbe.sorted(by: { $0.0 < $1.0 }) where attachments.indices.contains(index) {
      events.total &+= count
      events.add(count, to: attachments[index].probe.name)
    }
    return events
  }
}

/// What `.probes` shows of one block: its events, and each probe's where they are known.
public struct BlockEvents: Sendable, Equatable {
  public var total: UInt64 = 0
  public var perProbe: [(name: String, count: UInt64)] = []

  public init() {}

  mutating func add(_ count: UInt64, to probe: String) {
    if let i = perProbe.firstIndex(where: { $0.name == probe }) { perProbe[i].count &+= count } else { perProbe.append((probe, count)) }
  }

  /// Adds the events of a later run of the same block.
  mutating func add(_ other: BlockEvents) {
    total &+= other.total
    for probe in other.perProbe { add(probe.count, to: probe.name) }
  }

  public static func == (a: BlockEvents, b: BlockEvents) -> Bool {
    a.total == b.total && a.perProbe.map(\.name) == b.perProbe.map(\.name) && a.perProbe.map(\.count) == b.perProbe.map(\.count)
  }
}

/// How the REPL's running program becomes the next one: which blocks stay as they run, or why
/// the whole program has to be attached again.
enum BlockChange {
  /// Blocks whose plan (action, needs, attachments) is the same in both programs.
  case incremental(unchanged: Set<Int>)
  /// The change cannot be made block by block; the reason is shown to the user.
  case whole(reason: String)

  static func between(_ old: Plan, _ new: Plan) -> BlockChange {
    // The maps live on, shared by the blocks that stay: each must keep its index and layout.
    // New maps come after them, since the new program's blocks come after the old ones.
    guard new.maps.count >= old.maps.count else { return .whole(reason: "a map is gone") }
    for (before, after) in zip(old.maps, new.maps)
    where before.name != after.name || before.keyTypes != after.keyTypes || before.valueType != after.valueType
      || before.maxEntries != after.maxEntries || before.isInternal != after.isInternal
    {
      return .whole(reason: before.name == after.name ? "\(before.name) changed its type" : "the maps were renumbered")
    }
    guard old.histogramStyle == new.histogramStyle, old.printsMapsAtExit == new.printsMapsAtExit else {
      return .whole(reason: "the program changed how maps print")
    }
    var unchanged: Set<Int> = []
    for block in new.actions.indices where block < old.actions.count {
      if old.actions[block] == new.actions[block] && old.blocks[block] == new.blocks[block]
        && old.attachments.filter({ $0.blockIndex == block }) == new.attachments.filter({ $0.blockIndex == block })
      {
        unchanged.insert(block)
      }
    }
    return .incremental(unchanged: unchanged)
  }
}

extension Session {
  /// The session of `plan` that this one grows into: the same machine, output and maps (with the
  /// plan's new maps after them), the unchanged blocks' actions as they are, the others bound anew.
  /// Only for a plan `BlockChange` found incremental.
  func extended(to plan: Plan, keeping unchanged: Set<Int>) -> Session {
    let added = plan.maps[maps.count...].map { MapStorage(info: $0, maxEntries: $0.maxEntries ?? options.maxMapEntries) }
    Session.prepare(added, of: plan)
    let allMaps = maps + added
    let usesBPF = Session.usesBPF(plan, options: options)
    let binder = ActionBinder(maps: allMaps, readsPointersInProcess: !usesBPF, variablesSize: plan.variablesSize)
    let bound = plan.actions.indices.map { unchanged.contains($0) ? actions[$0] : binder.bind(plan.actions[$0]) }
    machine.reserveVariables(plan.variablesSize)
    let next = Session(plan: plan, options: options, maps: allMaps, machine: machine, actions: bound, usesBPF: usesBPF)
    next.closesOutput = closesOutput
    closesOutput = false
    return next
  }

  /// Gives the output fd back after `extended(to:)` when the grown session is dropped.
  func takeOutput(from next: Session) {
    closesOutput = next.closesOutput
    next.closesOutput = false
  }

  /// Block `block`'s attachments as a session of their own, sharing everything else with this one.
  func part(block: Int) -> Session {
    var own = plan
    own.attachments = plan.attachments.filter { $0.blockIndex == block }
    return Session(plan: own, options: options, maps: maps, machine: machine, actions: actions, usesBPF: usesBPF)
  }

  /// Whether block `block` has events or timers to attach (BEGIN and END run from the REPL).
  func hasEvents(block: Int) -> Bool {
    plan.attachments.contains { $0.blockIndex == block && $0.probe.kind != .begin && $0.probe.kind != .end }
  }
}
