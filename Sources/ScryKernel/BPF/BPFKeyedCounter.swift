/// Counts the hits of a uprobe or kprobe per key in the kernel: `@[$f->m] = count()` where the
/// key is a value the program reads at the event (a register, or an integer through a pointer
/// chain). The program adds one to the key's per-CPU counter in a hash map and returns 0, as
/// bpftrace's own program does, so no record leaves the kernel; the runtime walks the map at exit
/// and at each `print`.
///
/// The counters map holds failed key reads (the key is then 0, as bpftrace reads it) and keys
/// dropped because the map was full, by `Counter` index.
public final class BPFKeyedCounter {
  /// Indexes of the per-CPU counters beside the hash map.
  public enum Counter: Int32 {
    case droppedKeys = 0
    case failedReads = 1
  }

  /// What the program counts by.
  public enum Key: Sendable, Hashable {
    /// A value read at the event, widened to 8 bytes (sign-extended when signed).
    case read(CaptureValue, isSigned: Bool, space: MemorySpace)
    /// The thread id (`bpf_get_current_pid_tgid`'s low half).
    case threadID
    /// The process id (its high half).
    case processID
  }

  /// One step of arithmetic on the key after it is read (`arg0 % 8`): `key = key op constant`.
  public struct Arithmetic: Sendable, Hashable {
    /// `.arsh` is the signed right shift.
    public var operation: BPFALUOperation
    public var constant: UInt64
    /// Signed division and remainder (truncating toward zero).
    public var isSigned: Bool

    public init(_ operation: BPFALUOperation, _ constant: UInt64, isSigned: Bool) {
      (self.operation, self.constant, self.isSigned) = (operation, constant, isSigned)
    }
  }

  private let counts: BPFMap
  private let cache: BPFCountCache
  private let counters: BPFMap
  private let program: BPFProgram
  /// What the program runs on (a `PerfEvent` or an `UprobeLink`); attached while this holds it.
  private var attachment: AnyObject?

  /// Attaches the program to `event`, counting per `key` (an 8-byte key, sign-extended from its
  /// width when `isSigned`) into a map of at most `maxKeys` keys.
  public init(
    attachingTo event: PerfEvent, key: Key, arithmetic: [Arithmetic] = [], maxKeys: Int, name: String
  ) throws(KernelError) {
    (counts, cache, counters, program) = try Self.load(
      key: key, arithmetic: arithmetic, maxKeys: maxKeys, name: name, forUprobeLink: false)
    try event.attach(program)
    attachment = event
  }

  /// The same counter on a uprobe through a `uprobe_multi` link (cheaper per hit; see `UprobeLink`).
  public init(
    linkingTo site: UprobeSite, key: Key, arithmetic: [Arithmetic] = [], maxKeys: Int, name: String
  ) throws(KernelError) {
    (counts, cache, counters, program) = try Self.load(
      key: key, arithmetic: arithmetic, maxKeys: maxKeys, name: name, forUprobeLink: true)
    attachment = try UprobeLink(program, at: site)
  }

  /// The maps and the program on them.
  private static func load(
    key: Key, arithmetic: [Arithmetic], maxKeys: Int, name: String, forUprobeLink: Bool
  ) throws(KernelError) -> (BPFMap, BPFCountCache, BPFMap, BPFProgram) {
    let counts = try BPFMap.perCPUHash(keySize: 8, valueSize: 8, entries: maxKeys)
    let cache = try BPFCountCache(keySize: 8)
    let counters = try BPFMap.perCPUArray(valueSize: 8, entries: 2)
    let code = try instructions(
      key: key, arithmetic: arithmetic, cacheFD: cache.map.fd, countsFD: counts.fd, countersFD: counters.fd)
    return (counts, cache, counters, try BPFProgram.loadProbeProgram(code, name: name, forUprobeLink: forUprobeLink))
  }

