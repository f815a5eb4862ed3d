import ScryKernel
import ScryPlan

/// How the events of one attachment reach Scry.
public enum DeliveryPath: Sendable, Equatable {
  /// Perf samples into the per-CPU perf rings; pointer data, if any, is read from the process afterwards.
  case perfRing
  /// Perf counters (one per CPU, or per CPU and task), read at exit and at each `print`.
  case perfCounter
  /// A BPF program adding each hit of a dynamic probe to a per-CPU counter (see `BPFEventCounter`).
  case bpfCounter
  /// A BPF program writing each hit into the BPF ring shared by all CPUs (see `CaptureProgram`);
  /// its identifier and common type are filled in when it is attached.
  case bpfRing(CaptureProgram)
  /// A BPF program copying the record and the data behind its pointers into one sample of the
  /// perf rings (see `TracepointFetchProgram`), dropping other processes' hits when `filtersProcess`.
  case bpfFetch(TracepointFetch, filtersProcess: Bool)
}

extension DeliveryPath {
  /// The path counts hits in the kernel: its events carry no samples.
  var counts: Bool { self == .perfCounter || self == .bpfCounter }

  /// The path makes its probe itself (through the uprobe PMU), so none is created in tracefs.
  var makesItsOwnProbe: Bool {
    if case .bpfRing(let program) = self, case .probe = program.kind { return true }
    return false
  }
}

/// What a run would do with one attachment, from the plan and options alone.
public struct AttachmentFact: Sendable, Equatable {
  /// The path taken when BPF programs may be loaded (with `--no-bpf`, the same as `fallback`).
  public var path: DeliveryPath
  /// The path taken when the kernel refuses BPF programs (or BPF ring buffers).
  public var fallback: DeliveryPath
  /// For `--plan`'s "delivered by:" line: set when `path` is the BPF ring.
  public var deliveredBy: String?
  /// For `--plan`'s "fetched by:" line: set when the attachment reads behind pointers.
  public var fetchedBy: String?
  /// Set when the attachment is one of a family of syscalls tracepoints carried by one
  /// raw_syscalls program (see `SyscallFamilies`); `path` is then what that program runs for it.
  public var carrier: SyscallCarrierFact?

  /// For `--plan`'s "carried by:" line.
  public var carriedBy: String? {
    carrier.map {
      "raw_syscalls:\($0.family.carrierName), syscall number \($0.number)"
        + ($0.followsProcess ? ", the followed process only" : "") + " (see syscall tracepoints below)"
    }
  }
}

/// The one place that decides how each attachment is delivered: `--plan` prints these facts and
/// the attach code takes its path from them. Loads nothing and opens nothing.
public enum AttachmentFacts {
  /// The facts of every attachment with event context, by attachment index.
  public static func describe(_ plan: Plan, options: SessionOptions) -> [Int: AttachmentFact] {
    let identified = identifiesSamples(plan)
    var facts: [Int: AttachmentFact] = [:]
    for (index, attachment) in plan.attachments.enumerated() where attachment.probe.kind.hasEventContext {
      facts[index] = fact(for: attachment, options: options, identified: identified)
    }
    let unfiltered = unfilteredFacts(plan, options: options, identified: identified)
    for (index, carried) in SyscallFamilies.decide(plan, facts: facts, unfiltered: unfiltered, options: options).carried {
      facts[index]?.carrier = carried
      // Behind the carrier's process test, a followed member runs what it would system-wide; its
      // fallback stays the per-task events.
      if carried.followsProcess, let own = unfiltered[index] {
        facts[index]?.path = own.path
        facts[index]?.deliveredBy = own.deliveredBy
        facts[index]?.fetchedBy = own.fetchedBy
      }
    }
    return facts
  }

  /// For `--plan`: each block's families of syscalls tracepoints, carried or attached one by one, and why.
  public static func syscallFamilies(_ plan: Plan, options: SessionOptions) -> [String] {
    var facts: [Int: AttachmentFact] = [:]
    let identified = identifiesSamples(plan)
    for (index, attachment) in plan.attachments.enumerated() where attachment.probe.kind.hasEventContext {
      facts[index] = fact(for: attachment, options: options, identified: identified)
    }
    let unfiltered = unfilteredFacts(plan, options: options, identified: identified)
    return SyscallFamilies.decide(plan, facts: facts, unfiltered: unfiltered, options: options).summaries.map(\.text)
  }

