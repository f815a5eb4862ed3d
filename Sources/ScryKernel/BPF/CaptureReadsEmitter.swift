/// The code that walks operands and makes the reads, shared by the probe record and the reads
/// area. Registers as in `CaptureProgram.instructions`: r6 = ctx, r7 = the ring record; r9 holds
/// the value being resolved; r10-8 receives each 8-byte load.
extension CaptureProgram {
  /// The reads area: each read into its slot; a failed one leaves its slot zeroed and is counted.
  func emitReads(countersMapFD: Int32, into asm: inout BPFAssembler) {
    let codes = readsOffset + reads.failureCodesOffset
    for word in stride(from: 0, to: reads.failureCodesSize, by: 8) {
      asm.emit(.st(.double, .r7, Int16(codes + word), 0))
    }
    for (index, (read, slot)) in zip(reads.reads, reads.slotOffsets).enumerated() {
      let at = Int16(readsOffset + slot)
      if case .operand(let operand, _) = read.value, operand.depth == 0 {
        // Nothing to load, nothing to fail: a failure path would be code the verifier cannot reach.
        emitRead(read, at: at, onFailure: asm.newLabel(), into: &asm)
        continue
      }
      let failed = asm.newLabel()
      let next = asm.newLabel()
      emitRead(read, at: at, onFailure: failed, into: &asm)
      asm.jump(to: next)
      asm.place(failed)
      // Every way here comes from a helper's negative r0 (before the counter's call clobbers it).
      if reads.reportsFailures { asm.emit(.stx(.byte, .r7, Int16(codes + index), .r0)) }
      if case .bytes = read.value {
        // A load of the chain failed before the bytes were read: nothing wrote the slot.
        emitZeros(at: at, count: read.slotSize, into: &asm)
      } else if case .string = read.value {
        // Zeroed before the chain, and a failed string read clears what it wrote.
      } else {
        asm.emit(.st(.double, .r7, at, 0))
      }
      asm.incrementElement(Counter.failedReads.rawValue, ofMapFD: countersMapFD)
      asm.place(next)
    }
  }

  /// One read into its slot at `at` (r7-relative); jumps to `onFailure` when a load fails.
  private func emitRead(_ read: MemoryRead, at: Int16, onFailure: BPFAssembler.Label, into asm: inout BPFAssembler) {
    let space = read.space
    switch read.value {
    case .operand(let operand, let byteCount):
      Self.emitOperand(operand, space: space, onFailure: onFailure, into: &asm)
      if byteCount < 8 {
        asm.emit(.lsh64(.r9, Int32(64 - 8 * byteCount)))
        asm.emit(.rsh64(.r9, Int32(64 - 8 * byteCount)))
      }
      asm.emit(.stx(.double, .r7, at, .r9))
    case .read(let base, let offset, let byteCount):
      // Through the stack, so the slot gets the number zero-extended to 8 bytes.
      Self.emitOperand(base, space: space, onFailure: onFailure, into: &asm)
      Self.emitHelperRead(offset, count: byteCount, toStack: true, at: 0, helper: read.valueSpace.readHelper, into: &asm)
      asm.jump(.signedLess, .r0, 0, to: onFailure)
      asm.emit(.ldx(BPFSize(bytes: byteCount) ?? .double, .r9, .r10, -8))
      asm.emit(.stx(.double, .r7, at, .r9))
    case .string(let base, let offset, let maxLength):
      // bpf_probe_read_*_str stops at the NUL: the rest of the slot would be an older record's.
      emitZeros(at: at, count: read.slotSize, into: &asm)
      Self.emitOperand(base, space: space, onFailure: onFailure, into: &asm)
      Self.emitHelperRead(offset, count: maxLength, toStack: false, at: at, helper: read.valueSpace.stringHelper, into: &asm)
      asm.jump(.signedLess, .r0, 0, to: onFailure)
    case .bytes(let base, let offset, let count):
      if count % 8 != 0 { asm.emit(.st(.double, .r7, at + Int16(count & ~7), 0)) }
      Self.emitOperand(base, space: space, onFailure: onFailure, into: &asm)
      Self.emitHelperRead(offset, count: count, toStack: false, at: at, helper: read.valueSpace.readHelper, into: &asm)
      asm.jump(.signedLess, .r0, 0, to: onFailure)
    }
  }

  /// `count` bytes at r9 + offset with `helper`, into r10-8 or the record at `at`; r0 = its result.
  static func emitHelperRead(
    _ offset: Int64, count: Int, toStack: Bool, at: Int16, helper: BPFHelper, into asm: inout BPFAssembler
  ) {
    asm.emit(.mov64(.r3, .r9))
    asm.emit(.add64(.r3, Int32(clamping: offset)))
    if toStack {
      asm.emit(.mov64(.r1, .r10))
      asm.emit(.add64(.r1, -8))
    } else {
      asm.emit(.mov64(.r1, .r7))
      asm.emit(.add64(.r1, Int32(at)))
    }
    asm.emit(.mov64(.r2, Int32(count)))
    asm.emit(.call(helper))
  }

  /// The operand's value into r9. A failed load jumps to `onFailure`, or without one goes on
  /// with 0 (the helper zeroes its buffer), as tracefs's fetch arguments do.
  static func emitOperand(
    _ operand: CaptureOperand, space: MemorySpace, onFailure: BPFAssembler.Label?, into asm: inout BPFAssembler
  ) {
    switch operand {
    case .contextWord(let offset):
      asm.emit(.ldx(.double, .r9, .r6, offset))
    case .currentTask:
      asm.emit(.call(.getCurrentTask))
      asm.emit(.mov64(.r9, .r0))
    case .constant(let value):
      asm.emit(BPFInstruction.ldImm64(.r9, value))
    case .stackEntry(let n):
      asm.emit(.ldx(.double, .r9, .r6, PTRegs.sp))
      Self.emitLoad(at: Int64(8 * n), space: space, onFailure: onFailure, into: &asm)
    case .memory(let base, let offset):
      Self.emitOperand(base, space: space, onFailure: onFailure, into: &asm)
      Self.emitLoad(at: offset, space: space, onFailure: onFailure, into: &asm)
    case .scaledSum(let base, let index, let shift):
      // r1 is free here: helpers clobber it, so nothing lives in it across an operand.
      Self.emitOperand(base, space: space, onFailure: onFailure, into: &asm)
      asm.emit(.ldx(.double, .r1, .r6, index))
      if shift > 0 { asm.emit(.lsh64(.r1, Int32(shift))) }
      asm.emit(.add64(.r9, .r1))
    }
  }

  /// r9 = the 8 bytes at r9 + offset.
  private static func emitLoad(
    at offset: Int64, space: MemorySpace, onFailure: BPFAssembler.Label?, into asm: inout BPFAssembler
  ) {
    Self.emitHelperRead(offset, count: 8, toStack: true, at: 0, helper: space.readHelper, into: &asm)
    if let onFailure { asm.jump(.signedLess, .r0, 0, to: onFailure) }
    asm.emit(.ldx(.double, .r9, .r10, -8))
  }

  /// Zeros over `count` bytes (a multiple of 8) of the record at `at`.
  private func emitZeros(at: Int16, count: Int, into asm: inout BPFAssembler) {
    for word in stride(from: 0, to: count, by: 8) {
      asm.emit(.st(.double, .r7, at + Int16(word), 0))
    }
  }
}
