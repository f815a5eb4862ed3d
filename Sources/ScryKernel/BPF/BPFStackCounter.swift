/// Counts the hits of an event per stack in the kernel: `@[kstack, ustack] = count()`. The
/// program takes each stack's id from a BPF_MAP_TYPE_STACK_TRACE map (`bpf_get_stackid`, which
/// hashes the frames and stores each distinct stack once) and adds one to a per-CPU hash keyed by
/// the ids and the process, as bpftrace's own program does. No record leaves the kernel: the
/// runtime walks the counts at exit and at each `print` and reads each new stack's frames once.
///
/// Why: a ring record carrying its frames cost Scry ~10 µs of user-space work per sample
/// (decoding and interning up to 127 frames twice), against well under 1 µs here.
///
/// A stack the stack map cannot take (its bucket holds another stack: no BPF_F_REUSE_STACKID,
/// which would silently re-point ids already counted) is not counted and adds one to
/// `Counter.lostStacks`; a key the hash has no room for adds one to `Counter.droppedKeys`. An
/// empty stack (a user stack of a kernel thread, a kernel stack taken in user mode) is
/// `emptyStackID`, and counted.
public final class BPFStackCounter {
  public enum Counter: Int32 {
    case droppedKeys = 0
    case lostStacks = 1
  }

  /// One stack of the key.
  public struct Stack: Sendable, Hashable {
    public var isKernel: Bool
    /// Frames kept, at most (the kernel takes at most `perf_event_max_stack`, 127 by default).
    public var depth: Int
    public init(isKernel: Bool, depth: Int) {
      self.isKernel = isKernel
      self.depth = depth
    }
  }

  /// One part of the key, in key order. Each takes 8 bytes of the kernel's key (a stack's u32 id,
  /// a u32 process or thread id), the task's name 16; the process id follows them all.
  public enum Part: Sendable, Hashable {
    case stack(Stack)
    case comm
    case processID
    case threadID

    public var size: Int { self == .comm ? 16 : 8 }
  }

  /// The id a key holds for a stack with no frames.
  public static let emptyStackID = UInt32.max
  /// The most frames a stack trace map holds per stack (the kernel's default `perf_event_max_stack`).
  public static let maximumDepth = 127
  /// Buckets of each stack trace map: a distinct stack whose hash lands in a taken bucket is
  /// lost (counted), so more buckets than bpftrace's 4096 make that rarer, at 8 KiB per 8 frames.
  public static let stackEntries = 8192

  public let parts: [Part]
  /// The stack trace map of each part (nil for a part that is not a stack).
  private let stackMaps: [BPFMap?]
  private let counts: BPFMap
  private let cache: BPFCountCache
  private let counters: BPFMap
  public let program: BPFProgram

  /// Bytes of a key: the parts, then the process id (that a user stack is named in).
  public var keySize: Int { Self.keySize(parts) }
  static func keySize(_ parts: [Part]) -> Int { parts.reduce(8) { $0 + $1.size } }
  /// Where the process id sits in a key.
  public var processOffset: Int { keySize - 8 }

  /// Loads the program for `kind` (a tracepoint's, or a perf_event one); attach it with `attach`.
  /// With `commOffset` (where `task_struct.comm` sits, `taskCommOffset(in:)`) the program loads
  /// the task's name from the task itself (two loads, where `bpf_get_current_comm` copies it
  /// through a helper: a third of the program's time); a kernel that refuses that gets the helper.
  public init(kind: CaptureProgram.Kind, parts: [Part], maxKeys: Int, commOffset: Int? = nil, name: String) throws(KernelError) {
    for case .stack(let stack) in parts where stack.depth <= 0 || stack.depth > Self.maximumDepth {
      throw KernelError(
        operation: "build stack counting program", subject: name, errno: 0,
        explanation: "between 1 and \(Self.maximumDepth) frames per stack are counted in the kernel")
    }
    self.parts = parts
    var maps: [BPFMap?] = []
    for part in parts {
      if case .stack(let stack) = part {
        maps.append(try BPFMap.stackTrace(depth: stack.depth, entries: Self.stackEntries))
      } else {
        maps.append(nil)
      }
    }
    stackMaps = maps
    counts = try BPFMap.perCPUHash(keySize: Self.keySize(parts), valueSize: 8, entries: maxKeys)
    cache = try BPFCountCache(keySize: Self.keySize(parts))
    counters = try BPFMap.perCPUArray(valueSize: 8, entries: 2)
    let fds = (stacks: maps.map { $0?.fd ?? -1 }, cache: cache.map.fd, counts: counts.fd, counters: counters.fd)
    func load(commOffset: Int?) throws(KernelError) -> BPFProgram {
      let code = Self.instructions(
        parts: parts, stackMapFDs: fds.stacks, cacheFD: fds.cache, countsFD: fds.counts, countersFD: fds.counters,
        commOffset: commOffset, kind: kind)
      switch kind {
      case .tracepoint: return try BPFProgram.loadTracepointProgram(code, name: name)
      case .perfEvent: return try BPFProgram.loadPerfEventProgram(code, name: name)
      case .probe: return try BPFProgram.loadProbeProgram(code, name: name)
      case .onDemand: return try BPFProgram.loadOnDemandProgram(code, name: name)
      case .rawTracepoint: return try BPFProgram.loadRawTracepointProgram(code, name: name)
      }
    }
    if let commOffset, parts.contains(.comm), let loaded = try? load(commOffset: commOffset) {
      program = loaded
    } else {
      program = try load(commOffset: nil)
    }
  }

