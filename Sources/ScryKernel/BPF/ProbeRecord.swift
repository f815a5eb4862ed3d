/// The record of a uprobe or kprobe as Scry's capture program builds it: laid out as tracefs lays
/// out the dynamic event's record with the same fetch arguments (common fields, the probe's
/// address, then each value; strings as `__data_loc` words with their bytes after the fixed part),
/// so the reader decodes both alike.
public struct ProbeRecord: Sendable, Hashable {
  /// A value at the event (a register is `.register(ptRegsOffset:)`, the word of pt_regs there).
  public typealias Operand = CaptureOperand
  /// What a field keeps of an operand.
  public typealias Value = CaptureValue

  public struct Field: Sendable, Hashable {
    public var offset: Int
    public var value: Value
    public init(offset: Int, value: Value) {
      self.offset = offset
      self.value = value
    }
  }

  /// Kernel memory (kprobes) rather than the traced process's (uprobes).
  public var isKernel: Bool
  /// A return probe: the header holds the function and return addresses (24 bytes, not 16).
  public var isReturn: Bool
  public var fields: [Field]
  /// Bytes of the header and fields; string bytes follow.
  public var fixedSize: Int
  public var stringCapacity: Int
  /// `-kk`: after the strings, one byte per field (rounded up to 8): 0, or the return code of the
  /// helper that failed to read it, as `CaptureReads.reportsFailures` has them.
  public var reportsFailures = false

  public init(isKernel: Bool, isReturn: Bool, fields: [Field], fixedSize: Int, stringCapacity: Int) {
    self.isKernel = isKernel
    self.isReturn = isReturn
    self.fields = fields
    self.fixedSize = fixedSize
    self.stringCapacity = stringCapacity
  }

  public var recordSize: Int { failureCodesOffset + (reportsFailures ? (fields.count + 7) & ~7 : 0) }
  /// Where the failure codes start in the record.
  public var failureCodesOffset: Int { fixedSize + stringCapacity }
}

/// Offsets of x86-64 `struct pt_regs` fields, the context of kprobe-type programs.
public enum PTRegs {
  static let offsets: [String: Int16] = [
    "r15": 0, "r14": 8, "r13": 16, "r12": 24, "bp": 32, "bx": 40, "r11": 48, "r10": 56, "r9": 64, "r8": 72,
    "ax": 80, "cx": 88, "dx": 96, "si": 104, "di": 112, "ip": 128, "sp": 152,
  ]

  /// The offset of a register named as tracefs names it (`di`, `r8`); nil for an unknown name.
  public static func offset(of register: String) -> Int16? { offsets[register] }

  static let ip: Int16 = 128
  static let sp: Int16 = 152
}

extension CaptureProgram {
  /// The record of a probe, built field by field in the ring record at `record` (r7-relative)
  /// from the registers (r6 = ctx). A failed load gives 0 (an empty string), as tracefs's fetch
  /// arguments do, and is counted in the failed-read counter of `countersMapFD`.
  func emitProbeRecord(_ layout: ProbeRecord, at record: Int16, countersMapFD: Int32, into asm: inout BPFAssembler) {
    let space: MemorySpace = layout.isKernel ? .kernel : .user
    // Common fields: common_type, then common_pid (the thread, as tracefs writes it).
    asm.emit(.st(.word, .r7, record, Int32(commonType)))
    asm.emit(.stx(.word, .r7, record + 4, .r8))
    asm.emit(.ldx(.double, .r1, .r6, PTRegs.ip))
    if layout.isReturn {
      // __probe_func is not known at a return; __probe_ret_ip is where the function returns.
      asm.emit(.st(.double, .r7, record + 8, 0))
      asm.emit(.stx(.double, .r7, record + 16, .r1))
    } else {
      asm.emit(.stx(.double, .r7, record + 8, .r1))
    }
    var stringData = layout.fixedSize
    let codes = record + Int16(layout.failureCodesOffset)
    if layout.reportsFailures {
      for word in stride(from: 0, to: layout.recordSize - layout.failureCodesOffset, by: 8) {
        asm.emit(.st(.double, .r7, codes + Int16(word), 0))
      }
    }
    for (index, field) in layout.fields.enumerated() {
      let at = record + Int16(field.offset)
      // A register alone cannot fail: a failure path would be code the verifier cannot reach.
      var canFail = true
      if case .operand(let operand, _) = field.value, operand.depth == 0 { canFail = false }
      let failed = asm.newLabel()
      let next = asm.newLabel()
      // A chain from the current task reads kernel memory, whatever the probe's own memory is.
      let space = field.value.base.startsAtCurrentTask ? MemorySpace.kernel : space
      Self.emitOperand(field.value.base, space: space, onFailure: canFail ? failed : nil, into: &asm)
      switch field.value {
      case .operand(_, let byteCount):
        asm.emit(.stx(BPFSize(bytes: byteCount) ?? .double, .r7, at, .r9))
      case .read(_, let offset, let count), .bytes(_, let offset, let count):
        Self.emitHelperRead(offset, count: count, toStack: false, at: at, helper: space.readHelper, into: &asm)
        asm.jump(.signedLess, .r0, 0, to: failed)
      case .string(_, let offset, let maxLength):
        let data = record + Int16(stringData)
        Self.emitHelperRead(offset, count: maxLength, toStack: false, at: data, helper: space.stringHelper, into: &asm)
        asm.jump(.signedLess, .r0, 0, to: failed)
        // __data_loc: length << 16 | offset of the bytes in the record.
        asm.emit(.lsh64(.r0, 16))
        asm.emit(.or64(.r0, Int32(stringData)))
        asm.emit(.stx(.word, .r7, at, .r0))
      }
      guard canFail else { continue }
      asm.jump(to: next)
      asm.place(failed)
      // Every way here comes from a helper's negative r0.
      if layout.reportsFailures { asm.emit(.stx(.byte, .r7, codes + Int16(index), .r0)) }
      switch field.value {
      case .operand(_, let count), .read(_, _, let count), .bytes(_, _, let count):
        emitZeroBytes(at: at, count: count, into: &asm)
      case .string:
        // An empty string at its place in the data.
        asm.emit(.st(.word, .r7, at, Int32(stringData)))
      }
      asm.incrementElement(Counter.failedReads.rawValue, ofMapFD: countersMapFD)
      asm.place(next)
      if case .string(_, _, let maxLength) = field.value { stringData += maxLength }
    }
  }

  /// Zeros over `count` bytes of the record at `at`, in the widest stores that fit.
  private func emitZeroBytes(at: Int16, count: Int, into asm: inout BPFAssembler) {
    var done = 0
    for (size, width) in [(BPFSize.double, 8), (.word, 4), (.half, 2), (.byte, 1)] {
      while count - done >= width {
        asm.emit(.st(size, .r7, at + Int16(done), 0))
        done += width
      }
    }
  }
}
