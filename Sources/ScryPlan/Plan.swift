import ScryLanguage

/// What a checked program needs from the kernel and the runtime: the attachments to make,
/// the maps to keep, and each probe block's action in the typed IR. It holds no syntax tree:
/// `scry --plan` prints it, and the CLI and the REPL run the same value.
public struct Plan: Sendable {
  /// One per concrete probe, in block order.
  public var attachments: [Attachment]
  /// What each probe block reads, parallel to `actions`.
  public var blocks: [BlockNeeds]
  /// Each probe block's action, in script order.
  public var actions: [ProbeAction]
  /// Every map by name, in order of first appearance; the IR names maps by index into it.
  public var maps: [MapInfo]
  /// Bytes of the variable area the actions' variables live in.
  public var variablesSize: Int
  /// Whether the maps print at exit as bpftrace prints them (SystemTap programs print their own).
  public var printsMapsAtExit = true
  /// How `print(@h)` draws histograms (SystemTap programs draw SystemTap's table).
  public var histogramStyle = HistogramStyle.bpftrace
  /// The script, for where a failed read was written (`-kk`'s helper errors).
  public var source: SourceFile?

  public var hasEventProbes: Bool { attachments.contains { $0.probe.kind.hasEventContext } }

  public init(attachments: [Attachment], blocks: [BlockNeeds], actions: [ProbeAction], maps: [MapInfo], variablesSize: Int) {
    self.attachments = attachments
    self.blocks = blocks
    self.actions = actions
    self.maps = maps
    self.variablesSize = variablesSize
  }
}

/// A program the runtime cannot run as written: each diagnostic has its span.
public struct PlanningError: Error, Sendable {
  public var diagnostics: [Diagnostic]
  public init(diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
}

/// One kernel (or timer) event source feeding one probe block.
public struct Attachment: Sendable, Equatable {
  public var probe: ResolvedProbe
  public var blockIndex: Int
  /// Sample fields the kernel must record for this block's actions.
  public var sampleFields: SampleFields
  /// The part of the predicate the tracefs filter language can express, set on the perf event.
  public var kernelFilter: String?
  /// Whether the user-space predicate can be skipped when the kernel accepts `kernelFilter`.
  public var kernelFilterIsWholePredicate: Bool
  /// Which tasks fire the event: everyone, or only the traced process.
  public var scope: TaskScope
  /// Set when the block only counts: the kernel's own counter replaces a ring.
  public var counting: CountingTarget?
  /// For uprobes and kprobes: the dynamic event to create in tracefs before attaching.
  public var dynamicProbe: DynamicProbe?
  /// For tracepoints whose block reads memory behind pointer fields: what to copy with the record.
  public var pointerFetch: PointerFetch?
  /// Memory a tracepoint's block reads at the event (`args->skb->len`, `curtask->pid`): only
  /// Scry's capture program reads it, into slots after the record from `eventReadsOffset` on.
  public var eventReads: [EventRead] = []
  public var eventReadsOffset = 0
  /// Where each of `eventReads` is written and which helper bpftrace would name for it.
  public var eventReadSites: [ReadSite] = []

  /// Where the capture program's failure codes sit in RAW when it writes them (one byte per
  /// read after the last slot: see `CaptureReads.reportsFailures`).
  public var eventReadFailureCodesOffset: Int { eventReadsOffset + eventReads.reduce(0) { $0 + $1.slotSize } }

  /// Counted by a kernel counter whatever the path: no ring ever carries its hits. (One counted
  /// per key falls back to a ring where the kernel cannot count per key, and so does a timer's
  /// whole count, which only a BPF program can count: a perf counter of a clock counts time.)
  public var isCountedOnly: Bool { counting != nil && counting?.key == nil && probe.kind != .profile }

  /// The block reads memory that only Scry's capture program can read (tracefs and perf cannot):
  /// through a tracepoint's pointer fields or from `curtask`.
  public var readsMemoryOnlyAtTheEvent: Bool {
    !eventReads.isEmpty || (dynamicProbe?.capture.fields.contains { !$0.value.isTraceFSFetchable } ?? false)
  }
  /// For tracepoints a BPF program can hand over through the shared BPF ring buffer, when the
  /// kernel lets Scry load one (else `sampleFields` through perf rings).
  public var ringDelivery: RingDelivery?