  /// The facts syscalls tracepoints that follow one process would have system-wide, by attachment
  /// index: what a syscall carrier with a process test runs for them.
  private static func unfilteredFacts(_ plan: Plan, options: SessionOptions, identified: Bool) -> [Int: AttachmentFact] {
    var systemWide = options
    systemWide.targetPid = nil
    var facts: [Int: AttachmentFact] = [:]
    for (index, attachment) in plan.attachments.enumerated() where attachment.probe.kind.hasEventContext {
      guard case .tracepoint("syscalls", _, _) = attachment.probe.target,
        SyscallFamilies.followsProcess(attachment, options: options)
      else { continue }
      var unscoped = attachment
      unscoped.scope = .systemWide
      facts[index] = fact(for: unscoped, options: systemWide, identified: identified)
    }
    return facts
  }

  /// What a run with these options would refuse before attaching anything: a block whose reads
  /// need a path this run cannot take (memory read at the event without the capture program,
  /// stacks beside a fetch program). `--dry-run` and `--plan` refuse it too, at the block.
  public static func refusals(_ plan: Plan, options: SessionOptions) -> [(blockIndex: Int, message: String)] {
    var found: [(blockIndex: Int, message: String)] = []
    for attachment in plan.attachments where !attachment.probe.kind.hasEventContext && !attachment.eventReads.isEmpty {
      guard !options.allowsBPF, !found.contains(where: { $0.blockIndex == attachment.blockIndex }) else { continue }
      found.append(
        (attachment.blockIndex,
         "\(attachment.probe.name): what this block reads at its event (curtask) is read by a BPF program Scry runs on its"
          + " own thread, and --no-bpf forbids BPF programs"))
    }
    for attachment in plan.attachments where !options.allowsBPF && WatchpointDelivery.serves(attachment) {
      guard !found.contains(where: { $0.blockIndex == attachment.blockIndex }) else { continue }
      found.append(
        (attachment.blockIndex,
         "\(attachment.probe.name): a watchpoint on a function's argument is set up by a BPF program on the function's"
          + " uprobe (it stops the task and reads the argument), and --no-bpf forbids BPF programs"))
    }
    for (index, fact) in describe(plan, options: options).sorted(by: { $0.key < $1.key }) {
      let attachment = plan.attachments[index]
      let path = options.allowsBPF ? fact.path : fact.fallback
      do {
        try EventSources.requireCapture(of: plan.blocks[attachment.blockIndex], on: path, for: attachment, options: options)
      } catch {
        if !found.contains(where: { $0.blockIndex == attachment.blockIndex }) {
          found.append((attachment.blockIndex, "\(error)"))
        }
      }
    }
    return found
  }

  static func fact(for attachment: Attachment, options: SessionOptions, identified: Bool) -> AttachmentFact {
    // A followed process means per-task perf events: programs hang on a tracepoint for every task.
    let followsTasks = attachment.scope != .systemWide || options.targetPid != nil
    if attachment.counting?.key == nil, attachment.probe.kind == .profile, attachment.counting != nil {
      // A perf counter of a timer counts its clock's time, not its samples: a program counts them.
      return AttachmentFact(path: followsTasks || !options.allowsBPF ? .perfRing : .bpfCounter, fallback: .perfRing)
    }
    if let counting = attachment.counting, counting.key == nil {
      let rawTracepoint = rawTracepointOfCount(attachment) != nil
      let path: DeliveryPath = (attachment.dynamicProbe != nil || rawTracepoint) && !followsTasks ? .bpfCounter : .perfCounter
      var fact = AttachmentFact(path: options.allowsBPF ? path : .perfCounter, fallback: .perfCounter)
      if rawTracepoint, fact.path == .bpfCounter {
        fact.deliveredBy = rawTracepointCounter(attachment, otherwise: "a perf counter on each CPU")
      }
      return fact
    }
    // Counted per key by the kernel, or else sampled: a perf counter has no keys.
    if attachment.counting?.key != nil, !followsTasks, options.allowsBPF {
      var fact = AttachmentFact(path: .bpfCounter, fallback: .perfRing)
      fact.deliveredBy = rawTracepointCounter(attachment, otherwise: "a BPF tracepoint program")
      return fact
    }
    // Memory read at the event needs the capture program: a per-task predicate then runs in user
    // space on every task's hits (as bpftrace runs it), rather than per-task perf events.
    let systemWide = !followsTasks || (attachment.readsMemoryOnlyAtTheEvent && options.targetPid == nil)
    if let delivery = attachment.ringDelivery, systemWide, options.allowsBPF, var kind = captureKind(of: attachment) {
      var recordSize = delivery.recordSize
      if case .probe(var layout) = kind, options.helperChecks >= 2, delivery.sampleFields.contains(.raw) {
        // -kk: the record grows by the fields' failure codes.
        layout.reportsFailures = true
        kind = .probe(layout)
        recordSize = layout.recordSize
      }
      var program = CaptureProgram(
        sampleType: sampleType(delivery.sampleFields, counting: false, identified: identified), identifier: 0,
        recordSize: recordSize, commonType: 0, includesComm: delivery.readsComm, kind: kind)
      program.includesCredentials = delivery.readsCredentials
      program.kernelStackDepth = delivery.kernelStackDepth
      program.userStackDepth = delivery.userStackDepth
      if !delivery.reads.isEmpty, let reads = kernelReads(delivery.reads, reportsFailures: options.helperChecks >= 2) {
        program.reads = reads
        program.readsInRecordAt = delivery.readsOffset
      }
      var fetchedBy: String?
      if !program.reads.isEmpty {
        fetchedBy = "the capture program, at the event (\(program.reads.reads.count) reads)"
          + (attachment.pointerFetch != nil ? "; if the kernel refuses BPF, \(readInProcess) (best-effort)" : "")
      }
      return AttachmentFact(
        path: .bpfRing(program), fallback: .perfRing, deliveredBy: deliveredBy(program, delivery), fetchedBy: fetchedBy)
    }
    if let fetch = attachment.pointerFetch {
      guard options.allowsBPF else {
        return AttachmentFact(path: .perfRing, fallback: .perfRing, fetchedBy: readInProcess + " (BPF is not allowed here; best-effort)")
      }
      let program = fetch.kernelFetch(commonType: 0)
      return AttachmentFact(
        path: .bpfFetch(program, filtersProcess: followsTasks), fallback: .perfRing,
        fetchedBy: fetchedBy(program, filtersProcess: followsTasks))
    }
    return AttachmentFact(path: .perfRing, fallback: .perfRing)
  }

