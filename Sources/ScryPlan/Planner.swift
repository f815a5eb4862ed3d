import ScryLanguage

/// Turns a checked program into a `Plan`: one attachment per concrete probe, with the sample
/// fields its block reads, the predicate part the kernel can filter, counting where it suffices,
/// and each block's action lowered to the typed IR.
public enum Planner {
  /// The plan of a program that checked clean; what the runtime cannot evaluate is refused here,
  /// with its span, before anything is attached.
  public static func plan(_ program: CheckedProgram) throws(PlanningError) -> Plan {
    precondition(!program.diagnostics.hasErrors, "plan only programs that checked clean")
    let probes = program.program.probes
    var blocks: [BlockNeeds] = []
    var attachments: [Attachment] = []
    let mapUses = mapUseCounts(program)
    var fetched: [NodeID: FetchedValue] = [:]
    for (index, block) in probes.enumerated() {
      let needs = analyze(block, in: program)
      blocks.append(needs)
      let resolved = index < program.probes.count ? program.probes[index] : []
      let filter = block.predicate.flatMap { FilterPushdown.kernelFilter(for: $0, in: program) }
      let scope = block.predicate.map { taskScope(of: $0, in: program) } ?? .systemWide
      let counting = countingTarget(for: block, in: program, mapUses: mapUses)
      for probe in resolved {
        var attachment = Attachment(probe: probe, blockIndex: index, scope: scope)
        // A watchpoint on the traced process's memory is a breakpoint in its tasks, as bpftrace's is.
        if case .breakpoint(let watch) = probe.target, watch.watchesProcess { attachment.scope = .tracedProcess }
        guard probe.kind.hasEventContext else {
          // BEGIN, END and interval blocks run in Scry's process. What they read at the event
          // (`curtask->…`) is read by a capture program Scry runs on its own thread just before
          // the block, into the RAW data as a software event's reads (see docs/internals.md).
          if let lowered = eventReads(probe, block: block, blockProbes: resolved, in: program) {
            attachment.eventReads = lowered.reads
            attachment.eventReadSites = lowered.sites
            fetched.merge(lowered.fetched) { a, _ in a }
          }
          attachments.append(attachment)
          continue
        }
        if probe.kind == .tracepoint {
          attachment.kernelFilter = filter?.text
          attachment.kernelFilterIsWholePredicate = filter?.isWhole ?? false
          if let lowered = pointerFetch(probe, block: block, blockProbes: resolved, in: program) {
            attachment.pointerFetch = lowered.fetch
            fetched.merge(lowered.fetched) { a, _ in a }
            // The BPF program sees every hit before any perf filter: the predicate runs in user space.
            attachment.kernelFilter = nil
            attachment.kernelFilterIsWholePredicate = false
          }
          if let lowered = eventReads(
            probe, block: block, blockProbes: resolved, in: program, after: attachment.pointerFetch)
          {
            attachment.eventReads = lowered.reads
            attachment.eventReadSites = lowered.sites
            attachment.eventReadsOffset = lowered.offset
            fetched.merge(lowered.fetched) { a, _ in a }
          }
          if needs.kernelStackDepth > 0 || needs.userStackDepth > 0 || !attachment.eventReads.isEmpty {
            // Stacks come from the capture program, which sees every hit: the predicate runs in user space.
            attachment.kernelFilter = nil
            attachment.kernelFilterIsWholePredicate = false
          }
        }
        if [.software, .profile, .hardware, .watchpoint, .asyncwatchpoint].contains(probe.kind),
          let lowered = eventReads(probe, block: block, blockProbes: resolved, in: program)
        {
          attachment.eventReads = lowered.reads
          attachment.eventReadSites = lowered.sites
          fetched.merge(lowered.fetched) { a, _ in a }
        }
        if let dynamic = dynamicProbe(probe, index: attachments.count, block: block, in: program) {
          attachment.dynamicProbe = dynamic.probe
          fetched.merge(dynamic.fetched) { a, _ in a }
        }
        // A watchpoint is sampled, never counted: the function form opens its breakpoints while
        // the run goes on, each routed to the block as it is opened.
        if probe.kind != .watchpoint, probe.kind != .asyncwatchpoint,
          let counting = counting.flatMap({ keyed($0, attachment: attachment, fetched: fetched, in: program) })
        {
          attachment.counting = counting
          if counting.key == nil, probe.kind == .profile {
            // Counted by a BPF program on the timer's events, else sampled (see `isCountedOnly`).
            attachment.sampleFields = sampleFields(for: probe.kind, needs: needs, eventProbeCount: 0)
          } else if let key = counting.key {
            // Where the kernel cannot count per key (a followed process), the ring delivers instead.
            attachment.sampleFields = sampleFields(for: probe.kind, needs: needs, eventProbeCount: 0)
            if case .stacks = key.source {} else { attachment.sampleFields.insert(.raw) }
          }
        } else {
          attachment.sampleFields = sampleFields(for: probe.kind, needs: needs, eventProbeCount: 0)
          if !(attachment.dynamicProbe?.fetchArguments.isEmpty ?? true) || attachment.pointerFetch != nil
            || !attachment.eventReads.isEmpty
          {
            attachment.sampleFields.insert(.raw)
          }
        }
        attachments.append(attachment)
      }
    }
    var refused: [Diagnostic] = []
    for (index, block) in probes.enumerated() {
      if let diagnostic = mixedEventReads(block, attachments: attachments.filter { $0.blockIndex == index }) {
        refused.append(diagnostic)
      }
    }
    if !refused.isEmpty { throw PlanningError(diagnostics: refused) }
    // Order is only observable across events when more than one ring can feed the actions.
    let sampled = attachments.filter { $0.probe.kind.hasEventContext && $0.counting == nil }
    for i in attachments.indices where attachments[i].probe.kind.hasEventContext && attachments[i].counting == nil {
      if blocks[attachments[i].blockIndex].observesOrder || sampled.count > 1 && anyObservesOrder(blocks) {
        attachments[i].sampleFields.insert(.time)
      }
    }
    for i in attachments.indices {
      attachments[i].ringDelivery = ringDelivery(for: attachments[i], needs: blocks[attachments[i].blockIndex])
    }
    var lowering = ActionLowering(program: program, fetched: fetched)
    let actions = probes.map { lowering.lower($0) }
    if !lowering.diagnostics.isEmpty { throw PlanningError(diagnostics: lowering.diagnostics) }
    var plan = Plan(
      attachments: attachments, blocks: blocks, actions: actions, maps: program.maps,
      variablesSize: lowering.variablesSize)
    plan.printsMapsAtExit = program.program.printsMapsAtExit
    plan.histogramStyle = program.program.histogramStyle
    plan.source = program.program.source
    return plan
  }

