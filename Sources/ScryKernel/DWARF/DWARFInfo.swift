/// One debugging information entry, with the attributes Scry reads.
public struct DWARFEntry: Sendable {
  /// Where it starts in .debug_info: what references name.
  public var offset: UInt64
  public var tag: UInt16
  public var name: String?
  /// The entry `DW_AT_type` refers to (its offset), nil for `void`.
  public var type: UInt64?
  public var byteSize: UInt64?
  public var bitSize: UInt64?
  public var encoding: UInt64?
  /// A member's byte offset (`DW_AT_data_member_location` as a constant, or DWARF 2's
  /// `DW_OP_plus_uconst` expression).
  public var memberOffset: UInt64?
  public var dataBitOffset: UInt64?
  public var upperBound: UInt64?
  public var count: UInt64?
  public var isDeclaration = false
  /// Indices of its children in `DWARFInfo.entries`, in order.
  public var children: [Int] = []
}

/// The .debug_info of one file, parsed whole into entries: what bpftrace reads through libdw
/// for uprobes (a function's formal parameters, and struct types by name).
///
/// Every compile unit of DWARF 2 to 5 is read (32- and 64-bit formats); type units and split
/// DWARF are skipped. A malformed unit ends the parse with an error rather than a partial tree.
public final class DWARFInfo: @unchecked Sendable {
  // @unchecked: immutable after init.
  public let path: String
  public private(set) var entries: [DWARFEntry] = []
  /// Top-level entries of each compile unit (children of its DW_TAG_compile_unit).
  public private(set) var unitEntries: [[Int]] = []
  private var indexByOffset: [UInt64: Int] = [:]
  /// Top-level functions and structs/unions by name, in unit order: `-lv` asks for each of
  /// thousands of functions (libc), so lookups must not walk the units.
  private var functionsByName: [String: [Int]] = [:]
  private var recordsByName: [String: [Int]] = [:]

  private struct Abbreviation {
    var tag: UInt16
    var hasChildren: Bool
    var attributes: [(name: UInt64, form: UInt64, implicitConst: Int64)]
  }

  public init(sections: DWARFSections, path: String) throws(KernelError) {
    self.path = path
    var abbreviationTables: [UInt64: [UInt64: Abbreviation]] = [:]
    var cursor = DWARFCursor(sections.info)
    while !cursor.atEnd {
      let unitOffset = UInt64(cursor.offset)
      var length = cursor.unsigned(4)
      var offsetSize = 4
      if length == 0xffff_ffff {
        length = cursor.unsigned(8)
        offsetSize = 8
      }
      let contentStart = cursor.offset
      guard !cursor.failed, length <= UInt64(sections.info.count - contentStart) else { throw malformed("a unit runs past the section") }
      let end = contentStart + Int(length)
      let version = UInt16(cursor.unsigned(2))
      var unitType: UInt8 = 1
      let abbrevOffset: UInt64
      let addressSize: Int
      if version >= 5 {
        unitType = cursor.u8()
        addressSize = Int(cursor.u8())
        abbrevOffset = cursor.unsigned(offsetSize)
        switch unitType {
        case 2, 6: cursor.skip(8 + offsetSize)  // type units: signature and type offset
        case 4, 5: cursor.skip(8)  // skeleton and split units: dwo_id
        default: break
        }
      } else {
        abbrevOffset = cursor.unsigned(offsetSize)
        addressSize = Int(cursor.u8())
      }
      guard (2...5).contains(version), !cursor.failed else { throw malformed("unit at \(unitOffset) has DWARF version \(version)") }
      // Type units (.debug_types in DWARF 4 never reaches here; DWARF 5's in .debug_info) and
      // split skeletons describe nothing bpftrace looks up by name: skipped whole.
      if unitType != 1 && unitType != 3 {
        cursor.offset = end
        continue
      }
      if abbreviationTables[abbrevOffset] == nil {
        abbreviationTables[abbrevOffset] = try Self.abbreviations(sections.abbrev, at: abbrevOffset, path: path)
      }
      let format = DWARFUnitFormat(version: version, offsetSize: offsetSize, addressSize: addressSize, unitOffset: unitOffset)
      var unit = DWARFCursor(sections.info, at: cursor.offset, end: end)
      try parseUnit(&unit, format: format, abbreviations: abbreviationTables[abbrevOffset]!, sections: sections)
      cursor.offset = end
    }
  }

  private func malformed(_ why: String) -> KernelError {
    KernelError(operation: "read DWARF", subject: path, errno: 0, explanation: "malformed .debug_info: " + why)
  }

