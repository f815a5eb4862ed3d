import ScryKernel
import ScryPlan

/// Attachments in counting mode: no ring, a kernel counter folded into the block's map at exit
/// and at each `print`. A dynamic probe followed by no task is counted by a BPF program (cheaper
/// than a perf counter: see `BPFEventCounter`); everything else by one perf counter per target.
final class CountingDelivery: EventDelivery {
  /// One kernel counter and the attachment it counts for.
  enum Counter {
    case perf(PerfEvent)
    case bpf(BPFEventCounter)
    /// Per key the probe reads at the event (`@[$f->m] = count()`).
    case keyed(BPFKeyedCounter)
    /// Per stack (`@[kstack, ustack] = count()`).
    case stacks(StackCounting)
    /// A syscall's hits, counted by its family's carrier (see `SyscallCarrier`).
    case carried(SyscallCarrier, number: Int)
  }

  private var counters: [(attachment: Int, counter: Counter)] = []
  /// What each attachment's counter had counted at the last fold, by attachment index: the
  /// counts in the maps, for the REPL's `.probes` once the counters are closed.
  private(set) var foldedCounts: [Int: UInt64] = [:]
  /// The stack counter of each block (and program type), shared by the block's probes.
  struct SharedStackCounter: Hashable {
    var block: Int
    var carrier: CaptureProgram.Kind
  }
  var stackCounters: [SharedStackCounter: StackCounting] = [:]
  /// Counting programs on tracepoints through raw tracepoint links, open while they count.
  var rawLinks: [RawTracepointLink] = []

  func add(_ attachment: Int, _ counter: Counter) {
    counters.append((attachment, counter))
  }

  func attach(_ request: AttachRequest, path: DeliveryPath, in context: AttachContext) throws -> Bool {
    switch path {
    case .bpfCounter where request.attachment.counting?.key?.stacks != nil:
      return attachStacks(request, parts: request.attachment.counting?.key?.stacks ?? [], in: context)
    case .bpfCounter where request.attachment.counting?.key != nil:
      return attachKeyed(request, in: context)
    case .bpfCounter where request.probe.kind == .tracepoint:
      guard let name = AttachmentFacts.rawTracepointOfCount(request.attachment),
        let counter = try? BPFEventCounter(linkingTo: name, description: request.probe.name, name: "scry_count")
      else { return false }
      counters.append((request.index, .bpf(counter)))
    case .bpfCounter where request.probe.kind == .profile:
      return attachTimerCounter(request, in: context)
    case .bpfCounter where request.dynamicID == nil:
      return attachUprobeCounter(request, in: context)
    case .bpfCounter:
      guard let id = request.dynamicID else { return false }
      let event = try PerfEvent.tracepoint(
        id: id, description: request.probe.name, cpu: context.cpus[0], pid: -1, options: request.options)
      context.events.append(event)
      do {
        counters.append((request.index, .bpf(try BPFEventCounter(attachingTo: event, name: "scry_count"))))
      } catch {
        context.events.removeLast()
        printToStandardError("WARNING: \(request.probe.name): counted by perf instead of BPF: \(error)\n")
        return false
      }
    case .perfCounter:
      var options = request.options
      for target in request.targets(cpus: context.cpus) {
        let event = try ProbeEvents.open(request, pid: target.pid, cpu: target.cpu, options: &options, in: context)
        context.events.append(event)
        counters.append((request.index, .perf(event)))
      }
    default:
      return false
    }
    return true
  }

  /// A timer counted whole: one BPF counter on its events of every CPU, counting the samples
  /// (the events sample with no ring). false when BPF refuses, and the ring samples it.
  private func attachTimerCounter(_ request: AttachRequest, in context: AttachContext) -> Bool {
    let added = context.events.count
    do {
      var options = request.options
      options.countingOnly = false
      options.sampleType = []
      for target in request.targets(cpus: context.cpus) {
        context.events.append(try ProbeEvents.open(request, pid: target.pid, cpu: target.cpu, options: &options, in: context))
      }
      let counter = try BPFEventCounter(samplingOn: Array(context.events[added...]), name: "scry_count")
      counters.append((request.index, .bpf(counter)))
      return true
    } catch {
      context.events.removeSubrange(added...)
      printToStandardError("WARNING: \(request.probe.name): sampled instead of counted in the kernel: \(error)\n")
      return false
    }
  }

