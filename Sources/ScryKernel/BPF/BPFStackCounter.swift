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

  /// One stack of the key, in key order.
  public struct Stack: Sendable, Hashable {
    public var isKernel: Bool
    /// Frames kept, at most (the kernel takes at most `perf_event_max_stack`, 127 by default).
    public var depth: Int
    public init(isKernel: Bool, depth: Int) {
      self.isKernel = isKernel
      self.depth = depth
    }
  }

  /// The id a key holds for a stack with no frames.
  public static let emptyStackID = UInt32.max
  /// The most frames a stack trace map holds per stack (the kernel's default `perf_event_max_stack`).
  public static let maximumDepth = 127
  /// Buckets of each stack trace map: a distinct stack whose hash lands in a taken bucket is
  /// lost (counted), so more buckets than bpftrace's 4096 make that rarer, at 8 KiB per 8 frames.
  public static let stackEntries = 8192

  public let stacks: [Stack]
  private let stackMaps: [BPFMap]
  private let counts: BPFMap
  private let counters: BPFMap
  public let program: BPFProgram

  /// Bytes of a key: a u32 id per stack, then the process id (0 when no stack is a user one).
  public var keySize: Int { Self.keySize(stackCount: stacks.count) }
  static func keySize(stackCount: Int) -> Int { (4 * stackCount + 4 + 7) & ~7 }

  /// Loads the program for `kind` (a tracepoint's, or a perf_event one); attach it with `attach`.
  public init(kind: CaptureProgram.Kind, stacks: [Stack], maxKeys: Int, name: String) throws(KernelError) {
    guard !stacks.isEmpty, stacks.allSatisfy({ $0.depth > 0 && $0.depth <= Self.maximumDepth }) else {
      throw KernelError(
        operation: "build stack counting program", subject: name, errno: 0,
        explanation: "between 1 and \(Self.maximumDepth) frames per stack are counted in the kernel")
    }
    self.stacks = stacks
    var maps: [BPFMap] = []
    for stack in stacks { maps.append(try BPFMap.stackTrace(depth: stack.depth, entries: Self.stackEntries)) }
    stackMaps = maps
    counts = try BPFMap.perCPUHash(keySize: Self.keySize(stackCount: stacks.count), valueSize: 8, entries: maxKeys)
    counters = try BPFMap.perCPUArray(valueSize: 8, entries: 2)
    let code = Self.instructions(
      stacks: stacks, stackMapFDs: maps.map(\.fd), countsFD: counts.fd, countersFD: counters.fd, kind: kind)
    switch kind {
    case .tracepoint: program = try BPFProgram.loadTracepointProgram(code, name: name)
    case .perfEvent: program = try BPFProgram.loadPerfEventProgram(code, name: name)
    case .probe: program = try BPFProgram.loadProbeProgram(code, name: name)
    }
  }

  /// The program: each stack's id into the key (a lost stack ends the program), the process id
  /// after them, then `counts[key] += 1` on this CPU.
  static func instructions(
    stacks: [Stack], stackMapFDs: [Int32], countsFD: Int32, countersFD: Int32, kind: CaptureProgram.Kind
  ) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let keySize = Self.keySize(stackCount: stacks.count)
    let key = Int16(-keySize)
    let value = key - 8
    let lost = asm.newLabel()
    let insert = asm.newLabel()
    let done = asm.newLabel()
    asm.emit(.mov64(.r6, .r1))
    for word in stride(from: 0, to: keySize, by: 8) { asm.emit(.st(.double, .r10, key + Int16(word), 0)) }
    for (i, stack) in stacks.enumerated() {
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
      asm.emit(.stx(.word, .r10, key + Int16(4 * i), .r0))
    }
    if stacks.contains(where: { !$0.isKernel }) {
      asm.emit(.call(.getCurrentPidTgid))
      asm.emit(.rsh64(.r0, 32))
      asm.emit(.stx(.word, .r10, key + Int16(4 * stacks.count), .r0))
    }
    asm.emit(BPFInstruction.ldMapFD(.r1, countsFD))
    asm.emit(.mov64(.r2, .r10))
    asm.emit(.add64(.r2, Int32(key)))
    asm.emit(.call(.mapLookupElem))
    asm.jump(.equal, .r0, 0, to: insert)
    asm.emit(.ldx(.double, .r1, .r0, 0))
    asm.emit(.add64(.r1, 1))
    asm.emit(.stx(.double, .r0, 0, .r1))
    asm.jump(to: done)
    // A new key: this CPU's count is 1 (another CPU inserting it meanwhile leaves this CPU's slot 0).
    asm.place(insert)
    asm.emit(.st(.double, .r10, value, 1))
    asm.emit(BPFInstruction.ldMapFD(.r1, countsFD))
    asm.emit(.mov64(.r2, .r10))
    asm.emit(.add64(.r2, Int32(key)))
    asm.emit(.mov64(.r3, .r10))
    asm.emit(.add64(.r3, Int32(value)))
    asm.emit(.mov64(.r4, 0))
    asm.emit(.call(.mapUpdateElem))
    asm.jump(.signedGreaterOrEqual, .r0, 0, to: done)
    asm.incrementElement(Counter.droppedKeys.rawValue, ofMapFD: countersFD)
    asm.jump(to: done)
    asm.place(lost)
    asm.incrementElement(Counter.lostStacks.rawValue, ofMapFD: countersFD)
    asm.place(done)
    switch kind {
    case .tracepoint: asm.emit(.mov64(.r0, BPFProgram.tracepointPassesOn))
    // The perf event (or PMU probe) is Scry's own: 0 spares the kernel the sample nobody reads.
    case .perfEvent, .probe: asm.emit(.mov64(.r0, 0))
    }
    asm.emit(.exit)
    return asm.finish()
  }

  /// Every key counted so far (as its bytes) with its total over the CPUs.
  public func totals() throws(KernelError) -> [(key: [UInt8], total: UInt64)] {
    try counts.perCPUSums(keySize: keySize)
  }

  /// The frames of stack `id` of the key's stack `index`, innermost first.
  public func frames(ofStack index: Int, id: UInt32) -> [UInt64] {
    id == Self.emptyStackID ? [] : stackMaps[index].stackFrames(id: id)
  }

  /// Stacks lost or keys dropped, over every CPU.
  public func total(of counter: Counter) -> UInt64 {
    (try? counters.perCPUSum(index: UInt32(counter.rawValue))) ?? 0
  }
}
