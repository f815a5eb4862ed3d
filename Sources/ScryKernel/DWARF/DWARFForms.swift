/// The DWARF 2–5 constants the reader uses (DWARF 5 standard, §7), and how each attribute form
/// is read or skipped: a form Scry does not interpret is stepped over by its size, so any
/// producer's extra attributes are harmless.
/// DW_TAG_*: what an entry describes.
public enum DWARFTag {
  public static let arrayType: UInt16 = 0x01
  public static let enumerationType: UInt16 = 0x04
  public static let formalParameter: UInt16 = 0x05
  public static let member: UInt16 = 0x0d
  public static let pointerType: UInt16 = 0x0f
  public static let compileUnit: UInt16 = 0x11
  public static let structureType: UInt16 = 0x13
  public static let typedef: UInt16 = 0x16
  public static let unionType: UInt16 = 0x17
  public static let subrangeType: UInt16 = 0x21
  public static let baseType: UInt16 = 0x24
  public static let constType: UInt16 = 0x26
  public static let subprogram: UInt16 = 0x2e
  public static let volatileType: UInt16 = 0x35
  public static let restrictType: UInt16 = 0x37
  public static let atomicType: UInt16 = 0x47
}

enum DWARFAttribute {
  static let name: UInt64 = 0x03
  static let byteSize: UInt64 = 0x0b
  /// DWARF 2–4's bitfield position: bits from the storage unit's most significant bit.
  static let bitOffset: UInt64 = 0x0c
  static let bitSize: UInt64 = 0x0d
  static let upperBound: UInt64 = 0x2f
  static let count: UInt64 = 0x37
  static let dataMemberLocation: UInt64 = 0x38
  static let declaration: UInt64 = 0x3c
  static let encoding: UInt64 = 0x3e
  static let type: UInt64 = 0x49
  static let dataBitOffset: UInt64 = 0x6b
  static let strOffsetsBase: UInt64 = 0x72
}

/// DW_ATE_*: how a base type's bits are read.
public enum DWARFEncoding {
  public static let boolean: UInt64 = 0x02
  public static let float: UInt64 = 0x04
  public static let signed: UInt64 = 0x05
  public static let signedChar: UInt64 = 0x06
  public static let unsigned: UInt64 = 0x07
  public static let unsignedChar: UInt64 = 0x08
}

/// One attribute's value as the reader keeps it.
enum DWARFValue {
  case number(UInt64)
  case signed(Int64)
  /// A DIE offset within .debug_info (unit-relative references already made absolute).
  case reference(UInt64)
  case string(String)
  /// An index into the unit's string-offsets table, resolved once its base is known.
  case stringIndex(UInt64)
  case flag(Bool)
  case block([UInt8])
  case skipped
}

/// The encoding facts of one unit that form sizes depend on.
struct DWARFUnitFormat {
  var version: UInt16
  var offsetSize: Int  // 4 (32-bit DWARF) or 8 (64-bit DWARF)
  var addressSize: Int
  /// Where the unit starts in .debug_info: `DW_FORM_ref*` are relative to it.
  var unitOffset: UInt64
}

extension DWARFCursor {
  /// Reads one attribute value of `form`; `implicitConst` is the abbreviation's value for
  /// DW_FORM_implicit_const. Unknown forms fail the cursor: their size cannot be known.
  mutating func value(form: UInt64, implicitConst: Int64, unit: DWARFUnitFormat, strings: DWARFSections) -> DWARFValue {
    switch form {
    case 0x01: skip(unit.addressSize); return .skipped  // addr
    case 0x03: let n = Int(unsigned(2)); return block(n)  // block2
    case 0x04: let n = Int(unsigned(4)); return block(n)  // block4
    case 0x05: return .number(unsigned(2))  // data2
    case 0x06: return .number(unsigned(4))  // data4
    case 0x07: return .number(unsigned(8))  // data8
    case 0x08: return .string(cString())  // string
    case 0x09: let n = Int(clamping: uleb()); return block(n)  // block
    case 0x0a: let n = Int(u8()); return block(n)  // block1
    case 0x0b: return .number(UInt64(u8()))  // data1
    case 0x0c: return .flag(u8() != 0)  // flag
    case 0x0d: return .signed(sleb())  // sdata
    case 0x0e:  // strp
      let at = unsigned(unit.offsetSize)
      return DWARFCursor.string(in: strings.str, at: at).map { .string($0) } ?? .skipped
    case 0x0f: return .number(uleb())  // udata
    case 0x10:  // ref_addr: an offset in .debug_info (address-sized in DWARF 2)
      return .reference(unsigned(unit.version <= 2 ? unit.addressSize : unit.offsetSize))
    case 0x11: return .reference(unit.unitOffset + UInt64(u8()))  // ref1
    case 0x12: return .reference(unit.unitOffset + unsigned(2))  // ref2
    case 0x13: return .reference(unit.unitOffset + unsigned(4))  // ref4
    case 0x14: return .reference(unit.unitOffset &+ unsigned(8))  // ref8
    case 0x15: return .reference(unit.unitOffset &+ uleb())  // ref_udata
    case 0x16:  // indirect: the form comes first
      let actual = uleb()
      guard actual != 0x16 else {
        skip(Int.max)
        return .skipped
      }
      return value(form: actual, implicitConst: implicitConst, unit: unit, strings: strings)
    case 0x17: skip(unit.offsetSize); return .skipped  // sec_offset
    case 0x18: let n = Int(clamping: uleb()); return block(n)  // exprloc
    case 0x19: return .flag(true)  // flag_present
    case 0x1a: return .stringIndex(uleb())  // strx
    case 0x1b: _ = uleb(); return .skipped  // addrx
    case 0x1c: skip(4); return .skipped  // ref_sup4
    case 0x1d: skip(unit.offsetSize); return .skipped  // strp_sup
    case 0x1e: skip(16); return .skipped  // data16
    case 0x1f:  // line_strp
      let at = unsigned(unit.offsetSize)
      return DWARFCursor.string(in: strings.lineStr, at: at).map { .string($0) } ?? .skipped
    case 0x20: skip(8); return .skipped  // ref_sig8: a type unit Scry does not follow
    case 0x21: return .signed(implicitConst)  // implicit_const
    case 0x22, 0x23: _ = uleb(); return .skipped  // loclistx, rnglistx
    case 0x24: skip(8); return .skipped  // ref_sup8
    case 0x25: return .stringIndex(unsigned(1))  // strx1
    case 0x26: return .stringIndex(unsigned(2))  // strx2
    case 0x27: return .stringIndex(unsigned(3))  // strx3
    case 0x28: return .stringIndex(unsigned(4))  // strx4
    case 0x29: skip(1); return .skipped  // addrx1
    case 0x2a: skip(2); return .skipped  // addrx2
    case 0x2b: skip(3); return .skipped  // addrx3
    case 0x2c: skip(4); return .skipped  // addrx4
    case 0x1f01, 0x1f02: _ = uleb(); return .skipped  // GNU_addr_index, GNU_str_index (split DWARF)
    case 0x1f20, 0x1f21: skip(unit.offsetSize); return .skipped  // GNU_ref_alt, GNU_strp_alt (dwz)
    default:
      skip(Int.max)  // an unknown form: its size is unknown, so nothing after it can be read
      return .skipped
    }
  }

  private mutating func block(_ count: Int) -> DWARFValue {
    let start = offset
    skip(count)
    return failed ? .skipped : .block(Array(bytes[start..<offset]))
  }
}
