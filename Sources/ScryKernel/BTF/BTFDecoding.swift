import Glibc

/// Decoding one type from its bytes. The index pass checked that each type's header and
/// trailing data lie inside the type section, so the `field` reads here stay in range; what
/// is not checked (name offsets, referenced ids) decodes as an empty name or an unknown id.
extension BTF {
  /// The type whose header is at `at`, in this blob.
  func decode(at: UInt64) -> BTFType {
    let nameOffset = bytes.field(at, as: UInt32.self)
    let info = bytes.field(at + 4, as: UInt32.self)
    let sizeOrType = bytes.field(at + 8, as: UInt32.self)
    let vlen = Int(info & 0xffff)
    let kindFlag = info >> 31 == 1
    let data = at + BTFConstant.typeHeaderSize
    let name = { self.string(at: nameOffset) }
    guard let kind = BTFConstant.Kind(rawValue: (info >> 24) & 0x1f) else { return .void }
    switch kind {
    case .unknown: return .void
    case .integer:
      let encoding = bytes.field(data, as: UInt32.self)
      return .integer(
        BTFInteger(
          name: name(), size: Int(sizeOrType), isSigned: encoding >> 24 & 1 != 0, isChar: encoding >> 24 & 2 != 0,
          isBool: encoding >> 24 & 4 != 0, bitOffset: Int(encoding >> 16 & 0xff), bits: Int(encoding & 0xff)))
    case .pointer: return .pointer(sizeOrType)
    case .array:
      return .array(
        BTFArray(
          element: bytes.field(data), index: bytes.field(data + 4), count: Int(bytes.field(data + 8, as: UInt32.self))))
    case .structure, .union:
      return .record(
        BTFRecord(
          name: name(), size: Int(sizeOrType), isUnion: kind == .union,
          members: members(at: data, count: vlen, kindFlag: kindFlag)))
    case .enumeration, .enum64:
      let enumerators = (0..<vlen).map { enumerator(at: data, index: $0, kind: kind, isSigned: kindFlag) }
      return .enumeration(BTFEnum(name: name(), size: Int(sizeOrType), isSigned: kindFlag, enumerators: enumerators))
    case .forward: return .forward(name: name(), isUnion: kindFlag)
    case .typedef: return .typedef(name: name(), type: sizeOrType)
    case .const: return .qualifier(.const, type: sizeOrType)
    case .volatile: return .qualifier(.volatile, type: sizeOrType)
    case .restrict: return .qualifier(.restrict, type: sizeOrType)
    case .typeTag: return .typeTag(name: name(), type: sizeOrType)
    case .function: return .function(name: name(), prototype: sizeOrType, linkage: vlen)
    case .functionPrototype:
      let parameters = (0..<UInt64(vlen)).map { index in
        let at = data + index * 8
        return BTFParameter(name: string(at: bytes.field(at)), type: bytes.field(at + 4))
      }
      return .functionPrototype(returnType: sizeOrType, parameters: parameters)
    case .variable: return .variable(name: name(), type: sizeOrType, linkage: Int(bytes.field(data, as: UInt32.self)))
    case .dataSection:
      let variables = (0..<UInt64(vlen)).map { index in
        let at = data + index * 12
        return BTFSectionVariable(
          type: bytes.field(at), offset: Int(bytes.field(at + 4, as: UInt32.self)),
          size: Int(bytes.field(at + 8, as: UInt32.self)))
      }
      return .dataSection(name: name(), size: Int(sizeOrType), variables: variables)
    case .float: return .float(name: name(), size: Int(sizeOrType))
    case .declTag:
      return .declTag(name: name(), type: sizeOrType, componentIndex: Int32(bitPattern: bytes.field(data)))
    }
  }

