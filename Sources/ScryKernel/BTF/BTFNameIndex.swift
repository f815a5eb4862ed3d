/// The name indexes of one BTF blob, each built on its first lookup.
struct BTFIndexes {
  private var types: BTFNameTable?
  private var enumerators: BTFNameTable?

  /// Records, enums, forward declarations, typedefs, integers and floats by name: the names a
  /// program writes as types. Functions and variables (most of vmlinux's named types) are left
  /// out, which keeps this table small.
  mutating func typeNames(of btf: BTF) -> BTFNameTable {
    if let types { return types }
    let table = BTFNameTable(of: btf, kind: .types)
    types = table
    return table
  }

  /// Every enumerator of every enum, by name.
  mutating func enumeratorNames(of btf: BTF) -> BTFNameTable {
    if let enumerators { return enumerators }
    let table = BTFNameTable(of: btf, kind: .enumerators)
    enumerators = table
    return table
  }
}

/// An open-addressing hash table from names to entries of one blob, hashing the name bytes
/// where they lie in the string section: building it allocates no strings, only the table.
///
/// An entry is a type (its index among the blob's own types) or an enumerator (type index
/// << 16 | enumerator index). Slots hold entry + 1, 0 being empty; equal names share a probe
/// run, so a lookup returns all of them, in blob order.
struct BTFNameTable {
  enum Kind {
    case types, enumerators
  }

  let kind: Kind
  private var slots: [UInt64]
  private let mask: Int

  init(of btf: BTF, kind: Kind) {
    self.kind = kind
    var entries: [(entry: UInt64, hash: UInt32)] = []
    for (local, offset) in btf.typeOffsets.enumerated() {
      let at = UInt64(offset)
      let info = btf.bytes.field(at + 4, as: UInt32.self)
      guard let typeKind = BTFConstant.Kind(rawValue: (info >> 24) & 0x1f) else { continue }
      switch (kind, typeKind) {
      case (.types, .structure), (.types, .union), (.types, .enumeration), (.types, .enum64), (.types, .forward),
        (.types, .typedef), (.types, .integer), (.types, .float):
        let nameOffset = btf.bytes.field(at, as: UInt32.self)
        if nameOffset != 0, let name = btf.stringBytes(at: nameOffset) {
          entries.append((UInt64(local), Self.hash(name)))
        }
      case (.enumerators, .enumeration), (.enumerators, .enum64):
        let stride: UInt64 = typeKind == .enum64 ? 12 : 8
        for index in 0..<UInt64(info & 0xffff) {
          let nameAt = at + BTFConstant.typeHeaderSize + index * stride
          if let name = btf.stringBytes(at: btf.bytes.field(nameAt)) {
            entries.append((UInt64(local) << 16 | index, Self.hash(name)))
          }
        }
      default:
        continue
      }
    }
    // At most half full: runs stay short, so a miss costs a couple of probes.
    var capacity = 16
    while capacity < entries.count * 2 { capacity *= 2 }
    mask = capacity - 1
    slots = [UInt64](repeating: 0, count: capacity)
    for (entry, hash) in entries {
      var slot = Int(hash) & mask
      while slots[slot] != 0 { slot = (slot + 1) & mask }
      slots[slot] = entry + 1
    }
  }

  /// The entries named `name`, in blob order.
  func entries(named name: String, in btf: BTF) -> [UInt64] {
    var name = name
    return name.withUTF8 { query in
      let hash = Self.hash(UnsafeRawBufferPointer(query))
      var found: [UInt64] = []
      var slot = Int(hash) & mask
      while slots[slot] != 0 {
        let entry = slots[slot] - 1
        if let candidate = self.name(of: entry, in: btf), candidate.elementsEqual(UnsafeRawBufferPointer(query)) {
          found.append(entry)
        }
        slot = (slot + 1) & mask
      }
      return found.sorted()
    }
  }

  private func name(of entry: UInt64, in btf: BTF) -> UnsafeRawBufferPointer? {
    switch kind {
    case .types:
      guard entry < UInt64(btf.typeOffsets.count) else { return nil }
      return btf.stringBytes(at: btf.bytes.field(UInt64(btf.typeOffsets[Int(entry)])))
    case .enumerators:
      let local = Int(entry >> 16)
      guard local < btf.typeOffsets.count else { return nil }
      let at = UInt64(btf.typeOffsets[local])
      let kind = (btf.bytes.field(at + 4, as: UInt32.self) >> 24) & 0x1f
      let stride: UInt64 = kind == BTFConstant.Kind.enum64.rawValue ? 12 : 8
      return btf.stringBytes(at: btf.bytes.field(at + BTFConstant.typeHeaderSize + (entry & 0xffff) * stride))
    }
  }

  /// FNV-1a: cheap, and good enough on identifiers.
  static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var hash: UInt32 = 2_166_136_261
    for byte in bytes {
      hash = (hash ^ UInt32(byte)) &* 16_777_619
    }
    return hash
  }
}