  static let readInProcess = "process_vm_readv of the traced process after the event is read"

  /// The capture program type of an attachment; nil when its reads cannot be built by one.
  static func captureKind(of attachment: Attachment) -> CaptureProgram.Kind? {
    switch attachment.probe.kind {
    case .tracepoint: return .tracepoint
    case .software, .hardware, .profile, .watchpoint, .asyncwatchpoint: return .perfEvent
    case .uprobe, .uretprobe, .usdt:
      guard let dynamic = attachment.dynamicProbe, let record = dynamic.capture.kernelRecord(isReturn: dynamic.isReturn)
      else { return nil }
      return .probe(record)
    default: return nil
    }
  }

  /// The kernel tracepoint whose raw tracepoint link counts `attachment` (see `RawTracepointLink`):
  /// a tracepoint's whole count or count per task (no stack: a stack keeps the tracepoint program,
  /// whose stacks start where bpftrace's do), cheaper than a perf counter or tracepoint program,
  /// before which the kernel builds the event's record. nil for anything else, a syscall (its
  /// family's carrier counts it) and a filtered tracepoint (the filter is the perf event's).
  static func rawTracepointOfCount(_ attachment: Attachment) -> String? {
    guard let counting = attachment.counting, case .tracepoint(let system, let name, _) = attachment.probe.target,
      system != "syscalls", attachment.kernelFilter == nil
    else { return nil }
    if let key = counting.key {
      guard case .stacks(let parts) = key.source, !parts.hasStack else { return nil }
    }
    return name
  }

  /// For `--plan`: a count taken by a program on the tracepoint's raw tracepoint.
  private static func rawTracepointCounter(_ attachment: Attachment, otherwise: String) -> String? {
    guard let name = rawTracepointOfCount(attachment) else { return nil }
    return "a BPF raw_tracepoint program linked to the kernel tracepoint '\(name)' (no perf record is built"
      + " for it); \(otherwise) where the kernel has no raw tracepoint of that name"
  }

  private static func deliveredBy(_ program: CaptureProgram, _ delivery: RingDelivery) -> String {
    let count = program.instructions(ringFD: 0, lostMapFD: 0).count
    var fields = delivery.sampleFields.isEmpty ? [] : ["\(delivery.sampleFields)"]
    if delivery.readsComm { fields.append("comm") }
    if delivery.readsCredentials { fields.append("uid,gid") }
    if delivery.kernelStackDepth > 0 { fields.append("kstack(\(delivery.kernelStackDepth))") }
    if delivery.userStackDepth > 0 { fields.append("ustack(\(delivery.userStackDepth))") }
    if !delivery.reads.isEmpty { fields.append("reads(\(delivery.reads.count))") }
    let type: String
    switch program.kind {
    case .tracepoint: type = "tracepoint"
    case .perfEvent: type = "perf_event"
    case .onDemand: type = "raw_tracepoint (run by Scry on its own thread, BPF_PROG_TEST_RUN)"
    case .rawTracepoint: type = "raw_tracepoint"
    case .probe: type = "kprobe-type (on a uprobe made through the uprobe PMU)"
    }
    return "a BPF \(type) program of \(count) instructions writing \(program.sampleSize)-byte records "
      + "(fields: \(fields.isEmpty ? "none" : fields.joined(separator: ","))) into the BPF ring shared by all CPUs "
      + "(bpf_ringbuf_reserve); if the kernel refuses BPF, perf rings"
  }