  /// A block on probes without a record (BEGIN, END, interval, software and profile events) and
  /// on probes with one, reading memory at the event on both: one action reads each value from one
  /// slot, but a record-less event lays its reads out alone while a tracepoint's follow its record
  /// and a uprobe's are fetch arguments (`curtask->tgid` would read the record's bytes).
  static func mixedEventReads(_ block: ProbeBlock, attachments: [Attachment]) -> Diagnostic? {
    let recordless = attachments.first { attachment in
      guard !attachment.eventReads.isEmpty else { return false }
      if case .tracepoint = attachment.probe.target { return false }
      return attachment.dynamicProbe == nil
    }
    guard let recordless else { return nil }
    let recorded = attachments.first { attachment in
      if case .tracepoint = attachment.probe.target {
        return !attachment.eventReads.isEmpty || attachment.pointerFetch != nil
      }
      return !(attachment.dynamicProbe?.capture.fields.isEmpty ?? true)
    }
    guard let recorded else { return nil }
    return .error(
      block.specs.first?.span ?? block.span,
      "this block reads memory at the event (curtask) both at '\(recordless.probe.name)', which has no record, and at"
        + " '\(recorded.probe.name)', whose reads are laid out after its record",
      hint: "give the probes without a record (BEGIN, END, interval, software, profile) a block of their own")
  }