  /// A uprobe counted whole, on a probe of Scry's own: a uprobe_multi link where the kernel has
  /// them, else the uprobe PMU; false when neither takes it, and the fallback counts it.
  private func attachUprobeCounter(_ request: AttachRequest, in context: AttachContext) -> Bool {
    guard let dynamic = request.attachment.dynamicProbe, let path = dynamic.binaryPath else { return false }
    let site = UprobeSite(
      path: path, fileOffset: dynamic.fileOffset, semaphoreOffset: dynamic.semaphoreOffset, isReturn: dynamic.isReturn,
      description: request.probe.name)
    if let counter = try? BPFEventCounter(linkingTo: site, name: "scry_count") {
      counters.append((request.index, .bpf(counter)))
      return true
    }
    do {
      var options = PerfEventOptions()
      options.countingOnly = true
      let event = try PerfEvent.uprobe(
        path: path, fileOffset: dynamic.fileOffset, semaphoreOffset: dynamic.semaphoreOffset, isReturn: dynamic.isReturn,
        description: request.probe.name, cpu: context.cpus[0], pid: -1, options: options)
      context.events.append(event)
      counters.append((request.index, .bpf(try BPFEventCounter(attachingTo: event, name: "scry_count"))))
      return true
    } catch {
      printToStandardError("WARNING: \(request.probe.name): counted by perf instead of BPF: \(error)\n")
      return false
    }
  }

  /// A uprobe counted per key: made through the uprobe PMU (no tracefs event: its key may read
  /// what tracefs cannot, such as `curtask`), with Scry's keyed counter on it. false when BPF or
  /// the PMU refuse, and the ring samples the probe instead.
  private func attachKeyed(_ request: AttachRequest, in context: AttachContext) -> Bool {
    guard let counting = request.attachment.counting, let key = counting.key, let dynamic = request.attachment.dynamicProbe,
      let path = dynamic.binaryPath
    else { return false }
    do {
      let kernelKey: BPFKeyedCounter.Key
      switch key.source {
      case .task(let property):
        kernelKey = property == .pid ? .processID : .threadID
      case .read(let read):
        guard let value = ProbeCapture.kernelValue(read) else {
          throw KernelError(
            operation: "build counting program", subject: request.probe.name, errno: 0,
            explanation: "its key reads a register this machine does not name")
        }
        kernelKey = .read(value, isSigned: key.isSigned, space: read.readsTask || dynamic.isKernel ? .kernel : .user)
      case .stacks:
        return false
      }
      let maxKeys = context.session.maps[counting.mapIndex].maxEntries
      let arithmetic = key.arithmetic.compactMap(Self.kernelArithmetic)
      guard arithmetic.count == key.arithmetic.count else { return false }
      let site = UprobeSite(
        path: path, fileOffset: dynamic.fileOffset, semaphoreOffset: dynamic.semaphoreOffset, isReturn: dynamic.isReturn,
        description: request.probe.name)
      // A uprobe_multi link where the kernel has them (6.6+), the uprobe PMU otherwise.
      if let counter = try? BPFKeyedCounter(
        linkingTo: site, key: kernelKey, arithmetic: arithmetic, maxKeys: maxKeys, name: "scry_count")
      {
        counters.append((request.index, .keyed(counter)))
        return true
      }
      var options = PerfEventOptions()
      options.countingOnly = true
      let event = try PerfEvent.uprobe(
        path: path, fileOffset: dynamic.fileOffset, semaphoreOffset: dynamic.semaphoreOffset, isReturn: dynamic.isReturn, description: request.probe.name,
        cpu: context.cpus[0], pid: -1, options: options)
      context.events.append(event)
      let counter = try BPFKeyedCounter(
        attachingTo: event, key: kernelKey, arithmetic: arithmetic, maxKeys: maxKeys, name: "scry_count")
      counters.append((request.index, .keyed(counter)))
      return true
    } catch {
      printToStandardError("WARNING: \(request.probe.name): sampled instead of counted per key in the kernel: \(error)\n")
      return false
    }
  }

