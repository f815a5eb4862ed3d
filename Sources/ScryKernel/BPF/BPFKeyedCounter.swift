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

  private let counts: BPFMap
  private let counters: BPFMap
  private let program: BPFProgram
  /// The event the program is attached to; the program stays attached while it is open.
  public let event: PerfEvent

  /// Attaches the program to `event`, counting per `key` (an 8-byte key, sign-extended from its
  /// width when `isSigned`) into a map of at most `maxKeys` keys.
  public init(attachingTo event: PerfEvent, key: Key, maxKeys: Int, name: String) throws(KernelError) {
    counts = try BPFMap.perCPUHash(keySize: 8, valueSize: 8, entries: maxKeys)
    counters = try BPFMap.perCPUArray(valueSize: 8, entries: 2)
    let code = try Self.instructions(key: key, countsFD: counts.fd, countersFD: counters.fd)
    program = try BPFProgram.loadProbeProgram(code, name: name)
    try event.attach(program)
    self.event = event
  }

  /// The program: the key into r9 (0 when a read fails), then `counts[key] += 1` on this CPU.
  static func instructions(key: Key, countsFD: Int32, countersFD: Int32) throws(KernelError) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let failed = asm.newLabel()
    let haveKey = asm.newLabel()
    let insert = asm.newLabel()
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
    asm.emit(.stx(.double, .r10, -16, .r9))
    asm.emit(BPFInstruction.ldMapFD(.r1, countsFD))
    asm.emit(.mov64(.r2, .r10))
    asm.emit(.add64(.r2, -16))
    asm.emit(.call(.mapLookupElem))
    asm.jump(.equal, .r0, 0, to: insert)
    asm.emit(.ldx(.double, .r1, .r0, 0))
    asm.emit(.add64(.r1, 1))
    asm.emit(.stx(.double, .r0, 0, .r1))
    asm.jump(to: done)
    // A new key: this CPU's count is 1 (another CPU inserting it meanwhile leaves this CPU's slot 0).
    asm.place(insert)
    asm.emit(.st(.double, .r10, -24, 1))
    asm.emit(BPFInstruction.ldMapFD(.r1, countsFD))
    asm.emit(.mov64(.r2, .r10))
    asm.emit(.add64(.r2, -16))
    asm.emit(.mov64(.r3, .r10))
    asm.emit(.add64(.r3, -24))
    asm.emit(.mov64(.r4, 0))
    asm.emit(.call(.mapUpdateElem))
    asm.jump(.signedGreaterOrEqual, .r0, 0, to: done)
    asm.incrementElement(Counter.droppedKeys.rawValue, ofMapFD: countersFD)
    asm.place(done)
    // The dynamic event is Scry's own: 0 spares the kernel the perf record nobody reads.
    asm.emit(.mov64(.r0, 0))
    asm.emit(.exit)
    return asm.finish()
  }

  /// Every key counted so far (as its 8 bytes) with its total over the CPUs.
  public func totals() throws(KernelError) -> [(key: [UInt8], total: UInt64)] {
    try counts.perCPUSums(keySize: 8)
  }

  /// Keys dropped (the map was full) or read as 0 (a failed read), over every CPU.
  public func total(of counter: Counter) -> UInt64 {
    (try? counters.perCPUSum(index: UInt32(counter.rawValue))) ?? 0
  }
}
