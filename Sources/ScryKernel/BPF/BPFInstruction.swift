/// A BPF register: r0 (return value), r1–r5 (helper arguments, clobbered by calls),
/// r6–r9 (kept across calls), r10 (read-only frame pointer).
public enum BPFRegister: UInt8, Sendable, CaseIterable {
  case r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10
}

/// The width of a memory access: the `size` bits of a load/store opcode.
public enum BPFSize: UInt8, Sendable {
  case byte = 0x10
  case half = 0x08
  case word = 0x00
  case double = 0x18

  /// The size for an access of `bytes` (1, 2, 4 or 8).
  public init?(bytes: Int) {
    switch bytes {
    case 1: self = .byte
    case 2: self = .half
    case 4: self = .word
    case 8: self = .double
    default: return nil
    }
  }

  /// Bytes accessed.
  public var bytes: Int {
    switch self {
    case .byte: 1
    case .half: 2
    case .word: 4
    case .double: 8
    }
  }
}

/// A conditional jump's test (the `code` bits of a BPF_JMP opcode); `s` variants compare signed.
public enum BPFJumpCondition: UInt8, Sendable {
  case equal = 0x10
  case greater = 0x20
  case greaterOrEqual = 0x30
  case bitsSet = 0x40
  case notEqual = 0x50
  case signedGreater = 0x60
  case signedGreaterOrEqual = 0x70
  case less = 0xa0
  case lessOrEqual = 0xb0
  case signedLess = 0xc0
  case signedLessOrEqual = 0xd0
}

/// The two-operand ALU operations (instruction-set.rst, "Arithmetic instructions").
public enum BPFALUOperation: UInt8, Sendable {
  case add = 0x00
  case sub = 0x10
  case mul = 0x20
  case div = 0x30
  case or = 0x40
  case and = 0x50
  case lsh = 0x60
  case rsh = 0x70
  case mod = 0x90
  case xor = 0xa0
  case arsh = 0xc0
}

/// The kernel helpers the fetch programs call, by their ids in `enum bpf_func_id`
/// (include/uapi/linux/bpf.h, `__BPF_FUNC_MAPPER`).
public enum BPFHelper: Int32, Sendable {
  case mapLookupElem = 1
  case mapUpdateElem = 2
  case ktimeGetNs = 5
  case tailCall = 12
  case getSmpProcessorID = 8
  case getCurrentPidTgid = 14
  case getCurrentUidGid = 15
  case getCurrentComm = 16
  case getCurrentTask = 35
  case getCurrentTaskBTF = 158
  case perfEventOutput = 25
  case getStackID = 27
  case getStack = 67
  case probeReadUser = 112
  case probeReadKernel = 113
  case probeReadUserStr = 114
  case probeReadKernelStr = 115
  case ringbufReserve = 131
  case ringbufSubmit = 132
  /// bpf_send_signal: a signal to the current task's process, delivered on its return to user space.
  case sendSignal = 109
}

/// One 8-byte eBPF instruction: opcode, destination and source registers, a signed 16-bit
/// offset and a signed 32-bit immediate, as the kernel's `struct bpf_insn` (little-endian).
///
/// `ldImm64` and `ldMapFD` are the two 16-byte instructions: they return two slots, the
/// second holding the upper 32 bits. See the kernel's
/// Documentation/bpf/standardization/instruction-set.rst.
public struct BPFInstruction: Sendable, Equatable, CustomStringConvertible {
  /// Class (low 3 bits), source or size, and operation or mode.
  public var opcode: UInt8
  /// Low nibble: destination register; high nibble: source register (or a pseudo tag).
  public var registers: UInt8
  /// Memory offset, or jump distance in instructions counted from the next one.
  public var offset: Int16
  /// Constant operand, helper id of a call, or low half of a 64-bit load.
  public var immediate: Int32

