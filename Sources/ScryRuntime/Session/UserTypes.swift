import ScryKernel
import ScryLanguage

/// A binary's C types for the language: DWARF entries converted to `ScryType`/`RecordType` as
/// bpftrace 0.17's `Dwarf::get_stype` does (base types by encoding and size, enums unsigned,
/// `char[N]` as strings, pointers to named structs by reference), following `CTypes`'s conventions.
/// Not thread-safe (the cache): used by one catalog from one thread.
final class UserTypes {
  let dwarf: DWARFInfo
  private var records: [String: RecordType?] = [:]

  init(dwarf: DWARFInfo) { self.dwarf = dwarf }

  /// A function's parameters, in order; none for a function the DWARF does not describe, as
  /// bpftrace (its args are then empty).
  func parameters(of function: String) -> [UserParameter] {
    (dwarf.parameters(of: function) ?? []).compactMap { parameter in
      // A declaration's unnamed parameters (`int f(int);`) cannot be named by `args->`.
      guard let name = parameter.name else { return nil }
      let type = dwarf.type(of: parameter)
      return UserParameter(name: name, cType: dwarf.typeName(type), type: convert(type))
    }
  }

  /// `struct Foo` or `union Bar` by C name, laid out from its DWARF definition.
  func record(named cName: String) -> RecordType? {
    if let cached = records[cName] { return cached }
    records[cName] = .some(nil)  // a struct holding itself by value cannot recurse here
    var record: RecordType? = nil
    let isUnion = cName.hasPrefix("union ")
    if isUnion || cName.hasPrefix("struct "), let entry = dwarf.record(named: String(cName.drop { $0 != " " }.dropFirst()), isUnion: isUnion),
      !entry.isDeclaration
    {
      record = convertRecord(entry)
    }
    records[cName] = .some(record)
    return record
  }

  private func convertRecord(_ entry: DWARFEntry) -> RecordType {
    var fields: [RecordField] = []
    for member in dwarf.children(of: entry, tag: DWARFTag.member) {
      guard let name = member.name else { continue }
      let memberType = dwarf.type(of: member)
      let size = Int(dwarf.peeled(memberType).flatMap { byteSize(of: $0) } ?? 0)
      let cType = dwarf.typeName(memberType)
      if let bits = member.bitSize {
        // A bitfield over the naturally aligned unit of its declared type that holds it.
        let bitOffset = Int(member.dataBitOffset ?? (member.memberOffset ?? 0) * 8)
        var unit = [1, 2, 4, 8].contains(size) ? size : 8
        var offset = bitOffset / (unit * 8) * unit
        if bitOffset - offset * 8 + Int(bits) > unit * 8 {
          offset = bitOffset / 8
          unit = [1, 2, 4, 8].first { bitOffset % 8 + Int(bits) <= $0 * 8 } ?? 8
        }
        let signed = isSigned(dwarf.peeled(memberType))
        fields.append(
          RecordField(
            name: name, cType: cType, type: .integer(IntegerType(bits: unit * 8, isSigned: signed)), offset: offset, size: unit,
            bitOffset: bitOffset - offset * 8, bitWidth: Int(bits)))
        continue
      }
      fields.append(
        RecordField(name: name, cType: cType, type: convert(memberType), offset: Int(member.memberOffset ?? 0), size: size))
    }
    return RecordType(
      name: entry.name ?? "", fields: fields, size: Int(entry.byteSize ?? 0), isUnion: entry.tag == DWARFTag.unionType)
  }

  private func isSigned(_ entry: DWARFEntry?) -> Bool {
    guard let encoding = entry?.encoding else { return false }
    return encoding == DWARFEncoding.signed || encoding == DWARFEncoding.signedChar
  }

  private func byteSize(of entry: DWARFEntry) -> UInt64? {
    if let size = entry.byteSize { return size }
    if entry.tag == DWARFTag.pointerType { return 8 }  // a pointer without DW_AT_byte_size: the target's (x86-64)
    if entry.tag == DWARFTag.arrayType, let element = dwarf.peeled(dwarf.type(of: entry)).flatMap({ byteSize(of: $0) }) {
      return dwarf.arrayCounts(entry).reduce(element) { $0 * UInt64($1) }
    }
    return nil
  }

  /// The language's type for a value of this DWARF type (nil: `void`).
  func convert(_ entry: DWARFEntry?) -> ScryType {
    guard let type = dwarf.peeled(entry) else { return .none }
    switch type.tag {
    case DWARFTag.baseType:
      let bits = Int((type.byteSize ?? 0) * 8)
      guard [8, 16, 32, 64].contains(bits) else { return .none }
      switch type.encoding {
      case DWARFEncoding.boolean, DWARFEncoding.unsigned, DWARFEncoding.unsignedChar:
        return .integer(IntegerType(bits: bits, isSigned: false))
      case DWARFEncoding.signed, DWARFEncoding.signedChar:
        return .integer(IntegerType(bits: bits, isSigned: true))
      default:
        return .none  // floats, as bpftrace
      }
    case DWARFTag.enumerationType:  // unsigned, as bpftrace
      let bits = Int((type.byteSize ?? 4) * 8)
      return [8, 16, 32, 64].contains(bits) ? .integer(IntegerType(bits: bits, isSigned: false)) : .none
    case DWARFTag.pointerType:
      guard let target = dwarf.peeled(dwarf.type(of: type)) else { return .pointer(.none) }
      if target.tag == DWARFTag.structureType || target.tag == DWARFTag.unionType, let name = target.name {
        return .pointer(.structReference((target.tag == DWARFTag.unionType ? "union " : "struct ") + name))
      }
      if target.tag == DWARFTag.structureType || target.tag == DWARFTag.unionType { return .pointer(.record(convertRecord(target))) }
      if target.tag == 0x15 { return .pointer(.none) }  // DW_TAG_subroutine_type: a function pointer
      return .pointer(convert(target))
    case DWARFTag.structureType, DWARFTag.unionType:  // by value
      if let name = type.name, let record = record(named: (type.tag == DWARFTag.unionType ? "union " : "struct ") + name) {
        return .record(record)
      }
      return .record(convertRecord(type))
    case DWARFTag.arrayType:  // array: `char[N]` is a string, as bpftrace; dimensions from the innermost out
      let element = dwarf.peeled(dwarf.type(of: type))
      var result = convert(element)
      let isChar = element?.tag == DWARFTag.baseType && (element?.encoding == DWARFEncoding.signedChar || element?.encoding == DWARFEncoding.unsignedChar)
      for (i, count) in dwarf.arrayCounts(type).reversed().enumerated() {
        result = isChar && i == 0 ? .string(capacity: count) : .array(result, count: count)
      }
      return result
    default:
      return .none
    }
  }
}