  /// The kernel's form of a step of the key's arithmetic; nil for an operator it does not take.
  private static func kernelArithmetic(_ step: KeyArithmetic) -> BPFKeyedCounter.Arithmetic? {
    let operation: BPFALUOperation
    switch step.op {
    case .add: operation = .add
    case .sub: operation = .sub
    case .mul: operation = .mul
    case .div: operation = .div
    case .mod: operation = .mod
    case .and: operation = .and
    case .or: operation = .or
    case .xor: operation = .xor
    case .shl: operation = .lsh
    case .shr: operation = step.isSigned ? .arsh : .rsh
    case .eq, .ne, .lt, .le, .gt, .ge: return nil
    }
    return BPFKeyedCounter.Arithmetic(operation, step.constant, isSigned: step.isSigned)
  }

  /// Stops every counting program before the last fold, so that it reads exact totals (see
  /// `BPFCountCache`): raw tracepoint links close and keyed counters leave their probes; the perf
  /// events the others run on are disabled by their owner.
  func stop() {
    rawLinks.removeAll()
    for case (_, .keyed(let counter)) in counters { counter.stop() }
  }

  func release() {
    counters.removeAll()
    stackCounters.removeAll()
    rawLinks.removeAll()
  }

  /// Folds the kernel's counters into their maps: counts read at exit or at each `print`.
  /// A counter that cannot be read is reported once, and its count left as it was.
  func folder(plan: Plan, maps: [MapStorage]) -> ((Machine) -> Void)? {
    guard !counters.isEmpty else { return nil }
    var totals: [(attachment: Int, counters: [Counter])] = []
    for (attachment, counter) in counters {
      if let i = totals.firstIndex(where: { $0.attachment == attachment }) {
        totals[i].counters.append(counter)
      } else {
        totals.append((attachment, [counter]))
      }
    }
    var folded: [Int: UInt64] = [:]
    var keyedFolded: [Int: [[UInt8]: UInt64]] = [:]
    var reported = false
    // A block's probes share its stack counter: its count is the first one's.
    var stackOwners: [ObjectIdentifier: Int] = [:]
    for (attachment, counters) in totals {
      if case .stacks(let counting)? = counters.first, stackOwners[ObjectIdentifier(counting)] == nil {
        stackOwners[ObjectIdentifier(counting)] = attachment
      }
    }
    return { _ in
      for (attachment, counters) in totals {
        if case .keyed(let counter)? = counters.first, let target = plan.attachments[attachment].counting {
          do {
            try Self.fold(counter, into: maps[target.mapIndex], folded: &keyedFolded[attachment, default: [:]])
          } catch {
            if !reported { printToStandardError("WARNING: \(plan.attachments[attachment].probe.name): \(error)\n") }
            reported = true
          }
          self.foldedCounts[attachment] = keyedFolded[attachment, default: [:]].values.reduce(0, &+)
          continue
        }
        if case .stacks(let counting)? = counters.first, let target = plan.attachments[attachment].counting {
          do {
            try counting.fold(into: maps[target.mapIndex])
          } catch {
            if !reported { printToStandardError("WARNING: \(plan.attachments[attachment].probe.name): \(error)\n") }
            reported = true
          }
          if stackOwners[ObjectIdentifier(counting)] == attachment { self.foldedCounts[attachment] = counting.foldedTotal }
          continue
        }
        let total: UInt64
        do {
          total = try counters.reduce(UInt64(0)) { sum, counter throws(KernelError) in sum &+ (try Self.read(counter)) }
        } catch {
          if !reported { printToStandardError("WARNING: \(plan.attachments[attachment].probe.name): \(error)\n") }
          reported = true
          continue
        }
        let delta = total &- (folded[attachment] ?? 0)
        folded[attachment] = total
        self.foldedCounts[attachment] = total
        guard delta > 0, let target = plan.attachments[attachment].counting else { continue }
        Self.add(delta, to: maps[target.mapIndex], probe: plan.attachments[attachment].probe.name, keyedByProbe: target.isKeyedByProbe)
      }
    }
  }