  private static func fetchedBy(_ program: TracepointFetch, filtersProcess: Bool) -> String {
    let fallback = "; if the kernel refuses BPF, \(readInProcess) (best-effort)"
    guard (try? program.validate()) != nil else {
      // The attach step refuses it with the reason; the plan only says so.
      return "a BPF tracepoint program that cannot be built for this fetch" + fallback
    }
    let count = TracepointFetchProgram.instructions(
      for: program, outputMapFD: 0, scratchMapFD: 0, onlyProcess: filtersProcess ? 0 : nil
    ).count
    return "a BPF tracepoint program of \(count) instructions, copying the \(program.recordSize)-byte record and the "
      + "data into one \(program.sampleSize)-byte sample (bpf_perf_event_output)" + fallback
  }

  /// Samples carry PERF_SAMPLE_IDENTIFIER only when more than one attachment shares the rings;
  /// with one, every sample takes the same route.
  static func identifiesSamples(_ plan: Plan) -> Bool {
    plan.attachments.filter { $0.probe.kind.hasEventContext && !$0.isCountedOnly }.count > 1
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
    if !fields.isDisjoint(with: [.kernelStack, .userStack]) { type.insert(.callchain) }
    return type
  }

  /// The plan's event reads as the kernel layer makes them; nil if one has no place in the context.
  static func kernelReads(_ reads: [EventRead], reportsFailures: Bool = false) -> CaptureReads? {
    var made: [MemoryRead] = []
    for read in reads {
      guard let value = ProbeCapture.kernelValue(read.value) else { return nil }
      made.append(
        MemoryRead(
          value, space: read.isUserMemory ? .user : .kernel,
          valueSpace: read.isUserValue.map { $0 ? .user : .kernel }))
    }
    return CaptureReads(made, reportsFailures: reportsFailures)
  }
}

extension ProbeCapture {
  /// The capture as the kernel layer builds it; nil when a register has no known place in pt_regs.
  func kernelRecord(isReturn: Bool) -> ProbeRecord? {
    var fields: [ProbeRecord.Field] = []
    for field in self.fields {
      guard let value = Self.kernelValue(field.value) else { return nil }
      fields.append(ProbeRecord.Field(offset: field.offset, value: value))
    }
    return ProbeRecord(
      isKernel: isKernel, isReturn: isReturn, fields: fields, fixedSize: fixedSize, stringCapacity: stringCapacity)
  }

  static func kernelValue(_ value: Value) -> CaptureValue? {
    switch value {
    case .operand(let o, let byteCount, _): return kernelOperand(o).map { .operand($0, byteCount: byteCount) }
    case .read(let o, let offset, let byteCount, _): return kernelOperand(o).map { .read($0, offset: offset, byteCount: byteCount) }
    case .string(let o, let offset, let maxLength): return kernelOperand(o).map { .string($0, offset: offset, maxLength: maxLength) }
    case .bytes(let o, let offset, let count): return kernelOperand(o).map { .bytes($0, offset: offset, count: count) }
    }
  }

  /// A register by its place in pt_regs, a record field by its offset in the tracepoint's context.
  static func kernelOperand(_ o: Operand) -> CaptureOperand? {
    switch o {
    case .register(let name): return PTRegs.offset(of: name).map { .register(ptRegsOffset: $0) }
    case .returnValue: return PTRegs.offset(of: "ax").map { .register(ptRegsOffset: $0) }
    case .stackEntry(let n): return .stackEntry(n)
    case .memory(let base, let offset): return kernelOperand(base).map { .memory($0, offset: offset) }
    case .recordWord(let offset): return Int16(exactly: offset).map { .contextWord(offset: $0) }
    case .currentTask: return .currentTask
    case .constant(let value): return .constant(UInt64(bitPattern: value))
    case .indexed(let base, let index, let scale):
      guard let base = PTRegs.offset(of: base), let index = PTRegs.offset(of: index), scale.nonzeroBitCount == 1 else { return nil }
      return .scaledSum(.register(ptRegsOffset: base), indexWord: index, shift: scale.trailingZeroBitCount)
    }
  }
}

extension PointerFetch {
  /// The plan's fetch as the kernel layer builds its program.
  func kernelFetch(commonType: UInt16) -> TracepointFetch {
    let items = items.map { item -> TracepointFetch.Item in
      switch item {
      case .string(let offset, let maxLength, let user): .string(pointerOffset: offset, maxLength: maxLength, userMemory: user)
      case .stringArray(let offset, let count, let length): .stringArray(pointerOffset: offset, maxCount: count, maxLength: length)
      }
    }
    return TracepointFetch(recordSize: recordSize, items: items, commonType: commonType)
  }
}