  public init(opcode: UInt8, dst: BPFRegister = .r0, src: BPFRegister = .r0, offset: Int16 = 0, immediate: Int32 = 0) {
    self.init(opcode: opcode, registers: dst.rawValue | src.rawValue << 4, offset: offset, immediate: immediate)
  }

  public init(opcode: UInt8, registers: UInt8, offset: Int16, immediate: Int32) {
    self.opcode = opcode
    self.registers = registers
    self.offset = offset
    self.immediate = immediate
  }

  /// Destination register number.
  public var dst: UInt8 { registers & 0x0f }
  /// Source register number (or pseudo tag for a 64-bit load).
  public var src: UInt8 { registers >> 4 }

  /// The instruction as the kernel reads it.
  public var bytes: [UInt8] {
    let off = UInt16(bitPattern: offset)
    let imm = UInt32(bitPattern: immediate)
    return [
      opcode, registers, UInt8(off & 0xff), UInt8(off >> 8),
      UInt8(imm & 0xff), UInt8((imm >> 8) & 0xff), UInt8((imm >> 16) & 0xff), UInt8(imm >> 24),
    ]
  }

  public var description: String {
    "op=0x\(String(opcode, radix: 16)) dst=r\(dst) src=r\(src) off=\(offset) imm=\(immediate)"
  }

  // Opcode pieces (instruction-set.rst): class in the low 3 bits.
  static let classLD: UInt8 = 0x00
  static let classLDX: UInt8 = 0x01
  static let classST: UInt8 = 0x02
  static let classSTX: UInt8 = 0x03
  static let classALU: UInt8 = 0x04
  static let classJMP: UInt8 = 0x05
  static let classALU64: UInt8 = 0x07
  static let sourceK: UInt8 = 0x00
  static let sourceX: UInt8 = 0x08
  static let modeIMM: UInt8 = 0x00
  static let modeMEM: UInt8 = 0x60
  static let aluADD: UInt8 = 0x00
  static let aluOR: UInt8 = 0x40
  static let aluLSH: UInt8 = 0x60
  static let aluRSH: UInt8 = 0x70
  static let aluMOV: UInt8 = 0xb0
  static let aluARSH: UInt8 = 0xc0
  static let jumpJA: UInt8 = 0x00
  static let jumpCALL: UInt8 = 0x80
  static let jumpEXIT: UInt8 = 0x90
  /// src_reg of a 64-bit load whose immediate is a map fd (BPF_PSEUDO_MAP_FD).
  static let pseudoMapFD: UInt8 = 1

  // MARK: ALU

