/// Collects instructions and resolves forward jumps to named labels.
///
/// Jumps are emitted with a placeholder offset and patched in `finish()`, so a code
/// generator can jump to a point it has not reached yet (the usual "bail out" exit).
struct BPFAssembler {
  /// A jump target, created by `newLabel()` and placed once by `place(_:)`.
  struct Label: Hashable { let id: Int }

  private(set) var instructions: [BPFInstruction] = []
  private var labelCount = 0
  private var placed: [Label: Int] = [:]
  private var fixups: [(at: Int, label: Label)] = []

  mutating func newLabel() -> Label {
    labelCount += 1
    return Label(id: labelCount)
  }

  /// Makes `label` point at the next instruction emitted.
  mutating func place(_ label: Label) {
    placed[label] = instructions.count
  }

  mutating func emit(_ instruction: BPFInstruction) {
    instructions.append(instruction)
  }

  mutating func emit(_ slots: [BPFInstruction]) {
    instructions.append(contentsOf: slots)
  }

  /// `r0 = bpf_map_lookup_elem(map, &(u32){index})`, the key stored at r10 - 4: an entry of an array map.
  mutating func lookupElement(_ index: Int32, ofMapFD fd: Int32) {
    emit(.st(.word, .r10, -4, index))
    emit(.mov64(.r2, .r10))
    emit(.add64(.r2, -4))
    emit(BPFInstruction.ldMapFD(.r1, fd))
    emit(.call(.mapLookupElem))
  }

  /// `r0 = bpf_map_lookup_elem(map, r10 + offset)`: the key already on the stack.
  mutating func lookup(inMapFD fd: Int32, keyAt offset: Int16) {
    emit(BPFInstruction.ldMapFD(.r1, fd))
    emit(.mov64(.r2, .r10))
    emit(.add64(.r2, Int32(offset)))
    emit(.call(.mapLookupElem))
  }

  /// Entry 0 of an array map into r0 (see `lookupElement`).
  mutating func lookupFirstElement(ofMapFD fd: Int32) {
    lookupElement(0, ofMapFD: fd)
  }

  /// `counts[index] += 1` in a per-CPU array (no atomics needed: only this CPU writes its slot);
  /// nothing when the lookup fails. Clobbers r0–r5; falls through.
  mutating func incrementElement(_ index: Int32, ofMapFD fd: Int32) {
    let skip = newLabel()
    lookupElement(index, ofMapFD: fd)
    jump(.equal, .r0, 0, to: skip)
    emit(.ldx(.double, .r1, .r0, 0))
    emit(.add64(.r1, 1))
    emit(.stx(.double, .r0, 0, .r1))
    place(skip)
  }

  /// `counts[0] += 1` (see `incrementElement`).
  mutating func incrementFirstElement(ofMapFD fd: Int32) {
    incrementElement(0, ofMapFD: fd)
  }

  /// `if dst <condition> imm goto label`.
  mutating func jump(_ condition: BPFJumpCondition, _ dst: BPFRegister, _ imm: Int32, to label: Label) {
    fixups.append((instructions.count, label))
    emit(.jump(condition, dst, imm, 0))
  }

  /// `if dst <condition> src goto label`.
  mutating func jump(_ condition: BPFJumpCondition, _ dst: BPFRegister, _ src: BPFRegister, to label: Label) {
    fixups.append((instructions.count, label))
    emit(.jump(condition, dst, src, 0))
  }

  /// `goto label`.
  mutating func jump(to label: Label) {
    fixups.append((instructions.count, label))
    emit(.jump(0))
  }

  /// The program with every jump's offset set (relative to the instruction after it).
  func finish() -> [BPFInstruction] {
    var result = instructions
    for (at, label) in fixups {
      guard let target = placed[label] else {
        preconditionFailure("BPF label \(label.id) used but never placed")
      }
      let distance = target - (at + 1)
      precondition(distance >= Int(Int16.min) && distance <= Int(Int16.max), "BPF jump too far: \(distance)")
      result[at].offset = Int16(distance)
    }
    return result
  }
}