  /// What a tracepoint block reads behind pointer fields, for a BPF program to copy with the record.
  static func pointerFetch(_ probe: ResolvedProbe, block: ProbeBlock, blockProbes: [ResolvedProbe], in program: CheckedProgram)
    -> (fetch: PointerFetch, fetched: [NodeID: FetchedValue])?
  {
    guard case .tracepoint(let category, _, let record?) = probe.target else { return nil }
    let records = blockProbes.compactMap { probe -> RecordType? in
      if case .tracepoint(_, _, let record) = probe.target { return record }
      return nil
    }
    var lowering = PointerFetches(
      program: program, record: record, recordSize: PointerFetches.recordSize(of: records), userMemory: category == "syscalls")
    lowering.lower(block)
    guard !lowering.items.isEmpty else { return nil }
    return (PointerFetch(recordSize: lowering.recordSize, items: lowering.items), lowering.fetched)
  }

  /// What a tracepoint block reads through memory at the event, for the capture program.
  /// The slots follow the record, and the pointer fetch's strings when there are any (the capture
  /// program reads those too, in the same slots, where the ring delivers the block).
  static func eventReads(
    _ probe: ResolvedProbe, block: ProbeBlock, blockProbes: [ResolvedProbe], in program: CheckedProgram,
    after fetch: PointerFetch? = nil
  ) -> (reads: [EventRead], sites: [ReadSite], offset: Int, fetched: [NodeID: FetchedValue])? {
    var lowering: EventReads
    if case .tracepoint(let category, _, let record?) = probe.target {
      let records = blockProbes.compactMap { probe -> RecordType? in
        if case .tracepoint(_, _, let record) = probe.target { return record }
        return nil
      }
      lowering = EventReads(
        program: program, record: record, isUserMemory: category == "syscalls",
        recordSize: fetch?.end ?? PointerFetches.recordSize(of: records))
    } else {
      // A software, hardware or timer event: no record, only what `curtask` leads to.
      lowering = EventReads(program: program, record: nil, isUserMemory: false, recordSize: 0)
    }
    lowering.lower(block)
    guard !lowering.reads.isEmpty else { return nil }
    return (lowering.reads, lowering.sites, lowering.firstOffset, lowering.fetched)
  }