  public init(
    probe: ResolvedProbe, blockIndex: Int, sampleFields: SampleFields = [], kernelFilter: String? = nil,
    kernelFilterIsWholePredicate: Bool = false, scope: TaskScope = .systemWide, counting: CountingTarget? = nil
  ) {
    self.probe = probe
    self.blockIndex = blockIndex
    self.sampleFields = sampleFields
    self.kernelFilter = kernelFilter
    self.kernelFilterIsWholePredicate = kernelFilterIsWholePredicate
    self.scope = scope
    self.counting = counting
  }
}

/// What Scry's capture program writes into the shared ring for each hit of a tracepoint, software
/// or timer event: the same sample fields perf would write (the task from a helper rather than
/// from the record), the record's bytes when the block reads a tracepoint's fields, and the task's
/// name at the moment of the event.
public struct RingDelivery: Sendable, Hashable {
  public var sampleFields: SampleFields
  /// Bytes of the record to copy (its fixed part, plus room for `__data_loc` data); 0 without `.raw`.
  public var recordSize: Int
  /// The block reads `comm`: the program copies the task's name at the moment of the event.
  public var readsComm: Bool
  /// The block reads `uid`, `gid` or `username`: the program copies them at the moment of the event.
  public var readsCredentials: Bool
  /// Frames of the kernel and user stacks the program copies (0: none).
  public var kernelStackDepth: Int
  public var userStackDepth: Int
  /// Memory the program reads at the event (through the record's pointer fields, from `curtask`),
  /// each into its slot of the RAW data after the record, from `readsOffset` on.
  public var reads: [EventRead] = []
  public var readsOffset = 0

  public init(
    sampleFields: SampleFields, recordSize: Int, readsComm: Bool = false, readsCredentials: Bool = false,
    kernelStackDepth: Int = 0, userStackDepth: Int = 0
  ) {
    self.sampleFields = sampleFields
    self.recordSize = recordSize
    self.readsComm = readsComm
    self.readsCredentials = readsCredentials
    self.kernelStackDepth = kernelStackDepth
    self.userStackDepth = userStackDepth
  }
}

/// Where a read is written, for bpftrace's `-kk` warning when it fails at an event.
public struct ReadSite: Sendable, Hashable {
  public var span: SourceSpan
  /// bpftrace 0.17's name of the helper (`probe_read_kernel`, `probe_read_user_str`, or
  /// `probe_read` where its address space is unknown: a constant address in BEGIN).
  public var helper: String

  public init(span: SourceSpan, helper: String) {
    self.span = span
    self.helper = helper
  }

  /// The site of a read of `e`: its span, but the `*` alone for a dereference, where bpftrace 0.17
  /// places it (its unary node's location is the operator's).
  public init(_ e: Expr, helper: String) {
    var span = e.span
    if case .unary(.deref, _) = e.kind { span = SourceSpan(start: span.start, end: span.start + 1) }
    self.init(span: span, helper: helper)
  }
}

/// One value a tracepoint's capture program reads at the event beyond the record.
public struct EventRead: Sendable, Hashable {
  public var value: ProbeCapture.Value
  /// The traced process's memory (a syscall's pointer arguments) rather than the kernel's.
  public var isUserMemory: Bool
  /// Whether the value itself (the last load) is in the process's memory, when that differs from
  /// the chain's: `uptr()` of an address kept in a kernel struct; nil: as the chain.
  public var isUserValue: Bool?

  public init(value: ProbeCapture.Value, isUserMemory: Bool, isUserValue: Bool? = nil) {
    self.value = value
    self.isUserMemory = isUserMemory
    self.isUserValue = isUserValue == isUserMemory ? nil : isUserValue
  }