  /// Where `task_struct.comm` sits, from the kernel's BTF (nil when BTF does not say, or the name
  /// is not 16 bytes at an 8-byte boundary).
  public static func taskCommOffset(in btf: BTF) -> Int? {
    btf.byteOffset(ofMember: "comm", inStruct: "task_struct", size: 16, alignment: 8)
  }

  /// The program: each part into the key (a lost stack ends the program), the process id
  /// after them, then `counts[key] += 1` on this CPU, through the cache.
  static func instructions(
    parts: [Part], stackMapFDs: [Int32], cacheFD: Int32, countsFD: Int32, countersFD: Int32, commOffset: Int? = nil,
    kind: CaptureProgram.Kind
  ) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let keySize = Self.keySize(parts)
    let key = Int16(-keySize)
    let lost = asm.newLabel()
    let done = asm.newLabel()
    asm.emit(.mov64(.r6, .r1))
    for word in stride(from: 0, to: keySize, by: 8) { asm.emit(.st(.double, .r10, key + Int16(word), 0)) }
    var offset = key
    for (i, part) in parts.enumerated() {
      switch part {
      case .stack(let stack):
        let haveID = asm.newLabel()
        asm.emit(.mov64(.r1, .r6))
        asm.emit(BPFInstruction.ldMapFD(.r2, stackMapFDs[i]))
        asm.emit(.mov64(.r3, stack.isKernel ? 0 : CaptureProgram.userStackFlag))
        asm.emit(.call(.getStackID))
        asm.jump(.signedGreaterOrEqual, .r0, 0, to: haveID)
        // -EFAULT: no frames to take (the ring path's empty stack); anything else: the stack is lost.
        asm.jump(.notEqual, .r0, -14, to: lost)
        asm.emit(.mov64(.r0, -1))
        asm.place(haveID)
        asm.emit(.stx(.word, .r10, offset, .r0))
      case .comm where commOffset != nil:
        // The task's own name: padded with zeros as `bpf_get_current_comm` pads its copy.
        let comm = Int16(commOffset ?? 0)
        asm.emit(.call(.getCurrentTaskBTF))
        asm.emit(.ldx(.double, .r1, .r0, comm))
        asm.emit(.stx(.double, .r10, offset, .r1))
        asm.emit(.ldx(.double, .r1, .r0, comm + 8))
        asm.emit(.stx(.double, .r10, offset + 8, .r1))
      case .comm:
        asm.emit(.mov64(.r1, .r10))
        asm.emit(.add64(.r1, Int32(offset)))
        asm.emit(.mov64(.r2, 16))
        asm.emit(.call(.getCurrentComm))
      case .processID, .threadID:
        asm.emit(.call(.getCurrentPidTgid))
        if part == .processID { asm.emit(.rsh64(.r0, 32)) }
        asm.emit(.stx(.word, .r10, offset, .r0))
      }
      offset += Int16(part.size)
    }
    if parts.contains(where: { if case .stack(let stack) = $0 { return !stack.isKernel } else { return false } }) {
      asm.emit(.call(.getCurrentPidTgid))
      asm.emit(.rsh64(.r0, 32))
      asm.emit(.stx(.word, .r10, offset, .r0))
    }
    BPFCountCache.emitCount(
      key: key, keySize: keySize, scratch: key, cacheFD: cacheFD, countsFD: countsFD, countersFD: countersFD,
      droppedIndex: Counter.droppedKeys.rawValue, done: done, into: &asm)
    // A key of the task alone loses no stack, and the verifier refuses code nothing reaches.
    if parts.contains(where: { if case .stack = $0 { true } else { false } }) {
      asm.place(lost)
      asm.incrementElement(Counter.lostStacks.rawValue, ofMapFD: countersFD)
    }
    asm.place(done)
    switch kind {
    case .tracepoint: asm.emit(.mov64(.r0, BPFProgram.tracepointPassesOn))
    // The perf event (or PMU probe) is Scry's own: 0 spares the kernel the sample nobody reads.
    case .perfEvent, .probe, .onDemand, .rawTracepoint: asm.emit(.mov64(.r0, 0))
    }
    asm.emit(.exit)
    return asm.finish()
  }

  /// Every key counted so far (as its bytes) with its total over the CPUs.
  public func totals() throws(KernelError) -> [(key: [UInt8], total: UInt64)] {
    try cache.totals(of: counts)
  }

  /// The frames of stack `id` of the key's part `index`, innermost first.
  public func frames(ofPart index: Int, id: UInt32) -> [UInt64] {
    guard id != Self.emptyStackID, let map = stackMaps[index] else { return [] }
    return map.stackFrames(id: id)
  }

  /// Stacks lost or keys dropped, over every CPU.
  public func total(of counter: Counter) -> UInt64 {
    (try? counters.perCPUSum(index: UInt32(counter.rawValue))) ?? 0
  }
}