  /// Events counted so far by attachment index, for the REPL's `.probes`. A stack counter serves
  /// every probe of its block: its count goes to the first of them. A counter that cannot be
  /// read counts nothing here (folding reports it).
  func eventCounts() -> [Int: UInt64] {
    var counts: [Int: UInt64] = [:]
    var seen: Set<ObjectIdentifier> = []
    for (attachment, counter) in counters {
      let count: UInt64
      switch counter {
      case .perf, .bpf, .carried: count = (try? Self.read(counter)) ?? 0
      case .keyed(let keyed): count = ((try? keyed.totals()) ?? []).reduce(0) { $0 &+ $1.total }
      case .stacks(let stacks):
        guard seen.insert(ObjectIdentifier(stacks)).inserted else { continue }
        count = ((try? stacks.counter.totals()) ?? []).reduce(0) { $0 &+ $1.total }
      }
      counts[attachment, default: 0] &+= count
    }
    return counts
  }

  private static func read(_ counter: Counter) throws(KernelError) -> UInt64 {
    switch counter {
    case .perf(let event): return try event.readCount()
    case .bpf(let counter): return try counter.total()
    case .carried(let carrier, let number): return try carrier.count(of: number)
    case .keyed, .stacks: return 0
    }
  }

  /// Adds what each key counted since the last fold to the map's count for that key (an 8-byte
  /// integer key, laid out as the map lays out its one key); keys the kernel's map had no room
  /// for count as the map's dropped inserts.
  private static func fold(_ counter: BPFKeyedCounter, into map: MapStorage, folded: inout [[UInt8]: UInt64]) throws(KernelError) {
    for (key, total) in try counter.totals() {
      // A total read while an eviction moved its hits can come out short, never long (see
      // `BPFCountCache`): what it missed is added at the next fold.
      let previous = folded[key] ?? 0
      guard total > previous, key.count == map.keySize else { continue }
      folded[key] = total
      let delta = total - previous
      key.withUnsafeBytes { keyBytes in
        guard let pointer = keyBytes.baseAddress else { return }
        let hash = MapStorage.hash(pointer, count: map.keySize)
        guard let value = map.lookup(key: pointer, hash: hash, insert: true) else { return }
        value.storeBytes(of: value.loadUnaligned(as: UInt64.self) &+ delta, as: UInt64.self)
      }
    }
    map.setKernelDroppedInserts(Int(counter.total(of: .droppedKeys)))
    map.kernelFailedReads = counter.total(of: .failedReads)
  }

  /// Adds `delta` to the map's count: keyed by the probe's name, or its one keyless entry.
  private static func add(_ delta: UInt64, to map: MapStorage, probe: String, keyedByProbe: Bool) {
    var key = [UInt8](repeating: 0, count: map.keySize)
    if keyedByProbe {
      let name = Array(probe.utf8.prefix(max(0, map.keySize - 1)))
      key.replaceSubrange(0..<name.count, with: name)
    }
    key.withUnsafeBytes { keyBytes in
      // A keyless map's key is empty: any non-null pointer serves, no byte of it is read.
      let pointer = keyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
      let hash = MapStorage.hash(pointer, count: map.keySize)
      guard let value = map.lookup(key: pointer, hash: hash, insert: true) else { return }
      value.storeBytes(of: value.loadUnaligned(as: UInt64.self) &+ delta, as: UInt64.self)
    }
  }
}
