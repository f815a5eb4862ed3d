import Glibc
import ScryLanguage

/// One map: fixed-size packed byte keys to fixed-size byte values, in an open-addressing index over an
/// insertion-ordered entry arena. Invariants: values are 8-byte aligned; a pointer from `lookup` stays
/// valid only until the next insert, `clear()` or removal-triggered compaction; nothing allocates on the
/// hot path except when the table grows (amortised, doubling).
public final class MapStorage {
  public let info: MapInfo
  public let keySize: Int
  public let valueSize: Int
  public let maxEntries: Int
  /// How `print` draws this map when it holds histograms.
  public var histogramStyle = HistogramStyle.bpftrace
  public private(set) var droppedInserts = 0
  /// Inserts a kernel-side copy of the map (a BPF hash the kernel counts into) dropped when full.
  private var kernelDroppedInserts = 0
  /// Keys the kernel read as 0 because their read failed (counted with the run's failed reads).
  public var kernelFailedReads: UInt64 = 0
  public private(set) var count = 0

  /// Bytes of one entry: the value (rounded to 8), then the key (rounded to 8).
  private let stride: Int
  private let valueStride: Int
  private var arena: UnsafeMutableRawPointer
  private var hashes: UnsafeMutablePointer<UInt64>
  private var isLive: UnsafeMutablePointer<Bool>
  private var arenaCapacity: Int
  /// Entries used in the arena, live or removed.
  private var used = 0
  /// Open-addressing slots: an entry index, `empty` or `removed`.
  private var slots: UnsafeMutablePointer<Int32>
  private var slotMask: Int
  private var removedSlots = 0

  private static let empty: Int32 = -1
  private static let removed: Int32 = -2

  public init(info: MapInfo, maxEntries: Int) {
    self.info = info
    self.keySize = info.keyTypes.reduce(0) { $0 + $1.byteSize }
    self.valueSize = info.valueType.byteSize
    self.maxEntries = Swift.max(1, maxEntries)
    self.valueStride = (valueSize + 7) & ~7
    self.stride = Swift.max(8, valueStride + ((keySize + 7) & ~7))
    arenaCapacity = 16
    arena = .allocate(byteCount: stride * arenaCapacity, alignment: 8)
    hashes = .allocate(capacity: arenaCapacity)
    isLive = .allocate(capacity: arenaCapacity)
    slotMask = 31
    slots = .allocate(capacity: slotMask + 1)
    slots.initialize(repeating: Self.empty, count: slotMask + 1)
  }

  deinit {
    arena.deallocate()
    hashes.deallocate()
    isLive.deallocate()
    slots.deallocate()
  }