  /// The program: the key into r9 (0 when a read fails), its arithmetic, then `counts[key] += 1`
  /// on this CPU, through the cache.
  static func instructions(
    key: Key, arithmetic: [Arithmetic] = [], cacheFD: Int32, countsFD: Int32, countersFD: Int32
  ) throws(KernelError) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let failed = asm.newLabel()
    let haveKey = asm.newLabel()
    let done = asm.newLabel()
    asm.emit(.mov64(.r6, .r1))
    var width = 8
    var isSigned = false
    var canFail = false
    switch key {
    case .threadID, .processID:
      asm.emit(.call(.getCurrentPidTgid))
      asm.emit(.mov64(.r9, .r0))
      if key == .processID { asm.emit(.rsh64(.r9, 32)) }
      width = 4
    case .read(.operand(let operand, let byteCount), let signed, let space):
      canFail = operand.depth > 0
      CaptureProgram.emitOperand(operand, space: space, onFailure: canFail ? failed : nil, into: &asm)
      (width, isSigned) = (byteCount, signed)
    case .read(.read(let base, let offset, let byteCount), let signed, let space):
      canFail = true
      CaptureProgram.emitOperand(base, space: space, onFailure: failed, into: &asm)
      CaptureProgram.emitHelperRead(offset, count: byteCount, toStack: true, at: 0, helper: space.readHelper, into: &asm)
      asm.jump(.signedLess, .r0, 0, to: failed)
      asm.emit(.ldx(BPFSize(bytes: byteCount) ?? .double, .r9, .r10, -8))
      (width, isSigned) = (byteCount, signed)
    case .read:
      throw KernelError(
        operation: "build counting program", subject: "key", errno: 0, explanation: "only an integer key is counted in the kernel")
    }
    if width < 8 {
      // Widened as the runtime widens a key: sign-extended when signed, zero-extended otherwise.
      let shift = Int32(64 - 8 * width)
      asm.emit(.lsh64(.r9, shift))
      let widen: BPFInstruction = isSigned ? .arsh64(.r9, shift) : .rsh64(.r9, shift)
      asm.emit(widen)
    }
    asm.jump(to: haveKey)
    if canFail {
      asm.place(failed)
      asm.emit(.mov64(.r9, 0))
      asm.incrementElement(Counter.failedReads.rawValue, ofMapFD: countersFD)
    } else {
      asm.place(failed)
    }
    asm.place(haveKey)
    // After the failed read's 0 too: the actions compute `0 % 8` from a failed read as well.
    for step in arithmetic { try Self.emit(step, on: .r9, into: &asm) }
    asm.emit(.stx(.double, .r10, -16, .r9))
    BPFCountCache.emitCount(
      key: -16, keySize: 8, scratch: -16, cacheFD: cacheFD, countsFD: countsFD, countersFD: countersFD,
      droppedIndex: Counter.droppedKeys.rawValue, done: done, into: &asm)
    asm.place(done)
    // The dynamic event is Scry's own: 0 spares the kernel the perf record nobody reads.
    asm.emit(.mov64(.r0, 0))
    asm.emit(.exit)
    return asm.finish()
  }

  /// `register = register op constant`, with r1 as scratch. Signed division and remainder run
  /// on the magnitude and negate back, which truncates toward zero as C and the actions do; the
  /// divisor must be positive then (a negative one could overflow, and the planner never asks).
  static func emit(_ step: Arithmetic, on register: BPFRegister, into asm: inout BPFAssembler) throws(KernelError) {
    let operation = step.operation
    let divides = operation == .div || operation == .mod
    let shifts = operation == .lsh || operation == .rsh || operation == .arsh
    if (divides && (step.constant == 0 || (step.isSigned && step.constant > UInt64(Int64.max))))
      || (shifts && step.constant >= 64)
    {
      throw KernelError(
        operation: "build counting program", subject: "key", errno: 0,
        explanation: "the key divides by \(step.constant) or shifts by it, which the kernel does not compute as Scry does")
    }
    asm.emit(BPFInstruction.ldImm64(.r1, step.constant))
    guard divides && step.isSigned else {
      asm.emit(.alu64(operation, register, .r1))
      return
    }
    let nonNegative = asm.newLabel()
    let done = asm.newLabel()
    asm.jump(.signedGreaterOrEqual, register, 0, to: nonNegative)
    asm.emit(.neg64(register))
    asm.emit(.alu64(operation, register, .r1))
    asm.emit(.neg64(register))
    asm.jump(to: done)
    asm.place(nonNegative)
    asm.emit(.alu64(operation, register, .r1))
    asm.place(done)
  }

  /// Every key counted so far (as its 8 bytes) with its total over the CPUs.
  public func totals() throws(KernelError) -> [(key: [UInt8], total: UInt64)] {
    try cache.totals(of: counts)
  }

  /// Detaches the program (a perf event it ran on stays open, disabled by its owner), so that
  /// the totals read after this are exact (see `BPFCountCache`).
  public func stop() {
    attachment = nil
  }

  /// Keys dropped (the map was full) or read as 0 (a failed read), over every CPU.
  public func total(of counter: Counter) -> UInt64 {
    (try? counters.perCPUSum(index: UInt32(counter.rawValue))) ?? 0
  }
}