  /// `dst = src` (64-bit).
  public static func mov64(_ dst: BPFRegister, _ src: BPFRegister) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceX | aluMOV, dst: dst, src: src)
  }

  /// `dst = imm`, sign-extended to 64 bits.
  public static func mov64(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | aluMOV, dst: dst, immediate: imm)
  }

  /// `dst = imm` as 32 bits, zero-extended (so `mov32(r, -1)` gives 0xffffffff).
  public static func mov32(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU | sourceK | aluMOV, dst: dst, immediate: imm)
  }

  /// `dst += imm` (64-bit, imm sign-extended).
  public static func add64(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | aluADD, dst: dst, immediate: imm)
  }

  /// `dst >>= imm` (64-bit, logical).
  public static func rsh64(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | aluRSH, dst: dst, immediate: imm)
  }

  /// `dst >>= imm` (64-bit, arithmetic: the sign bit is kept).
  public static func arsh64(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | aluARSH, dst: dst, immediate: imm)
  }

  /// `dst <<= imm` (64-bit).
  public static func lsh64(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | aluLSH, dst: dst, immediate: imm)
  }

  /// `dst |= imm` (64-bit, imm sign-extended).
  public static func or64(_ dst: BPFRegister, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | aluOR, dst: dst, immediate: imm)
  }

  /// `dst += src` (64-bit).
  public static func add64(_ dst: BPFRegister, _ src: BPFRegister) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceX | aluADD, dst: dst, src: src)
  }

  /// `dst = dst op src` (64-bit; division and remainder unsigned, by 0 giving 0 and dst).
  public static func alu64(_ op: BPFALUOperation, _ dst: BPFRegister, _ src: BPFRegister) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceX | op.rawValue, dst: dst, src: src)
  }

  /// `dst = -dst` (64-bit).
  public static func neg64(_ dst: BPFRegister) -> BPFInstruction {
    BPFInstruction(opcode: classALU64 | sourceK | 0x80, dst: dst)
  }

  // MARK: Memory

  /// `dst = *(size *)(src + offset)`.
  public static func ldx(_ size: BPFSize, _ dst: BPFRegister, _ src: BPFRegister, _ offset: Int16)
    -> BPFInstruction
  {
    BPFInstruction(opcode: classLDX | modeMEM | size.rawValue, dst: dst, src: src, offset: offset)
  }

  /// `*(size *)(dst + offset) = src`.
  public static func stx(_ size: BPFSize, _ dst: BPFRegister, _ offset: Int16, _ src: BPFRegister)
    -> BPFInstruction
  {
    BPFInstruction(opcode: classSTX | modeMEM | size.rawValue, dst: dst, src: src, offset: offset)
  }

  /// `*(size *)(dst + offset) = imm`.
  public static func st(_ size: BPFSize, _ dst: BPFRegister, _ offset: Int16, _ imm: Int32) -> BPFInstruction {
    BPFInstruction(opcode: classST | modeMEM | size.rawValue, dst: dst, offset: offset, immediate: imm)
  }

  /// `dst = value` (64-bit immediate): two slots.
  public static func ldImm64(_ dst: BPFRegister, _ value: UInt64) -> [BPFInstruction] {
    [
      BPFInstruction(
        opcode: classLD | modeIMM | BPFSize.double.rawValue, dst: dst,
        immediate: Int32(bitPattern: UInt32(truncatingIfNeeded: value))),
      BPFInstruction(opcode: 0, registers: 0, offset: 0, immediate: Int32(bitPattern: UInt32(value >> 32))),
    ]
  }

  /// `dst = map` for the map with fd `fd` (the verifier replaces the fd by the map's
  /// address): two slots.
  public static func ldMapFD(_ dst: BPFRegister, _ fd: Int32) -> [BPFInstruction] {
    [
      BPFInstruction(
        opcode: classLD | modeIMM | BPFSize.double.rawValue, registers: dst.rawValue | pseudoMapFD << 4, offset: 0,
        immediate: fd),
      BPFInstruction(opcode: 0, registers: 0, offset: 0, immediate: 0),
    ]
  }

  // MARK: Jumps

  /// `if dst <condition> imm goto +offset` (offset in instructions after this one).
  public static func jump(_ condition: BPFJumpCondition, _ dst: BPFRegister, _ imm: Int32, _ offset: Int16)
    -> BPFInstruction
  {
    BPFInstruction(opcode: classJMP | sourceK | condition.rawValue, dst: dst, offset: offset, immediate: imm)
  }

  /// `if dst <condition> src goto +offset`.
  public static func jump(
    _ condition: BPFJumpCondition, _ dst: BPFRegister, _ src: BPFRegister, _ offset: Int16
  ) -> BPFInstruction {
    BPFInstruction(opcode: classJMP | sourceX | condition.rawValue, dst: dst, src: src, offset: offset)
  }

  /// `goto +offset`.
  public static func jump(_ offset: Int16) -> BPFInstruction {
    BPFInstruction(opcode: classJMP | jumpJA, offset: offset)
  }

  /// Calls kernel helper `helper` with r1–r5; the result is in r0, r1–r5 are clobbered.
  public static func call(_ helper: BPFHelper) -> BPFInstruction {
    BPFInstruction(opcode: classJMP | jumpCALL, immediate: helper.rawValue)
  }

  /// Returns r0.
  public static let exit = BPFInstruction(opcode: classJMP | jumpEXIT)
}
