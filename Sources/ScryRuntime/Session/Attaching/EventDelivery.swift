import ScryKernel
import ScryLanguage
import ScryPlan

/// One way of bringing an attachment's events to Scry (one per `DeliveryPath`): opens and attaches
/// the kernel objects and keeps what only it needs until teardown. Only attaching and teardown go
/// through this protocol; records reach actions through `RingDrain` and `RecordDispatcher`, which
/// hold concrete types.
protocol EventDelivery: AnyObject {
  /// Attaches the request's attachment along `path`. False when the kernel refused BPF for it
  /// (nothing of it stays open): the caller takes the fact's fallback path.
  func attach(_ request: AttachRequest, path: DeliveryPath, in context: AttachContext) throws -> Bool
  /// Lets go of what it holds besides the events, before the events are closed.
  func release()
}

extension PerfEventOptions {
  /// The event a tracepoint program hangs on. The program runs for every hit of the tracepoint,
  /// on any CPU and task, whatever event carries it; but the record goes on to perf only where
  /// some perf event on the tracepoint is in that CPU's list. A counting event on Scry's own
  /// task is in a list only while Scry runs, so a hit costs no perf work unless another tracer
  /// (or another block's counter) asked for it (measured: a carrier on CPU 0 added 86 ns to
  /// every raw_syscalls hit there).
  static var programCarrier: PerfEventOptions {
    var options = PerfEventOptions()
    options.countingOnly = true
    return options
  }
}

/// One attachment to attach, with what the session worked out for it.
struct AttachRequest {
  var index: Int
  var attachment: Attachment
  /// The threads followed (per-task events on every CPU); nil: system-wide, one event per CPU.
  var followed: [Int32]?
  /// The process whose hits a BPF program keeps, when threads are followed.
  var followedProcess: Int32?
  /// The tracefs id of the uprobe or kprobe created for the attachment.
  var dynamicID: UInt64?
  /// The perf options of the attachment's sampled or counting events.
  var options: PerfEventOptions

  var probe: ResolvedProbe { attachment.probe }

  /// Each event target: (-1, cpu) system-wide, else every followed thread on every CPU.
  func targets(cpus: [Int32]) -> [(pid: Int32, cpu: Int32)] {
    followed.map { tids in tids.flatMap { tid in cpus.map { (tid, $0) } } } ?? cpus.map { (-1, $0) }
  }
}

/// What every delivery of one session shares: the CPUs, tracefs, the events opened so far (enabled,
/// disabled and closed together), BPF objects kept while their events are open, and the routes.
final class AttachContext {
  unowned let session: Session
  let cpus: [Int32]
  let tracefs: TraceFS?
  let dispatcher: RecordDispatcher
  /// Every event opened, ring owners included, kept open until the session ends.
  var events: [PerfEvent] = []
  /// BPF programs and maps, kept while the events they hang on are open.
  var kernelObjects: [AnyObject] = []

  init(session: Session, cpus: [Int32], tracefs: TraceFS?, dispatcher: RecordDispatcher) {
    self.session = session
    self.cpus = cpus
    self.tracefs = tracefs
    self.dispatcher = dispatcher
  }

  var ringPages: Int { session.options.ringPages }

  /// Sends the samples stamped `id` to the attachment's block.
  func addRoute(
    id: UInt64, to attachment: Attachment, sampleType: PerfSampleType, skipPredicate: Bool, commOffset: Int? = nil,
    credentialsOffset: Int? = nil, kernelStackOffset: Int? = nil, userStackOffset: Int? = nil,
    failedReads: FailedReadReport? = nil
  ) {
    var route = RecordRoute(
      action: session.action(attachment.blockIndex),
      probeName: UnsafeRawBufferPointer(session.probeNameBytes(attachment.probe.name)), sampleType: sampleType,
      skipPredicate: skipPredicate, commOffset: commOffset, credentialsOffset: credentialsOffset,
      kernelStackOffset: kernelStackOffset, userStackOffset: userStackOffset)
    if let failedReads {
      kernelObjects.append(failedReads)
      route.failedReads = Unretained(failedReads)
    }
    if case .userFunction(_, let symbol, let fileOffset) = attachment.probe.target {
      let name = symbol ?? "0x" + String(fileOffset, radix: 16)
      route.functionName = UnsafeRawBufferPointer(session.probeNameBytes(name))
    }
    dispatcher.addRoute(id: id, route)
  }

  /// The tracefs id of a tracepoint probe.
  func tracepointID(of probe: ResolvedProbe) throws -> UInt64 {
    guard case .tracepoint(let category, let name, _) = probe.target else {
      throw SessionError.failure("\(probe.name): not a tracepoint")
    }
    guard let tracefs else { throw SessionError.failure("\(probe.name): tracefs is not available") }
    return try tracefs.eventID(category: category, name: name)
  }
}
