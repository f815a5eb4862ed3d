/// A per-CPU, direct-mapped cache of counts in front of a counting program's per-CPU hash: each
/// CPU keeps `slots` recent keys, each with the hits not yet added to the hash. A hit on a cached
/// key is a few loads and one store; only a key that takes another's slot goes to the hash, adding
/// the evicted key's hits there. A task making many calls in a row, or a key read from memory that
/// seldom changes, so costs no hash lookup at all (the lookup was half of `@[comm] = count()`).
///
/// Reading: the totals are the hash's plus the slots' (`totals`). The program clears a slot's
/// hits before it adds them to the hash, and the reader reads the hash before the slots, so a read
/// racing an eviction can miss that eviction's hits (they show at the next read) but never counts
/// them twice. Once the program has stopped running, the totals are exact.
struct BPFCountCache {
  /// Slots per CPU: a power of two, so the slot is the top bits of a multiplicative hash.
  static let slots = 64
  private static let slotBits: Int32 = 6
  /// Fibonacci hashing's multiplier (2^64 / φ): spreads keys that differ in any bits.
  private static let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15

  let map: BPFMap
  /// Bytes of a key, a multiple of 8.
  let keySize: Int

  init(keySize: Int) throws(KernelError) {
    self.keySize = keySize
    // A slot: the hits not yet in the hash (u64), then the key.
    map = try BPFMap.perCPUArray(valueSize: 8 + keySize, entries: Self.slots)
  }

  /// Stack bytes the emitted code uses below the caller's own: the slot index, the evicted hits
  /// and the evicted key.
  static func scratchBytes(keySize: Int) -> Int { 16 + keySize }

  /// Counts the key at `r10 + key` (`keySize` bytes, 8-aligned) and jumps to `done`. The code
  /// uses the stack from `scratch` down (`scratchBytes`), r0–r5 and r7–r8; an evicted key the
  /// hash has no room for adds its hits to the per-CPU counter `droppedIndex`.
  static func emitCount(
    key: Int16, keySize: Int, scratch: Int16, cacheFD: Int32, countsFD: Int32, countersFD: Int32,
    droppedIndex: Int32, done: BPFAssembler.Label, into asm: inout BPFAssembler
  ) {
    let index = scratch - 8
    let evictedHits = index - 8
    let evictedKey = evictedHits - Int16(keySize)
    let words = stride(from: 0, to: keySize, by: 8).map { Int16($0) }
    let miss = asm.newLabel()
    let claim = asm.newLabel()
    let insert = asm.newLabel()
    let folded = asm.newLabel()

    // slot = (Σ key words · multiplier) >> (64 - slotBits)
    asm.emit(.mov64(.r1, 0))
    for word in words {
      asm.emit(.ldx(.double, .r2, .r10, key + word))
      asm.emit(.add64(.r1, .r2))
    }
    asm.emit(BPFInstruction.ldImm64(.r2, multiplier))
    asm.emit(.alu64(.mul, .r1, .r2))
    asm.emit(.rsh64(.r1, 64 - slotBits))
    asm.emit(.stx(.word, .r10, index, .r1))
    asm.lookup(inMapFD: cacheFD, keyAt: index)
    // Never null (the index is below `slots`), but the verifier asks.
    asm.jump(.equal, .r0, 0, to: done)
    asm.emit(.mov64(.r7, .r0))
    for word in words {
      asm.emit(.ldx(.double, .r1, .r7, 8 + word))
      asm.emit(.ldx(.double, .r2, .r10, key + word))
      asm.jump(.notEqual, .r1, .r2, to: miss)
    }
    asm.emit(.ldx(.double, .r1, .r7, 0))
    asm.emit(.add64(.r1, 1))
    asm.emit(.stx(.double, .r7, 0, .r1))
    asm.jump(to: done)

    // Another key holds the slot: its hits go to the hash (cleared here first, see the type's
    // comment), then the slot is this key's with one hit.
    asm.place(miss)
    asm.emit(.ldx(.double, .r8, .r7, 0))
    asm.jump(.equal, .r8, 0, to: claim)
    asm.emit(.st(.double, .r7, 0, 0))
    for word in words {
      asm.emit(.ldx(.double, .r1, .r7, 8 + word))
      asm.emit(.stx(.double, .r10, evictedKey + word, .r1))
    }
    asm.lookup(inMapFD: countsFD, keyAt: evictedKey)
    asm.jump(.equal, .r0, 0, to: insert)
    asm.emit(.ldx(.double, .r1, .r0, 0))
    asm.emit(.add64(.r1, .r8))
    asm.emit(.stx(.double, .r0, 0, .r1))
    asm.jump(to: folded)
    // A key new to the hash: this CPU's count is its hits (another CPU inserting it meanwhile
    // leaves this CPU's count 0).
    asm.place(insert)
    asm.emit(.stx(.double, .r10, evictedHits, .r8))
    asm.emit(BPFInstruction.ldMapFD(.r1, countsFD))
    asm.emit(.mov64(.r2, .r10))
    asm.emit(.add64(.r2, Int32(evictedKey)))
    asm.emit(.mov64(.r3, .r10))
    asm.emit(.add64(.r3, Int32(evictedHits)))
    asm.emit(.mov64(.r4, 0))
    asm.emit(.call(.mapUpdateElem))
    asm.jump(.signedGreaterOrEqual, .r0, 0, to: folded)
    asm.emit(.st(.word, .r10, index, droppedIndex))
    asm.lookup(inMapFD: countersFD, keyAt: index)
    asm.jump(.equal, .r0, 0, to: folded)
    asm.emit(.ldx(.double, .r1, .r0, 0))
    asm.emit(.add64(.r1, .r8))
    asm.emit(.stx(.double, .r0, 0, .r1))
    asm.place(folded)
    asm.place(claim)
    for word in words {
      asm.emit(.ldx(.double, .r1, .r10, key + word))
      asm.emit(.stx(.double, .r7, 8 + word, .r1))
    }
    asm.emit(.st(.double, .r7, 0, 1))
    asm.jump(to: done)
  }

  /// The hits each cached key holds, over every CPU and slot.
  func pendingHits() throws(KernelError) -> [[UInt8]: UInt64] {
    var hits: [[UInt8]: UInt64] = [:]
    for slot in 0..<UInt32(Self.slots) {
      for value in try map.perCPUValues(index: slot) {
        let count = value.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        guard count > 0 else { continue }
        hits[Array(value[8..<8 + keySize]), default: 0] &+= count
      }
    }
    return hits
  }

  /// Every key counted (as its bytes) with its total over the CPUs: `counts`, the hash this
  /// cache stands before, read first (see the type's comment), then the slots.
  func totals(of counts: BPFMap) throws(KernelError) -> [(key: [UInt8], total: UInt64)] {
    var totals = try counts.perCPUSums(keySize: keySize)
    var pending = try pendingHits()
    for i in totals.indices {
      if let hits = pending.removeValue(forKey: totals[i].key) { totals[i].total &+= hits }
    }
    totals.append(contentsOf: pending.map { (key: $0.key, total: $0.value) })
    return totals
  }
}
