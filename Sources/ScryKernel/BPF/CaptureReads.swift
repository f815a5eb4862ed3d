/// A value at the event: a word of the capture program's context, the current task, or a word
/// read through pointers from one of those. The one vocabulary of what a capture program reads,
/// for a probe's record (`ProbeRecord.Operand`) and for the extra reads (`CaptureReads`) alike.
public indirect enum CaptureOperand: Sendable, Hashable {
  /// The 8 bytes at ctx + offset. At a tracepoint, the record's field at its tracefs offset
  /// (8 or more: bytes 0..<8 of the context are not the record's); at a probe or a perf event,
  /// a register by its offset in `struct pt_regs` (see `PTRegs`).
  case contextWord(offset: Int16)
  /// The address of the current task's `struct task_struct` (bpf_get_current_task): kernel memory.
  case currentTask
  /// Stack entry N of a probe: the word at sp + 8·N.
  case stackEntry(Int)
  /// The 8 bytes at `base + offset`.
  case memory(CaptureOperand, offset: Int64)
  /// A number known before the event (a USDT argument the compiler made a constant: `4@$5`).
  case constant(UInt64)
  /// `base` plus the context word at `indexWord` shifted left by `shift` (0…3): an x86 indexed
  /// address (`(%rcx,%rdx,8)`) at a probe.
  case scaledSum(CaptureOperand, indexWord: Int16, shift: Int)

  /// A probe's register by its offset in `struct pt_regs`: the word of its context there.
  public static func register(ptRegsOffset: Int16) -> CaptureOperand { .contextWord(offset: ptRegsOffset) }

  /// The chain starts at `bpf_get_current_task`: its loads are of kernel memory.
  public var startsAtCurrentTask: Bool {
    switch self {
    case .currentTask: true
    case .memory(let base, _), .scaledSum(let base, _, _): base.startsAtCurrentTask
    case .contextWord, .stackEntry, .constant: false
    }
  }

  /// Memory loads needed to reach the value.
  var depth: Int {
    switch self {
    case .contextWord, .currentTask, .constant: 0
    case .stackEntry: 1
    case .memory(let base, _): base.depth + 1
    case .scaledSum(let base, _, _): base.depth
    }
  }
}

/// What is kept of an operand: itself, or what lies at an address computed from it.
public enum CaptureValue: Sendable, Hashable {
  /// The operand's low `byteCount` bytes.
  case operand(CaptureOperand, byteCount: Int)
  /// The unsigned integer of `byteCount` (1, 2, 4 or 8) bytes at base + offset.
  case read(CaptureOperand, offset: Int64, byteCount: Int)
  /// The NUL-terminated string at base + offset, at most `maxLength` bytes with its NUL.
  case string(CaptureOperand, offset: Int64, maxLength: Int)
  /// `count` bytes at base + offset.
  case bytes(CaptureOperand, offset: Int64, count: Int)

  var base: CaptureOperand {
    switch self {
    case .operand(let base, _), .read(let base, _, _), .string(let base, _, _), .bytes(let base, _, _): base
    }
  }
}

/// Which memory the loads of a read go through.
public enum MemorySpace: Sendable, Hashable {
  /// Kernel memory: a task, a tracepoint's pointer fields (bpf_probe_read_kernel).
  case kernel
  /// The traced process's memory: a syscall's pointer arguments, a uprobe's (bpf_probe_read_user).
  case user

  var readHelper: BPFHelper { self == .kernel ? .probeReadKernel : .probeReadUser }
  var stringHelper: BPFHelper { self == .kernel ? .probeReadKernelStr : .probeReadUserStr }
}

/// One value a capture program reads at the event into its slot of the record's reads area.
///
/// What the slot holds:
/// - `.operand`, `.read`: 8 bytes, a u64 (the value zero-extended from `byteCount` bytes);
/// - `.string(maxLength:)`: the string, NUL-terminated and NUL-padded to the slot's end (a longer
///   string is cut to `maxLength - 1` bytes);
/// - `.bytes(count:)`: the bytes, then zeros to the slot's end.
///
/// A read fails when any load of its chain fails (an unmapped or bogus address): its slot is
/// then all zeros (0, the empty string) and the program adds one to the failed-read counter.
public struct MemoryRead: Sendable, Hashable {
  public var value: CaptureValue
  /// The memory the chain's loads go through.
  public var space: MemorySpace
  /// The memory of the value itself, the last load, when it differs from the chain's: a user
  /// address kept in a kernel struct (bpftrace's `uptr(curtask->mm->arg_start)`).
  public var valueSpace: MemorySpace

  public init(_ value: CaptureValue, space: MemorySpace, valueSpace: MemorySpace? = nil) {
    self.value = value
    self.space = space
    self.valueSpace = valueSpace ?? space
  }

  /// Bytes of its slot: 8 for a number, a string's or bytes' length rounded up to 8.
  public var slotSize: Int {
    switch value {
    case .operand, .read: 8
    case .string(_, _, let length), .bytes(_, _, let length): (length + 7) & ~7
    }
  }
}

/// The reads a capture program makes at the event besides its fixed fields, in order: the reads
/// area at the end of each record's body (`CaptureProgram.readsOffset`), each read's slot right
/// after the previous one's (all sizes are multiples of 8, so every slot starts on 8 bytes).
public struct CaptureReads: Sendable, Hashable {
  public var reads: [MemoryRead]
  /// After the last slot, one byte per read (the area rounded up to 8): 0, or the failed helper's
  /// return code (-14 for EFAULT) as an Int8, so user space can say which read failed and how
  /// (bpftrace's `-kk` helper errors). Off, the area is the slots alone.
  public var reportsFailures = false