  /// Bytes of its slot: 8 for a number, a string's or bytes' length rounded up to 8.
  public var slotSize: Int {
    switch value {
    case .operand, .read: return 8
    case .string(_, _, let length), .bytes(_, _, let length): return (length + 7) & ~7
    }
  }
}

/// A uprobe, uretprobe, kprobe or kretprobe: where it goes and what its block reads at the event.
/// Created in tracefs (one line written to `uprobe_events` or `kprobe_events`, whose fetch
/// arguments make the kernel copy registers and memory into the record), or, where Scry's capture
/// program may be loaded, through the kernel's uprobe PMU with the program building the same record.
public struct DynamicProbe: Sendable, Hashable {
  public var isKernel: Bool
  public var isReturn: Bool
  /// The event's name inside the run's group, a C identifier (`p0_readline`).
  public var name: String
  /// Where the breakpoint goes: `PATH:0xFILEOFFSET` for uprobes, `SYMBOL+OFFSET` for kprobes.
  public var location: String
  /// The binary of a uprobe (nil for kprobes), and the file offset of the probe point in it.
  public var binaryPath: String?
  public var fileOffset: UInt64 = 0
  /// A USDT probe's semaphore (a file offset in the binary), 0 for none: the uprobe's `ref_ctr_offset`.
  public var semaphoreOffset: UInt64 = 0
  /// What the block reads at the event, and where each value sits in the record.
  public var capture: ProbeCapture

  public init(isKernel: Bool, isReturn: Bool, name: String, location: String, capture: ProbeCapture) {
    self.isKernel = isKernel
    self.isReturn = isReturn
    self.name = name
    self.location = location
    self.capture = capture
  }

  /// `NAME=FETCHARG:TYPE` items (`a0=%di:u64`, `a1=+0(%si):ustring`), in record order.
  public var fetchArguments: [String] { capture.fetchArguments }

  /// The tracefs file the definition is written to.
  public var controlFile: String { isKernel ? "kprobe_events" : "uprobe_events" }

  /// The line that creates the event in `group` (one group per Scry run: `scry_PID`).
  public func definition(group: String) -> String {
    ([(isReturn ? "r" : "p") + ":\(group)/\(name)", location] + fetchArguments).joined(separator: " ")
  }

  /// The line that removes it again.
  public func removal(group: String) -> String { "-:\(group)/\(name)" }

  /// Where the fetch arguments start in the record: after the common fields and the probe's
  /// address (`__probe_ip`), or the function and return address for return probes.
  public var firstArgumentOffset: Int { isReturn ? 24 : 16 }
}

/// Where a fetched value sits in the event record, and how it is stored there.
public struct FetchedValue: Sendable, Hashable {
  public enum Layout: Sendable, Hashable {
    case integer(byteCount: Int, isSigned: Bool)
    /// A `__data_loc char[]`: a u32 of (length << 16 | offset) pointing into the record.
    case dataLocationString
    /// A NUL-terminated string in a slot of `maxLength` bytes (bytes after the NUL are junk).
    case inlineString(maxLength: Int)
    /// A u32 count, 4 bytes of padding, then `maxCount` string slots of `maxLength` bytes.
    case stringArray(maxCount: Int, maxLength: Int)
    /// `count` raw bytes (`buf()`).
    case bytes(count: Int)
    /// A char array of `count` bytes, NUL-terminated or full.
    case chars(count: Int)
    /// A struct or array value: its `count` bytes as they are in memory.
    case raw(count: Int)
  }

  public var offset: Int
  public var layout: Layout
  /// Where the pointer itself sits in the tracepoint record: what a runtime without BPF reads
  /// the target process's memory through, after the fact.
  public var pointerField: Int?

  public init(offset: Int, layout: Layout, pointerField: Int? = nil) {
    self.offset = offset
    self.layout = layout
    self.pointerField = pointerField
  }
}

/// What a tracepoint's BPF fetch program copies after the record: the memory some of the
/// record's pointer fields point to, read in the kernel when the event fires. The sample is
/// the record (`recordSize` bytes), then each item in an 8-byte aligned slot.
public struct PointerFetch: Sendable, Hashable {
  public enum Item: Sendable, Hashable {
    case string(pointerOffset: Int, maxLength: Int, userMemory: Bool)
    /// A NULL-terminated array of string pointers, such as execve's argv.
    case stringArray(pointerOffset: Int, maxCount: Int, maxLength: Int)

    var slotSize: Int {
      switch self {
      case .string(_, let maxLength, _): return maxLength
      case .stringArray(_, let maxCount, let maxLength): return 8 + maxCount * maxLength
      }
    }
  }