  private static func abbreviations(_ bytes: [UInt8], at offset: UInt64, path: String) throws(KernelError) -> [UInt64: Abbreviation] {
    guard offset < UInt64(bytes.count) else {
      throw KernelError(operation: "read DWARF", subject: path, errno: 0, explanation: "malformed .debug_abbrev: offset out of range")
    }
    var cursor = DWARFCursor(bytes, at: Int(offset))
    var table: [UInt64: Abbreviation] = [:]
    while !cursor.atEnd {
      let code = cursor.uleb()
      if code == 0 { break }
      let tag = UInt16(truncatingIfNeeded: cursor.uleb())
      let hasChildren = cursor.u8() != 0
      var attributes: [(UInt64, UInt64, Int64)] = []
      while !cursor.atEnd {
        let name = cursor.uleb()
        let form = cursor.uleb()
        if name == 0 && form == 0 { break }
        attributes.append((name, form, form == 0x21 ? cursor.sleb() : 0))
      }
      table[code] = Abbreviation(tag: tag, hasChildren: hasChildren, attributes: attributes)
    }
    guard !cursor.failed else {
      throw KernelError(operation: "read DWARF", subject: path, errno: 0, explanation: "malformed .debug_abbrev: truncated")
    }
    return table
  }

  /// The entries of one unit, as a tree: a stack of open parents, closed by null entries.
  private func parseUnit(
    _ cursor: inout DWARFCursor, format: DWARFUnitFormat, abbreviations: [UInt64: Abbreviation], sections: DWARFSections
  ) throws(KernelError) {
    var parents: [Int] = []
    var unitIndex: Int? = nil
    var stringBase: UInt64 = 8  // DWARF 5's default: just past the table header
    var pendingStrings: [(entry: Int, index: UInt64)] = []
    while !cursor.atEnd {
      let offset = UInt64(cursor.offset)
      let code = cursor.uleb()
      if code == 0 {
        if !parents.isEmpty { parents.removeLast() }
        continue
      }
      guard let abbreviation = abbreviations[code] else { throw malformed("unknown abbreviation \(code) at \(offset)") }
      var entry = DWARFEntry(offset: offset, tag: abbreviation.tag)
      var nameIndex: UInt64? = nil
      var legacyBitOffset: UInt64? = nil
      for attribute in abbreviation.attributes {
        let value = cursor.value(form: attribute.form, implicitConst: attribute.implicitConst, unit: format, strings: sections)
        switch (attribute.name, value) {
        case (DWARFAttribute.name, .string(let text)): entry.name = text
        case (DWARFAttribute.name, .stringIndex(let index)): nameIndex = index
        case (DWARFAttribute.type, .reference(let target)): entry.type = target
        case (DWARFAttribute.byteSize, _): entry.byteSize = value.unsigned
        case (DWARFAttribute.bitSize, _): entry.bitSize = value.unsigned
        case (DWARFAttribute.bitOffset, _): legacyBitOffset = value.unsigned
        case (DWARFAttribute.encoding, _): entry.encoding = value.unsigned
        case (DWARFAttribute.dataBitOffset, _): entry.dataBitOffset = value.unsigned
        case (DWARFAttribute.upperBound, _): entry.upperBound = value.unsigned
        case (DWARFAttribute.count, _): entry.count = value.unsigned
        case (DWARFAttribute.declaration, .flag(let flag)): entry.isDeclaration = flag
        case (DWARFAttribute.strOffsetsBase, _): stringBase = value.unsigned ?? stringBase
        case (DWARFAttribute.dataMemberLocation, .block(let expression)):
          // DWARF 2: `DW_OP_plus_uconst N`.
          var ops = DWARFCursor(expression)
          if ops.u8() == 0x23 { entry.memberOffset = ops.uleb() }
        case (DWARFAttribute.dataMemberLocation, _): entry.memberOffset = value.unsigned
        default: break
        }
      }
      guard !cursor.failed else { throw malformed("entry at \(offset) runs past its unit") }
      // DWARF 4's bitfield on a little-endian target: the unit (byte_size at the member's
      // location) holds it `bit_offset` bits below its top bit.
      if entry.dataBitOffset == nil, let legacy = legacyBitOffset, let bits = entry.bitSize {
        let unitBits = (entry.byteSize ?? 0) * 8
        let start = (entry.memberOffset ?? 0) * 8 &+ unitBits
        entry.dataBitOffset = start &- legacy &- bits
      }
      let index = entries.count
      if let nameIndex { pendingStrings.append((index, nameIndex)) }
      if let parent = parents.last { entries[parent].children.append(index) }
      entries.append(entry)
      indexByOffset[offset] = index
      if unitIndex == nil { unitIndex = index }
      if abbreviation.hasChildren { parents.append(index) }
    }
    // strx names resolve against the unit's base, which its root entry may give after them.
    for (entry, index) in pendingStrings {
      let slot = stringBase + index * UInt64(format.offsetSize)
      guard slot < UInt64(sections.strOffsets.count) else { continue }
      var table = DWARFCursor(sections.strOffsets, at: Int(slot))
      let at = table.unsigned(format.offsetSize)
      if !table.failed { entries[entry].name = DWARFCursor.string(in: sections.str, at: at) }
    }
    if let unitIndex {
      let top = entries[unitIndex].children
      unitEntries.append(top)
      for index in top {
        guard let name = entries[index].name else { continue }
        switch entries[index].tag {
        case DWARFTag.subprogram: functionsByName[name, default: []].append(index)
        case DWARFTag.structureType, DWARFTag.unionType: recordsByName[name, default: []].append(index)
        default: break
        }
      }
    }
  }