  public init(_ reads: [MemoryRead] = [], reportsFailures: Bool = false) {
    self.reads = reads
    self.reportsFailures = reportsFailures
  }

  /// Where the failure codes start in the reads area (after every slot).
  public var failureCodesOffset: Int { reads.reduce(0) { $0 + $1.slotSize } }
  var failureCodesSize: Int { reportsFailures ? (reads.count + 7) & ~7 : 0 }

  public var isEmpty: Bool { reads.isEmpty }

  /// Where each read's slot starts in the reads area, in the order of `reads`.
  public var slotOffsets: [Int] {
    var offsets: [Int] = []
    var next = 0
    for read in reads {
      offsets.append(next)
      next += read.slotSize
    }
    return offsets
  }

  /// Bytes of the reads area.
  public var size: Int { failureCodesOffset + failureCodesSize }

  /// At most this many reads, loads in a chain, bytes of a string or bytes slot, and bytes in all:
  /// they keep the program short and a record well inside what a ring takes.
  public static let maximumCount = 64
  public static let maximumDepth = 8
  public static let maximumSlotSize = 4096
  public static let maximumSize = 8192

  /// Refuses reads the program cannot make for `kind`: bad sizes, context words the verifier
  /// would refuse, stack entries outside a probe, offsets over 32 bits.
  public func validate(for kind: CaptureProgram.Kind) throws(KernelError) {
    guard reads.count <= Self.maximumCount, size <= Self.maximumSize else {
      throw Self.error("\(reads.count) reads of \(size) bytes are over \(Self.maximumCount) or \(Self.maximumSize) bytes")
    }
    for read in reads {
      switch read.value {
      case .operand(_, let count), .read(_, _, let count):
        guard [1, 2, 4, 8].contains(count) else { throw Self.error("an integer of \(count) bytes") }
      case .string(_, _, let count), .bytes(_, _, let count):
        guard (1...Self.maximumSlotSize).contains(count) else {
          throw Self.error("a slot of \(count) bytes is outside 1...\(Self.maximumSlotSize)")
        }
      }
      switch read.value {
      case .read(_, let offset, _), .string(_, let offset, _), .bytes(_, let offset, _):
        guard Int32(exactly: offset) != nil else { throw Self.error("offset \(offset) is over 32 bits") }
      case .operand: break
      }
      guard read.value.base.depth <= Self.maximumDepth else {
        throw Self.error("a chain of \(read.value.base.depth) loads is over \(Self.maximumDepth)")
      }
      try Self.validate(read.value.base, for: kind)
    }
  }

  private static func validate(_ operand: CaptureOperand, for kind: CaptureProgram.Kind) throws(KernelError) {
    switch operand {
    case .contextWord(let offset):
      // What the verifier lets a program of each type load from its context, 8 bytes at a time.
      let words: Range<Int16>
      switch kind {
      case .tracepoint: words = 8..<2048  // PERF_MAX_TRACE_SIZE
      case .perfEvent: words = 0..<184  // struct bpf_perf_event_data: pt_regs, sample_period, addr
      case .probe: words = 0..<168  // struct pt_regs
      case .onDemand: words = 0..<0  // run with no context
      case .rawTracepoint: words = 0..<0  // the tracepoint's arguments, which no capture reads
      }
      guard words.contains(offset), offset % 8 == 0 else {
        throw error("context word \(offset) is not an 8-byte word in \(words) for this kind of program")
      }
    case .currentTask, .constant:
      break
    case .stackEntry(let n):
      guard case .probe = kind, n >= 0 else { throw error("stack entry \(n) outside a probe") }
    case .memory(let base, let offset):
      guard Int32(exactly: offset) != nil else { throw error("offset \(offset) is over 32 bits") }
      try validate(base, for: kind)
    case .scaledSum(let base, let index, let shift):
      guard case .probe = kind, (0..<168).contains(index), index % 8 == 0, (0...3).contains(shift) else {
        throw error("an indexed address needs a probe's register (\(index)) and a scale of 1, 2, 4 or 8")
      }
      try validate(base, for: kind)
    }
  }

  private static func error(_ explanation: String) -> KernelError {
    KernelError(operation: "build capture program", subject: "memory reads", errno: 0, explanation: explanation)
  }
}

extension CaptureProgram {
  /// The capture programs' per-CPU u64 counters, by their index in the counters map passed as
  /// `lostMapFD` (a per-CPU array of `Counter.allCases.count` u64 entries: see `makeCounters`).
  public enum Counter: Int32, CaseIterable, Sendable {
    /// Hits whose record the ring had no room for.
    case lostRecords = 0
    /// Reads of `reads` that failed (each counts once, whichever load of its chain failed).
    case failedReads = 1
  }

  /// A counters map for `load` / `instructions` (every counter at 0).
  public static func makeCounters() throws(KernelError) -> BPFMap {
    try BPFMap.perCPUArray(valueSize: 8, entries: Counter.allCases.count)
  }

  /// A counter's total over every CPU; 0 when `counters` has no such entry (a map of one entry,
  /// made before failed reads were counted).
  public static func total(of counter: Counter, in counters: BPFMap) throws(KernelError) -> UInt64 {
    guard counter.rawValue < counters.entries else { return 0 }
    return try counters.perCPUSum(index: UInt32(counter.rawValue))
  }
}