  public var recordSize: Int
  public var items: [Item]

  public init(recordSize: Int, items: [Item]) {
    self.recordSize = recordSize
    self.items = items
  }

  /// Where the first slot starts: after the record, on 8 bytes.
  public var firstSlot: Int { (recordSize + 7) & ~7 }

  /// Where the last slot ends.
  public var end: Int { items.reduce(firstSlot) { ($0 + $1.slotSize + 7) & ~7 } }

  /// The fetch as reads of Scry's capture program, slot for slot; nil when an item is a string
  /// array, which the capture program does not read.
  public var asEventReads: [EventRead]? {
    var reads: [EventRead] = []
    for item in items {
      guard case .string(let pointer, let maxLength, let user) = item else { return nil }
      reads.append(EventRead(value: .string(.recordWord(offset: pointer), offset: 0, maxLength: maxLength), isUserMemory: user))
    }
    return reads
  }

  /// Where each item's slot starts in the sample.
  public var itemOffsets: [Int] {
    var offsets: [Int] = []
    var at = (recordSize + 7) & ~7
    for item in items {
      offsets.append(at)
      at = (at + item.slotSize + 7) & ~7
    }
    return offsets
  }
}

/// The sample fields a block reads, mapped by the runtime to PERF_SAMPLE_* bits.
public struct SampleFields: OptionSet, Sendable, Hashable, CustomStringConvertible {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  /// pid and tid (PERF_SAMPLE_TID); tracepoints give tid alone through `common_pid`.
  public static let tid = SampleFields(rawValue: 1 << 0)
  public static let time = SampleFields(rawValue: 1 << 1)
  public static let cpu = SampleFields(rawValue: 1 << 2)
  /// The tracepoint record.
  public static let raw = SampleFields(rawValue: 1 << 3)
  public static let ip = SampleFields(rawValue: 1 << 4)
  public static let period = SampleFields(rawValue: 1 << 5)
  public static let kernelStack = SampleFields(rawValue: 1 << 6)
  public static let userStack = SampleFields(rawValue: 1 << 7)
  public static let cgroup = SampleFields(rawValue: 1 << 8)

  public var description: String {
    let names: [(SampleFields, String)] = [
      (.tid, "tid"), (.time, "time"), (.cpu, "cpu"), (.raw, "raw"), (.ip, "ip"), (.period, "period"),
      (.kernelStack, "kstack"), (.userStack, "ustack"), (.cgroup, "cgroup"),
    ]
    let shown = names.filter { contains($0.0) }.map(\.1)
    return shown.isEmpty ? "none" : shown.joined(separator: ",")
  }
}

/// Which tasks an attachment listens to.
public enum TaskScope: Sendable, Hashable, CustomStringConvertible {
  /// Every task, one event per CPU.
  case systemWide
  /// The traced process (`-p PID` or the `-c` child), its threads and children.
  case tracedProcess
  /// One task, by a constant pid in the predicate.
  case process(Int32)

  public var description: String {
    switch self {
    case .systemWide: return "system-wide"
    case .tracedProcess: return "traced process"
    case .process(let pid): return "pid \(pid)"
    }
  }
}

/// A block whose whole effect is to count its events into a map.
public struct CountingTarget: Sendable, Hashable {
  /// Index into `Plan.maps`.
  public var mapIndex: Int
  /// Keyed by `probe` (`@[probe] = count()`) rather than keyless.
  public var isKeyedByProbe: Bool
  /// `@x = count()` (an aggregation) rather than `@x++` (an integer).
  public var isAggregation: Bool
  /// Keyed by a value the probe reads at the event (`@[$f->m] = count()` at a uprobe): the kernel
  /// counts per key, and the map's one key is this 8-byte integer.
  public var key: CountedKey?
  /// The value the key is computed from, until the planner finds what the probe reads for it.
  var keyExpression: NodeID?
  /// What the key computes from that value (`arg0 % 8`), innermost step first.
  var keyArithmetic: [KeyArithmetic] = []
  /// The key's parts when it holds stacks and nothing the kernel cannot take at the event.
  var stackKeys: [StackKeyPart] = []
}

/// One part of a key counted per stack in the kernel.
public enum StackKeyPart: Sendable, Hashable {
  case stack(StackType)
  case comm
  /// `pid` or `tid`.
  case task(EventProperty)
}

extension [StackKeyPart] {
  /// Whether the key holds a stack, rather than the task alone (`@[comm]`, `@[pid]`).
  public var hasStack: Bool { contains { if case .stack = $0 { true } else { false } } }
  /// Whether the key holds a user stack, named through the process's mappings.
  public var hasUserStack: Bool { contains { if case .stack(let stack) = $0 { !stack.isKernel } else { false } } }
}

/// A counting key the kernel computes at the event.
public struct CountedKey: Sendable, Hashable {
  public enum Source: Sendable, Hashable {
    /// A value the probe reads: a register, or an integer through a pointer chain.
    case read(ProbeCapture.Value)
    /// The event's thread (`tid`) or process (`pid`).
    case task(EventProperty)
    /// The event's stacks (`@[kstack, ustack, comm] = count()`), with the task's name and ids the
    /// key may hold, in key order: stacks are ids in the kernel's stack maps, named when the map
    /// is read. A key of the task alone (`@[comm]`, `@[pid]`) is this with no stack.
    case stacks([StackKeyPart])
  }