  // MARK: - Lookups

  public func entry(at offset: UInt64) -> DWARFEntry? {
    indexByOffset[offset].map { entries[$0] }
  }

  /// The entry `entry`'s DW_AT_type names; nil for `void` (no type) or a dangling reference.
  public func type(of entry: DWARFEntry) -> DWARFEntry? {
    entry.type.flatMap { self.entry(at: $0) }
  }

  public func children(of entry: DWARFEntry, tag: UInt16) -> [DWARFEntry] {
    guard let index = indexByOffset[entry.offset] else { return [] }
    return entries[index].children.map { entries[$0] }.filter { $0.tag == tag }
  }

  /// The first function named `name` in unit order, as libdw's `dwarf_getfuncs` walk meets it,
  /// preferring a definition to a declaration (`extern int f(int);` in another unit).
  public func function(named name: String) -> DWARFEntry? {
    let candidates = functionsByName[name] ?? []
    return candidates.first { !entries[$0].isDeclaration }.map { entries[$0] } ?? candidates.first.map { entries[$0] }
  }

  /// A function's formal parameters, in order; nil when the DWARF has no such function.
  public func parameters(of function: String) -> [DWARFEntry]? {
    self.function(named: function).map { children(of: $0, tag: DWARFTag.formalParameter) }
  }

  /// The first top-level struct (or union) definition named `name` in unit order.
  public func record(named name: String, isUnion: Bool = false) -> DWARFEntry? {
    let tag = isUnion ? DWARFTag.unionType : DWARFTag.structureType
    let candidates = (recordsByName[name] ?? []).filter { entries[$0].tag == tag }
    return candidates.first { !entries[$0].isDeclaration }.map { entries[$0] } ?? candidates.first.map { entries[$0] }
  }

  /// The type with typedefs and qualifiers (const, volatile, restrict, _Atomic) removed, as
  /// libdw's `dwarf_peel_type`; nil for `void`.
  public func peeled(_ entry: DWARFEntry?) -> DWARFEntry? {
    var current = entry
    var steps = 0
    while let type = current, steps < 64,
      [DWARFTag.typedef, DWARFTag.constType, DWARFTag.volatileType, DWARFTag.restrictType, DWARFTag.atomicType].contains(type.tag)
    {
      current = self.type(of: type)
      steps += 1
    }
    return current
  }

  /// An array's element counts, outermost first: `upper_bound + 1` or `count`, 0 when unknown
  /// (a flexible array member), as bpftrace's `get_array_size`.
  public func arrayCounts(_ array: DWARFEntry) -> [Int] {
    children(of: array, tag: DWARFTag.subrangeType).map { range in
      if let upper = range.upperBound { return upper == UInt64.max ? 0 : Int(clamping: upper + 1) }
      return Int(clamping: range.count ?? 0)
    }
  }

  /// The C spelling bpftrace's `-lv` gives a parameter's type (its `get_type_name`): `int`,
  /// `char**`, `struct Foo*`, `const char*`, `char* const`; anything else is `<unknown type>`.
  public func typeName(_ entry: DWARFEntry?, depth: Int = 0) -> String {
    guard depth < 64 else { return "<unknown type>" }
    guard let entry else { return "void" }
    switch entry.tag {
    case DWARFTag.baseType, DWARFTag.typedef:
      return entry.name ?? "<unknown type>"
    case DWARFTag.pointerType:
      return entry.type == nil ? "void*" : typeName(type(of: entry), depth: depth + 1) + "*"
    case DWARFTag.structureType, DWARFTag.unionType, DWARFTag.enumerationType:
      let prefix = entry.tag == DWARFTag.structureType ? "struct " : entry.tag == DWARFTag.unionType ? "union " : "enum "
      return prefix + (entry.name ?? "<anonymous>")
    case DWARFTag.constType:
      let inner = type(of: entry)
      if inner?.tag == DWARFTag.pointerType { return typeName(inner, depth: depth + 1) + " const" }
      // `const void`: bpftrace follows a missing DW_AT_type to no entry, which it cannot name.
      return "const " + (inner == nil ? "<unknown type>" : typeName(inner, depth: depth + 1))
    default:
      return "<unknown type>"
    }
  }
}

extension DWARFValue {
  var unsigned: UInt64? {
    switch self {
    case .number(let value): return value
    case .signed(let value): return UInt64(bitPattern: value)
    default: return nil
    }
  }
}