  /// The dynamic event of a uprobe or kprobe, with its block's reads lowered to fetch arguments.
  static func dynamicProbe(_ probe: ResolvedProbe, index: Int, block: ProbeBlock, in program: CheckedProgram)
    -> (probe: DynamicProbe, fetched: [NodeID: FetchedValue])?
  {
    let location: String
    let symbol: String
    var staticArguments: [StaticProbeArgument]? = nil
    switch probe.target {
    case .userFunction(let path, let function, let fileOffset):
      location = "\(path):0x\(String(fileOffset, radix: 16))"
      symbol = function ?? "0x\(String(fileOffset, radix: 16))"
    case .userStaticProbe(let usdt):
      // tracefs's `PATH:OFFSET(REF_CTR_OFFSET)`: the kernel counts tracers in the semaphore.
      location = "\(usdt.path):0x\(String(usdt.fileOffset, radix: 16))"
        + (usdt.semaphoreOffset == 0 ? "" : "(0x\(String(usdt.semaphoreOffset, radix: 16)))")
      symbol = usdt.provider + "_" + usdt.name
      staticArguments = usdt.arguments
    case .kernelFunction(let function, let offset):
      location = offset == 0 ? function : "\(function)+\(offset)"
      symbol = function
    default:
      return nil
    }
    let isKernel = probe.kind == .kprobe || probe.kind == .kretprobe
    let isReturn = probe.kind == .uretprobe || probe.kind == .kretprobe
    var name = (isReturn ? "r" : "p") + "\(index)_" + String(symbol.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    // tracefs takes event names of up to 64 characters that are C identifiers.
    name = String(name.filter(\.isASCII).prefix(63))
    let firstOffset = isReturn ? 24 : 16
    var lowering = FetchArguments(
      program: program, isKernel: isKernel, isReturn: isReturn, firstOffset: firstOffset, staticArguments: staticArguments)
    lowering.probeName = probe.name
    lowering.lower(block)
    var dynamic = DynamicProbe(isKernel: isKernel, isReturn: isReturn, name: name, location: location, capture: lowering.capture)
    switch probe.target {
    case .userFunction(let path, _, let fileOffset):
      dynamic.binaryPath = path
      dynamic.fileOffset = fileOffset
    case .userStaticProbe(let usdt):
      dynamic.binaryPath = usdt.path
      dynamic.fileOffset = usdt.fileOffset
      dynamic.semaphoreOffset = usdt.semaphoreOffset
    default:
      break
    }
    return (dynamic, lowering.fetched)
  }

  /// A sampled tracepoint that every CPU's hits can reach through one BPF ring: system-wide (a
  /// per-task or filtered event is cheaper as perf does it: the kernel drops others' hits before
  /// any sample), no pointer data (its own program), only fields a program can write. A syscalls
  /// tracepoint that follows one process keeps its record too: the runtime may carry its family on
  /// one raw_syscalls program that drops other processes' syscalls first, then runs this capture.
  static func ringDelivery(for attachment: Attachment, needs: BlockNeeds) -> RingDelivery? {
    guard attachment.counting == nil, attachment.pointerFetch?.asEventReads != nil || attachment.pointerFetch == nil,
      attachment.kernelFilter == nil,
      attachment.scope == .systemWide || !attachment.eventReads.isEmpty || isSyscallsTracepoint(attachment)
    else { return nil }
    let record: RecordType
    switch attachment.probe.target {
    case .tracepoint(_, _, let known?):
      record = known
    case .perfEvent where attachment.probe.kind.hasEventContext, .timer where attachment.probe.kind.hasEventContext, .breakpoint:
      // Software, hardware and profile events: a perf_event program captures the task, time and
      // CPU (and the task's name at the event, which perf would leave to the process table).
      return eventOnlyDelivery(for: attachment, needs: needs)
    case .userFunction, .userStaticProbe:
      // A uprobe: the capture program builds the record tracefs would, from the registers.
      guard let dynamic = attachment.dynamicProbe else { return nil }
      return probeDelivery(for: attachment, capture: dynamic.capture, needs: needs)
    default:
      return nil
    }
    // Stacks are the program's own fields (bpf_get_stack), not perf's.
    var fields = attachment.sampleFields.subtracting([.kernelStack, .userStack])
    if !needs.readsArgs { fields.remove(.raw) }
    // The program reads the task from helpers: pid comes with tid (no process table lookup),
    // and the name, uid and gid are copied at the moment of the event.
    if needs.reads(.pid) || needs.reads(.tid) || needs.readsUserMappings { fields.insert(.tid) }
    if !attachment.eventReads.isEmpty { fields.insert(.raw) }
    let recordSize = fields.contains(.raw) ? PointerFetches.recordSize(of: [record]) : 0
    // The program copies the record with one bounded read (PERF_MAX_TRACE_SIZE is a safe bound).
    guard fields.isSubset(of: [.tid, .time, .cpu, .raw]), recordSize <= 2048 else { return nil }
    var delivery = RingDelivery(
      sampleFields: fields, recordSize: recordSize, readsComm: needs.reads(.comm), readsCredentials: needs.readsCredentials,
      kernelStackDepth: needs.kernelStackDepth, userStackDepth: needs.userStackDepth)
    delivery.reads = attachment.eventReads
    delivery.readsOffset = attachment.eventReadsOffset
    if let fetch = attachment.pointerFetch, let strings = fetch.asEventReads {
      // `str(args->filename)`: read by the capture program into the slots the fetch planned.
      delivery.reads = strings + delivery.reads
      delivery.readsOffset = fetch.firstSlot
    }
    return delivery
  }

  /// What a perf_event program captures for an event without a record; nil when the block reads
  /// something only perf can give (the instruction pointer, the period, the cgroup, stacks).
  static func eventOnlyDelivery(for attachment: Attachment, needs: BlockNeeds) -> RingDelivery? {
    // The task's identity comes from helpers: TID only when pid or tid are read (the name, uid
    // and gid have their own fields).
    var fields = attachment.sampleFields.subtracting([.tid, .kernelStack, .userStack])
    if needs.reads(.pid) || needs.reads(.tid) || needs.readsUserMappings { fields.insert(.tid) }
    // Memory read at the event (`curtask->…`) is the RAW data: the event has no record of its own.
    if !attachment.eventReads.isEmpty { fields.insert(.raw) }
    guard fields.isSubset(of: [.tid, .time, .cpu, .raw]) else { return nil }
    var delivery = RingDelivery(
      sampleFields: fields, recordSize: 0, readsComm: needs.reads(.comm), readsCredentials: needs.readsCredentials,
      kernelStackDepth: needs.kernelStackDepth, userStackDepth: needs.userStackDepth)
    delivery.reads = attachment.eventReads
    return delivery
  }

  /// What a probe's capture program writes: the task from helpers, the record only when the
  /// block reads an argument or memory.
  static func probeDelivery(for attachment: Attachment, capture: ProbeCapture, needs: BlockNeeds) -> RingDelivery? {
    var fields = attachment.sampleFields.subtracting([.kernelStack, .userStack])
    if capture.fields.isEmpty { fields.remove(.raw) }
    if needs.reads(.pid) || needs.reads(.tid) || needs.readsUserMappings { fields.insert(.tid) }
    guard fields.isSubset(of: [.tid, .time, .cpu, .raw]) else { return nil }
    let recordSize = fields.contains(.raw) ? capture.fixedSize + capture.stringCapacity : 0
    return RingDelivery(sampleFields: fields, recordSize: recordSize, readsComm: needs.reads(.comm), readsCredentials: needs.readsCredentials,
      kernelStackDepth: needs.kernelStackDepth, userStackDepth: needs.userStackDepth)
  }

  private static func anyObservesOrder(_ blocks: [BlockNeeds]) -> Bool { blocks.contains { $0.observesOrder } }

  /// Sample fields for a block's needs. Probes with a record (tracepoints, uprobes, kprobes) take
  /// the task from the record's `common_pid` and its process from the process table: RAW alone
  /// costs the traced task less than RAW or TID plus another field (see `EventSources.sampleType`).
  static func sampleFields(for kind: ProbeKind, needs: BlockNeeds, eventProbeCount: Int) -> SampleFields {
    var fields: SampleFields = []
    let hasRecord: Set<ProbeKind> = [.tracepoint, .uprobe, .uretprobe, .usdt, .kprobe, .kretprobe]
    if needs.readsArgs && kind == .tracepoint { fields.insert(.raw) }
    if needs.builtins.contains(where: \.isTaskIdentity) || needs.readsUserMappings {
      // User addresses are named through their process's mappings: the process must be known.
      fields.insert(hasRecord.contains(kind) ? .raw : .tid)
    }
    if needs.reads(.cgroup) { fields.insert(.cgroup) }
    if needs.reads(.nsecs) || needs.reads(.elapsed) || needs.observesOrder { fields.insert(.time) }
    if needs.reads(.cpu) || needs.reads(.numaid) { fields.insert(.cpu) }
    if needs.kernelStackDepth > 0 { fields.insert(.kernelStack) }
    if needs.userStackDepth > 0 { fields.insert(.userStack) }
    // `func` of a uprobe is the probed function's name; elsewhere the sample's address.
    if needs.reads(.function) && kind != .uprobe && kind != .uretprobe { fields.insert(.ip) }
    return fields
  }

  /// Builtins, `args` and order-sensitive statements of one block.
  static func analyze(_ block: ProbeBlock, in program: CheckedProgram) -> BlockNeeds {
    var needs = BlockNeeds()
    block.forEachExpression { expr in
      if case .builtin(let builtin)? = program.resolutions[expr.id] {
        needs.builtins.insert(builtin)
        if builtin == .args { needs.readsArgs = true }
        if case .arg = builtin { needs.readsArgs = true }
      }
      if program.function(of: expr)?.isOrderObservable == true { needs.observesOrder = true }
      if program.function(of: expr) == .usym { needs.namesUserAddresses = true }
      if case .stack(let stack) = program.type(of: expr), isStackSource(expr, in: program) {
        if stack.isKernel {
          needs.kernelStackDepth = Swift.max(needs.kernelStackDepth, stack.depth)
        } else {
          needs.userStackDepth = Swift.max(needs.userStackDepth, stack.depth)
        }
      }
    }
    if needs.reads(.nsecs) || needs.reads(.elapsed) { needs.observesOrder = true }
    for stmt in block.body.allStatements() {
      // A plain assignment to a map keeps the last writer: which one is last depends on order.
      if case .assign(let target, nil, let value) = stmt.kind, case .map = target.kind,
        program.function(of: value)?.isAggregation != true
      {
        needs.observesOrder = true
      }
    }
    return needs
  }

  /// `syscalls:sys_enter_*` or `sys_exit_*`: one of a family a raw_syscalls program can carry.
  static func isSyscallsTracepoint(_ attachment: Attachment) -> Bool {
    guard case .tracepoint("syscalls", let name, _) = attachment.probe.target else { return false }
    return name.hasPrefix("sys_enter_") || name.hasPrefix("sys_exit_")
  }

  /// `kstack`, `ustack` or a call of them: where a stack is taken (not a variable holding one).
  static func isStackSource(_ expr: Expr, in program: CheckedProgram) -> Bool {
    switch program.resolutions[expr.id] {
    case .builtin(.kstack)?, .builtin(.ustack)?: return true
    default: return program.function(of: expr) == .kstack || program.function(of: expr) == .ustack
    }
  }

  /// `pid == cpid` or `pid == 1234` as a top-level conjunct pins the block to one process.
  static func taskScope(of predicate: Expr, in program: CheckedProgram) -> TaskScope {
    for conjunct in FilterPushdown.conjuncts(of: predicate) {
      guard case .binary(.equal, let a, let b) = conjunct.kind else { continue }
      for (lhs, rhs) in [(a, b), (b, a)] {
        guard case .builtin(.pid)? = program.resolutions[lhs.id] else { continue }
        if case .builtin(.cpid)? = program.resolutions[rhs.id] { return .tracedProcess }
        if case .integer(let n) = rhs.kind, n > 0, n <= UInt64(Int32.max) { return .process(Int32(n)) }
      }
    }
    return .systemWide
  }

  /// How many expressions name each map, over the whole program.
  static func mapUseCounts(_ program: CheckedProgram) -> [String: Int] {
    var uses: [String: Int] = [:]
    // END blocks read a counted map after the runtime has folded its counters in (SystemTap's
    // printing of globals at exit is such a block).
    for block in program.program.probes where !block.specs.allSatisfy({ ProbeKind(provider: $0.provider) == .end }) {
      block.forEachExpression { expr in
        // Printing, clearing or zeroing a whole counted map is fine: the runtime folds counters in
        // first. One element (`print(@m[k])`) is read like any other use.
        if let function = program.function(of: expr), [.print, .clear, .zero].contains(function),
          case .call(_, _, let args) = expr.kind, let first = args.first,
          case .map(let mapName)? = program.resolutions[first.id], !Self.isElementAccess(first)
        {
          uses[mapName, default: 0] -= 1
        }
        if case .map(let name)? = program.resolutions[expr.id] { uses[name, default: 0] += 1 }
      }
    }
    return uses
  }

  /// `@m[k]` or `m[k]`: one element of a map, not the whole map.
  private static func isElementAccess(_ e: Expr) -> Bool {
    if case .map(_, let keys, _) = e.kind { return !keys.isEmpty }
    return false
  }

  /// A block that is exactly `@m = count()`, `@m[probe] = count()` or `@m++`, with no predicate,
  /// on a map nothing else reads, can be served by the kernel's event counter.
  static func countingTarget(for block: ProbeBlock, in program: CheckedProgram, mapUses: [String: Int])
    -> CountingTarget?
  {
    guard block.predicate == nil, let stmt = block.body.statements.last else { return nil }
    // Before the count, only scratch variables given pure values (`$f = (struct Foo *)arg0`):
    // they can only be read by the key, which the kernel computes from the same chain.
    for earlier in block.body.statements.dropLast() {
      guard case .assign(let variable, nil, let value) = earlier.kind, case .variable? = program.resolutions[variable.id],
        isPure(value, in: program)
      else { return nil }
    }
    let hasVariables = block.body.statements.count > 1
    let target: Expr
    var isAggregation = false
    switch stmt.kind {
    case .assign(let t, nil, let value):
      guard program.function(of: value) == .count else { return nil }
      target = t
      isAggregation = true
    case .expression(let e):
      guard case .update(let t, true, _) = e.kind else { return nil }
      target = t
    default:
      return nil
    }
    guard case .map(_, let keys, _) = target.kind, let name = mapName(target, in: program),
      let mapIndex = program.maps.firstIndex(where: { $0.name == name })
    else { return nil }
    var keyedByProbe = false
    var keyExpression: NodeID?
    var keyArithmetic: [KeyArithmetic] = []
    if keys.count == 1, case .builtin(.probe)? = program.resolutions[keys[0].id] {
      keyedByProbe = true
    } else if keys.count == 1, isAggregation, case .integer = program.type(of: keys[0]) {
      let (base, steps) = Self.keyArithmetic(keys[0], in: program)
      keyExpression = base.id
      keyArithmetic = steps
    } else if isAggregation, !keys.isEmpty, !hasVariables, let stacks = stackKeys(keys, in: program) {
      var counting = CountingTarget(mapIndex: mapIndex, isKeyedByProbe: false, isAggregation: true)
      counting.stackKeys = stacks
      return mapUses[name, default: 0] > 1 ? nil : counting
    } else if !keys.isEmpty {
      return nil
    }
    if hasVariables && keyExpression == nil { return nil }
    // The map may appear only here (print/clear/zero at exit fold the counters in first).
    if mapUses[name, default: 0] > 1 { return nil }
    var counting = CountingTarget(mapIndex: mapIndex, isKeyedByProbe: keyedByProbe, isAggregation: isAggregation)
    counting.keyExpression = keyExpression
    counting.keyArithmetic = keyArithmetic
    return counting
  }

  /// A key `value op constant …` split into the value and the steps the kernel can apply after
  /// reading it (`arg0 % 8`), innermost first; the key itself and no steps otherwise. Signedness
  /// is decided as the IR's binary expressions decide it.
  static func keyArithmetic(_ key: Expr, in program: CheckedProgram) -> (base: Expr, steps: [KeyArithmetic]) {
    var steps: [KeyArithmetic] = []
    var value = key
    while case .binary(let op, let lhs, let rhs) = value.kind, case .integer(let constant) = rhs.kind,
      let intOp = IntOperator(op), case .integer = program.type(of: lhs),
      let step = KeyArithmetic(
        op: intOp, constant: constant,
        isSigned: program.program.integerSigns.operationIsSigned(op, program.type(of: lhs), program.type(of: rhs)))
    {
      steps.append(step)
      value = lhs
    }
    return (value, steps.reversed())
  }

  /// The parts of a key the kernel's counter takes at the event: `kstack`/`ustack` values its
  /// stack maps can hold (up to 127 frames), `comm`, `pid`, `tid`; nil for any other key. A key
  /// of the task alone (`@[comm] = count()`) is counted there too: no ring record per event, no
  /// ring shared by every CPU's producers, and the name the task had at the event.
  static func stackKeys(_ keys: [Expr], in program: CheckedProgram) -> [StackKeyPart]? {
    var parts: [StackKeyPart] = []
    for key in keys {
      switch (program.type(of: key), program.resolutions[key.id]) {
      case (_, .builtin(.comm)?): parts.append(.comm)
      case (_, .builtin(.pid)?): parts.append(.task(.pid))
      case (_, .builtin(.tid)?): parts.append(.task(.tid))
      case (.stack(let stack), let resolution) where stack.depth > 0 && stack.depth <= StackType.defaultDepth:
        if case .builtin(let builtin)? = resolution, builtin == .kstack || builtin == .ustack {
        } else if let function = program.function(of: key), function == .kstack || function == .ustack {
        } else {
          return nil
        }
        parts.append(.stack(stack))
      default: return nil
      }
    }
    return parts.isEmpty ? nil : parts
  }

  /// A counting target whose key is read at the event, with the read the dynamic probe makes for
  /// it; nil when the key is not one value the probe reads (or the probe is not a dynamic one).
  static func keyed(
    _ target: CountingTarget, attachment: Attachment, fetched: [NodeID: FetchedValue], in program: CheckedProgram
  ) -> CountingTarget? {
    let programmed: [ProbeKind] = [.profile, .software, .tracepoint]
    var target = target
    // `@[pid] = count()` on an event with a program of its own is a key of the task alone.
    if target.stackKeys.isEmpty, target.keyArithmetic.isEmpty, programmed.contains(attachment.probe.kind),
      let id = target.keyExpression, case .builtin(let builtin)? = program.resolutions[id], builtin == .pid || builtin == .tid
    {
      target.stackKeys = [.task(builtin == .pid ? .pid : .tid)]
    }
    if !target.stackKeys.isEmpty {
      // Stack ids are taken by a program on the event: tracepoints, software and timer events.
      guard programmed.contains(attachment.probe.kind) else { return nil }
      // A key of the task alone at a syscall stays with the capture program, where a block's
      // syscalls share one raw_syscalls carrier: counted, each tracepoint would be attached on
      // its own (`sys_enter_*`: 25 s to tear down).
      if case .tracepoint("syscalls", _, _) = attachment.probe.target,
        !target.stackKeys.hasStack
      {
        return nil
      }
      var keyed = target
      keyed.key = CountedKey(source: .stacks(target.stackKeys), isSigned: false)
      return keyed
    }
    guard let id = target.keyExpression else { return target }
    // Uprobes: the counter's probe is made through the uprobe PMU.
    guard attachment.dynamicProbe?.binaryPath != nil else { return nil }
    switch program.resolutions[id] {
    case .builtin(.tid)?:
      var keyed = target
      keyed.key = CountedKey(source: .task(.tid), arithmetic: target.keyArithmetic, isSigned: false)
      return keyed
    case .builtin(.pid)?:
      var keyed = target
      keyed.key = CountedKey(source: .task(.pid), arithmetic: target.keyArithmetic, isSigned: false)
      return keyed
    default:
      break
    }
    guard let dynamic = attachment.dynamicProbe, let value = fetched[id], case .integer(_, let isSigned) = value.layout,
      (program.fields[id]?.bitWidth ?? 0) == 0,
      let field = dynamic.capture.fields.first(where: { $0.offset == value.offset })
    else { return nil }
    switch field.value {
    case .operand, .read: break
    case .string, .bytes: return nil
    }
    var keyed = target
    keyed.key = CountedKey(source: .read(field.value), arithmetic: target.keyArithmetic, isSigned: isSigned)
    return keyed
  }

  /// An expression without effects: no call, no update, no map.
  static func isPure(_ e: Expr, in program: CheckedProgram) -> Bool {
    var pure = true
    var pending = [e]
    while let next = pending.popLast() {
      switch next.kind {
      case .call, .update, .map: pure = false
      default: pending.append(contentsOf: next.children)
      }
    }
    return pure
  }

  static func mapName(_ expr: Expr, in program: CheckedProgram) -> String? {
    if case .map(let name)? = program.resolutions[expr.id] { return name }
    return nil
  }
}