  public var source: Source
  /// Arithmetic on the value read, innermost first (`arg0 % 8`): the kernel computes the key
  /// as the actions would.
  public var arithmetic: [KeyArithmetic] = []
  /// The parts of a key of stacks, in key order.
  public var stacks: [StackKeyPart]? {
    if case .stacks(let stacks) = source { return stacks }
    return nil
  }
  /// Widened to 8 bytes with its sign, as a map key of its type is.
  public var isSigned: Bool
}

/// One step of a counted key's arithmetic: `value op constant`, on 64-bit patterns as the IR's
/// binary expressions compute it.
public struct KeyArithmetic: Sendable, Hashable {
  public var op: IntOperator
  public var constant: UInt64
  /// Divides, takes the remainder and shifts right as signed.
  public var isSigned: Bool

  /// The step, when the kernel computes exactly what the runtime would: the operators a key
  /// needs, a divisor that is neither 0 nor negative (so signed division never overflows), a
  /// shift under 64.
  init?(op: IntOperator, constant: UInt64, isSigned: Bool) {
    switch op {
    case .add, .sub, .mul, .and, .or, .xor: break
    case .div, .mod: guard constant != 0, !isSigned || constant <= UInt64(Int64.max) else { return nil }
    case .shl, .shr: guard constant < 64 else { return nil }
    case .eq, .ne, .lt, .le, .gt, .ge: return nil
    }
    (self.op, self.constant, self.isSigned) = (op, constant, isSigned)
  }

  public var text: String {
    let symbol: String
    switch op {
    case .add: symbol = "+"
    case .sub: symbol = "-"
    case .mul: symbol = "*"
    case .div: symbol = "/"
    case .mod: symbol = "%"
    case .and: symbol = "&"
    case .or: symbol = "|"
    case .xor: symbol = "^"
    case .shl: symbol = "<<"
    case .shr: symbol = ">>"
    case .eq, .ne, .lt, .le, .gt, .ge: symbol = op.rawValue
    }
    return "\(symbol) \(constant)\(isSigned && (op == .div || op == .mod || op == .shr) ? " (signed)" : "")"
  }
}

/// What one probe block reads from its event, found by walking its statements.
public struct BlockNeeds: Sendable, Hashable {
  public var builtins: Set<Builtin> = []
  public var readsArgs = false
  /// Output or time is visible, so events must reach the actions in time order.
  public var observesOrder = false
  /// The most frames of a kernel or user stack the block reads (0: none).
  public var kernelStackDepth = 0
  public var userStackDepth = 0
  /// The block names user addresses (`usym`): the process's mappings must be tracked.
  public var namesUserAddresses = false

  public init() {}

  /// User addresses are named through the event's process's mappings (ustack, usym).
  public var readsUserMappings: Bool { userStackDepth > 0 || namesUserAddresses }

  public func reads(_ builtin: Builtin) -> Bool { builtins.contains(builtin) }

  /// The block reads the task's user or group.
  public var readsCredentials: Bool { reads(.uid) || reads(.gid) || reads(.username) }
}