  /// A struct's or union's members. With kind_flag clear, a bitfield is told by its INT type
  /// (fewer bits than its size, or a bit offset of its own), the encoding before kind_flag.
  private func members(at data: UInt64, count: Int, kindFlag: Bool) -> [BTFMember] {
    (0..<UInt64(count)).map { index in
      let at = data + index * 12
      let type = bytes.field(at + 4, as: UInt32.self)
      let offset = bytes.field(at + 8, as: UInt32.self)
      var member = BTFMember(name: string(at: bytes.field(at)), type: type, bitOffset: Int(offset), bitfieldSize: 0)
      if kindFlag {
        member.bitOffset = Int(offset & 0xff_ffff)
        member.bitfieldSize = Int(offset >> 24)
      } else if case .integer(let integer) = self.type(id: resolvedQualifiers(type)),
        integer.bitOffset != 0 || integer.bits != integer.size * 8
      {
        member.bitOffset += integer.bitOffset
        member.bitfieldSize = integer.bits
      }
      return member
    }
  }

  /// The id past const/volatile/restrict only (an old-style bitfield's INT sits behind those, a
  /// typedef'd INT is never one).
  private func resolvedQualifiers(_ id: UInt32) -> UInt32 {
    var current = id
    for _ in 0..<BTFConstant.maximumChain {
      switch kind(of: current) {
      case .const, .volatile, .restrict:
        guard let (btf, at) = location(of: current) else { return 0 }
        current = btf.bytes.field(at + 8, as: UInt32.self)
      default: return current
      }
    }
    return 0
  }

  private func enumerator(at data: UInt64, index: Int, kind: BTFConstant.Kind, isSigned: Bool) -> BTFEnumerator {
    if kind == .enum64 {
      let at = data + UInt64(index) * 12
      let value = UInt64(bytes.field(at + 4, as: UInt32.self)) | UInt64(bytes.field(at + 8, as: UInt32.self)) << 32
      return BTFEnumerator(name: string(at: bytes.field(at)), value: Int64(bitPattern: value))
    }
    let at = data + UInt64(index) * 8
    let raw = bytes.field(at + 4, as: UInt32.self)
    return BTFEnumerator(
      name: string(at: bytes.field(at)), value: isSigned ? Int64(Int32(bitPattern: raw)) : Int64(raw))
  }

  /// Enumerator `index` of type `local` (an index into this blob's types), as the enumerator
  /// name index stores them: `local << 16 | index`.
  func enumerator(_ entry: UInt64) -> BTFEnumerator? {
    let local = Int(entry >> 16)
    guard local < typeOffsets.count else { return nil }
    let at = UInt64(typeOffsets[local])
    let info = bytes.field(at + 4, as: UInt32.self)
    guard let kind = BTFConstant.Kind(rawValue: (info >> 24) & 0x1f), kind == .enumeration || kind == .enum64,
      Int(entry & 0xffff) < Int(info & 0xffff)
    else { return nil }
    return enumerator(
      at: at + BTFConstant.typeHeaderSize, index: Int(entry & 0xffff), kind: kind, isSigned: info >> 31 == 1)
  }

  // MARK: - Strings

  /// The string at `offset` of the string section (the base's below `firstStringOffset`), as
  /// bytes without its NUL; nil when the offset is outside or the string is unterminated.
  func stringBytes(at offset: UInt32) -> UnsafeRawBufferPointer? {
    if offset < firstStringOffset { return base?.stringBytes(at: offset) }
    let start = stringSection.lowerBound + UInt64(offset - firstStringOffset)
    guard start < stringSection.upperBound, let base = bytes.base else { return nil }
    let length = Int(stringSection.upperBound - start)
    guard let end = memchr(base + Int(start), 0, length) else { return nil }
    return UnsafeRawBufferPointer(start: base + Int(start), count: UnsafeRawPointer(end) - (base + Int(start)))
  }

  /// The string at `offset`, empty when it cannot be read.
  func string(at offset: UInt32) -> String {
    guard offset != 0, let raw = stringBytes(at: offset) else { return "" }
    return String(decoding: raw, as: UTF8.self)
  }
}