  /// A fast hash of `count` key bytes: 8 bytes at a time, mixed with multiply-xorshift (murmur's fmix64).
  public static func hash(_ key: UnsafeRawPointer, count: Int) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: count)
    var i = 0
    while i + 8 <= count {
      let word = key.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      h = (h ^ word) &* 0x100_0000_01B3 &+ (h >> 29)
      i += 8
    }
    if i < count {
      var tail: UInt64 = 0
      var shift: UInt64 = 0
      while i < count {
        tail |= UInt64(key.load(fromByteOffset: i, as: UInt8.self)) << shift
        shift += 8
        i += 1
      }
      h = (h ^ tail) &* 0x100_0000_01B3 &+ (h >> 29)
    }
    h ^= h >> 33
    h = h &* 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h = h &* 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
  }

  @inline(__always) private func entry(_ index: Int) -> UnsafeMutableRawPointer { arena + index * stride }
  @inline(__always) private func keyOf(_ index: Int) -> UnsafeMutableRawPointer { arena + index * stride + valueStride }

  /// Finds the slot holding `key`, or the slot where it would go (first removed slot seen, else the empty one).
  @inline(__always)
  private func findSlot(key: UnsafeRawPointer, hash: UInt64) -> (slot: Int, found: Bool) {
    var i = Int(truncatingIfNeeded: hash) & slotMask
    var firstRemoved = -1
    while true {
      let s = slots[i]
      if s == Self.empty { return (firstRemoved >= 0 ? firstRemoved : i, false) }
      if s == Self.removed {
        if firstRemoved < 0 { firstRemoved = i }
      } else {
        let e = Int(s)
        if hashes[e] == hash && (keySize == 0 || memcmp(keyOf(e), key, keySize) == 0) { return (i, true) }
      }
      i = (i + 1) & slotMask
    }
  }

  /// The kernel's own count of dropped inserts, as last read (it only grows).
  public func setKernelDroppedInserts(_ count: Int) { kernelDroppedInserts = count }

  /// What to say at exit when inserts were dropped because the map was full; nil when none were.
  public var fullWarning: String? {
    let dropped = droppedInserts + kernelDroppedInserts
    guard dropped > 0 else { return nil }
    // Begins as bpftrace's own warning does, so what matches its text matches Scry's.
    return "WARNING: Map full; can't update element: map '\(info.name)' is full (\(maxEntries) entries): \(dropped) "
      + (dropped == 1 ? "insert was dropped" : "inserts were dropped")
  }

  /// Pointer to the value bytes; with `insert`, a zeroed value is created when absent
  /// (nil only when `maxEntries` is reached, counted in `droppedInserts`).
  public func lookup(key: UnsafeRawPointer, hash: UInt64, insert: Bool) -> UnsafeMutableRawPointer? {
    let (slot, found) = findSlot(key: key, hash: hash)
    if found { return entry(Int(slots[slot])) }
    guard insert else { return nil }
    if count >= maxEntries {
      droppedInserts += 1
      return nil
    }
    if used == arenaCapacity || (count + 1 + removedSlots) * 4 > (slotMask + 1) * 3 {
      makeRoom()
      return lookup(key: key, hash: hash, insert: true)
    }
    if slots[slot] == Self.removed { removedSlots -= 1 }
    let e = used
    used += 1
    count += 1
    hashes[e] = hash
    isLive[e] = true
    entry(e).initializeMemory(as: UInt8.self, repeating: 0, count: stride)
    if keySize > 0 { keyOf(e).copyMemory(from: key, byteCount: keySize) }
    slots[slot] = Int32(e)
    return entry(e)
  }

  @discardableResult
  public func remove(key: UnsafeRawPointer, hash: UInt64) -> Bool {
    let (slot, found) = findSlot(key: key, hash: hash)
    guard found else { return false }
    isLive[Int(slots[slot])] = false
    slots[slot] = Self.removed
    removedSlots += 1
    count -= 1
    return true
  }

  /// Removes the entries whose key `matches` says so.
  public func removeAll(where matches: (UnsafeRawPointer) -> Bool) {
    for e in 0..<used where isLive[e] && matches(UnsafeRawPointer(keyOf(e))) {
      remove(key: keyOf(e), hash: hashes[e])
    }
  }

  /// Removes every entry (keeps the allocated capacity).
  public func clear() {
    used = 0
    count = 0
    removedSlots = 0
    slots.update(repeating: Self.empty, count: slotMask + 1)
  }

  /// Keeps the keys, zeroes every value.
  public func zero() {
    for e in 0..<used where isLive[e] {
      entry(e).initializeMemory(as: UInt8.self, repeating: 0, count: valueStride)
    }
  }

  /// Visits live entries in insertion order.
  public func forEach(_ body: (UnsafeRawPointer, UnsafeMutableRawPointer) -> Void) {
    for e in 0..<used where isLive[e] {
      body(UnsafeRawPointer(keyOf(e)), entry(e))
    }
  }

  /// Live entries as (key, value) pointers in insertion order, for printing (allocates; not for the hot path).
  public func entries() -> [(key: UnsafeRawPointer, value: UnsafeMutableRawPointer)] {
    var result: [(key: UnsafeRawPointer, value: UnsafeMutableRawPointer)] = []
    result.reserveCapacity(count)
    forEach { result.append(($0, $1)) }
    return result
  }

  /// Compacts removed entries out of the arena, grows arena and slots as needed, and rebuilds the index.
  private func makeRoom() {
    var live = 0
    for e in 0..<used where isLive[e] {
      if live != e {
        entry(live).copyMemory(from: entry(e), byteCount: stride)
        hashes[live] = hashes[e]
        isLive[live] = true
      }
      live += 1
    }
    used = live
    if used * 2 > arenaCapacity || used == arenaCapacity {
      let newCapacity = arenaCapacity * 2
      let newArena = UnsafeMutableRawPointer.allocate(byteCount: stride * newCapacity, alignment: 8)
      newArena.copyMemory(from: arena, byteCount: stride * used)
      arena.deallocate()
      arena = newArena
      let newHashes = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
      newHashes.update(from: hashes, count: used)
      hashes.deallocate()
      hashes = newHashes
      let newLive = UnsafeMutablePointer<Bool>.allocate(capacity: newCapacity)
      newLive.update(from: isLive, count: used)
      isLive.deallocate()
      isLive = newLive
      arenaCapacity = newCapacity
    }
    var slotCount = slotMask + 1
    while arenaCapacity * 4 > slotCount * 3 { slotCount *= 2 }
    if slotCount != slotMask + 1 {
      slots.deallocate()
      slots = .allocate(capacity: slotCount)
      slotMask = slotCount - 1
    }
    slots.initialize(repeating: Self.empty, count: slotCount)
    removedSlots = 0
    for e in 0..<used {
      var i = Int(truncatingIfNeeded: hashes[e]) & slotMask
      while slots[i] != Self.empty { i = (i + 1) & slotMask }
      slots[i] = Int32(e)
    }
  }
}
