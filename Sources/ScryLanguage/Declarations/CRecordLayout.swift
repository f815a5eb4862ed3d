/// A C type with its C layout (a `ScryType`'s `byteSize` is its size in a map, not in C).
struct CType {
  var type: ScryType
  var size: Int
  var align: Int
  /// The C spelling, for `RecordField.cType` (`unsigned int`, `struct Foo *`, `char[16]`).
  var spelling: String
  var isComplete = true
  /// Plain `char`: an array of it is a string.
  var isPlainChar = false
  var isFunction = false
  /// A struct or union defined in place without a tag: as a member without a name, C reaches its
  /// members as the holder's own.
  var isAnonymousRecord = false

  static let void = CType(type: .none, size: 0, align: 1, spelling: "void", isComplete: false)

  static func integer(_ integer: IntegerType, _ spelling: String) -> CType {
    CType(type: .integer(integer), size: integer.bits / 8, align: integer.bits / 8, spelling: spelling)
  }

  /// Types Scry has no values for (`float`, `__int128`): their bytes, at their alignment.
  static func opaque(size: Int, align: Int, _ spelling: String) -> CType {
    CType(type: .array(.integer(IntegerType(bits: 8, isSigned: false)), count: size), size: size, align: align, spelling: spelling)
  }
}

/// `__attribute__((packed))` and `__attribute__((aligned(N)))`, on a record or a member.
struct CAttributes {
  var isPacked = false
  var aligned: Int?

  mutating func align(_ n: Int) { aligned = max(aligned ?? 1, n) }
}

/// One member of a struct or union as written, before layout.
struct CMember {
  /// Nil for an unnamed bitfield or an anonymous struct/union member.
  var name: CToken?
  var type: CType
  var bitWidth: Int?
  var attributes: CAttributes
  var at: CToken
}

/// Struct and union layout as GCC does it on x86-64 (System V ABI).
extension CDeclarationParser {
  func alignUp(_ value: Int, _ alignment: Int) -> Int {
    alignment <= 1 ? value : (value + alignment - 1) / alignment * alignment
  }

  func layout(name: String, isUnion: Bool, members: [CMember], attributes: CAttributes, at open: CToken) throws(Failure)
    -> CType
  {
    var fields: [RecordField] = []
    var bit = 0  // the next free bit (structs)
    var unionSize = 0
    var recordAlign = 1
    for member in members {
      var align = attributes.isPacked || member.attributes.isPacked ? 1 : member.type.align
      if let forced = member.attributes.aligned { align = max(align, forced) }
      let fieldName = member.name?.text ?? ""
      if let width = member.bitWidth {
        let unitBits = member.type.size * 8
        if width == 0 {
          // A zero-width bitfield closes the unit: the next field starts at the type's next boundary,
          // even in a packed struct; like all unnamed bitfields it leaves the record's alignment be.
          bit = alignUp(bit, member.type.align * 8)
          continue
        }
        if isUnion { bit = 0 }
        let isPacked = attributes.isPacked || member.attributes.isPacked
        // GCC starts a new unit when the field would straddle an aligned unit of its type.
        if !isPacked && bit / unitBits != (bit + width - 1) / unitBits { bit = alignUp(bit, unitBits) }
        var offset = bit / unitBits * member.type.size
        var size = member.type.size
        if isPacked {
          offset = bit / 8
          size = [1, 2, 4, 8].first { $0 * 8 >= bit % 8 + width } ?? 0
          guard size > 0 else { throw failure("packed bit-field '\(fieldName)' spans more than 8 bytes", at: member.at) }
        }
        if member.name != nil {
          recordAlign = max(recordAlign, align)
          fields.append(
            RecordField(
              name: fieldName, cType: member.type.spelling, type: member.type.type, offset: offset, size: size,
              bitOffset: bit - offset * 8, bitWidth: width))
        }
        bit += width
        unionSize = max(unionSize, (width + 7) / 8)
        continue
      }
      let offset = isUnion ? 0 : alignUp(bit, align * 8) / 8
      recordAlign = max(recordAlign, align)
      if member.name == nil, case .record(let inner) = member.type.type {
        fields += inner.fields.map {
          var field = $0
          field.offset += offset
          return field
        }
      } else {
        fields.append(
          RecordField(name: fieldName, cType: member.type.spelling, type: member.type.type, offset: offset, size: member.type.size))
      }
      bit = isUnion ? 0 : (offset + member.type.size) * 8
      unionSize = max(unionSize, member.type.size)
    }
    if let forced = attributes.aligned { recordAlign = max(recordAlign, forced) }
    let size = alignUp(isUnion ? unionSize : (bit + 7) / 8, recordAlign)
    var seen: Set<String> = []
    for field in fields where !seen.insert(field.name).inserted {
      let token = members.last { $0.name?.text == field.name }?.name ?? open
      throw failure("duplicate member '\(field.name)'", at: token)
    }
    guard size < 1 << 30 else { throw failure("'\(name)' is too large", at: open) }
    let record = RecordType(name: name, fields: fields, size: size, isUnion: isUnion)
    return CType(type: .record(record), size: size, align: recordAlign, spelling: record.cName, isAnonymousRecord: name.isEmpty)
  }

  /// An enum's integer: 4 bytes, unsigned unless a value is negative, 8 if a value needs it;
  /// the smallest that holds every value if packed (GCC).
  func enumType(_ values: [Int64], spelling: String, isPacked: Bool) -> CType {
    let low = values.min() ?? 0
    let high = values.max() ?? 0
    let isSigned = low < 0
    var bits = 64
    for candidate in (isPacked ? [8, 16, 32] : [32]) {
      let fits = isSigned
        ? low >= -(Int64(1) << (candidate - 1)) && high < Int64(1) << (candidate - 1)
        : high < Int64(1) << candidate
      if fits {
        bits = candidate
        break
      }
    }
    return CType.integer(IntegerType(bits: bits, isSigned: isSigned), spelling)
  }
}
