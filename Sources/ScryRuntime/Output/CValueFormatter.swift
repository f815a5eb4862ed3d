import ScryLanguage

/// Struct, union and array values as C lays them out in memory (a value the kernel copied at the
/// event), printed as bpftrace 0.17 prints them: `{ .x = 5, .y = -9 }` as a value, `{.x=5,.y=-9}`
/// inside a map key, `{ "x": 5, "y": -9 }` in JSON; arrays `[10,20,30]`; pointers in decimal.
enum CValueFormatter {
  static func appendRecord(_ p: UnsafeRawPointer, _ record: RecordType, json: Bool, inKey: Bool, to out: OutputBuffer) {
    out.append(inKey ? "{" : "{ ")
    for (index, field) in record.fields.enumerated() {
      if index > 0 { out.append(inKey ? "," : ", ") }
      appendFieldLabel(field.name, json: json, inKey: inKey, to: out)
      appendMember(p + field.offset, field.type, size: field.size, field: field, json: json, inKey: inKey, to: out)
    }
    out.append(inKey ? "}" : " }")
  }

  /// A member's name before its value: `.name = ` (`.name=` in a map key), `"name": ` in JSON.
  static func appendFieldLabel(_ name: String, json: Bool, inKey: Bool = false, to out: OutputBuffer) {
    if json {
      out.appendByte(UInt8(ascii: "\""))
      out.append(name)
      out.append("\": ")
    } else {
      out.appendByte(UInt8(ascii: "."))
      out.append(name)
      out.append(inKey ? "=" : " = ")
    }
  }

  /// An array of `count` elements at their C stride.
  static func appendArray(
    _ p: UnsafeRawPointer, element: ScryType, count: Int, json: Bool, inKey: Bool, to out: OutputBuffer
  ) {
    out.appendByte(UInt8(ascii: "["))
    let stride = element.memorySize
    for i in 0..<count {
      if i > 0 { out.append(",") }
      appendMember(p + i * stride, element, size: stride, field: nil, json: json, inKey: inKey, to: out)
    }
    out.appendByte(UInt8(ascii: "]"))
  }

  private static func appendMember(
    _ p: UnsafeRawPointer, _ type: ScryType, size: Int, field: RecordField?, json: Bool, inKey: Bool, to out: OutputBuffer
  ) {
    switch type {
    case .integer(let t):
      var value = load(p, byteCount: min(size, 8), isSigned: t.isSigned && (field?.bitWidth ?? 0) == 0)
      if let field, field.bitWidth > 0 {
        value = (value >> UInt64(field.bitOffset)) & (field.bitWidth >= 64 ? ~0 : (1 << UInt64(field.bitWidth)) - 1)
      }
      if t.isSigned && (field?.bitWidth ?? 0) == 0 { out.appendDecimal(Int64(bitPattern: value)) } else { out.appendUnsigned(value) }
    case .boolean:
      out.appendUnsigned(p.load(as: UInt8.self) != 0 ? 1 : 0)
    case .pointer:
      out.appendDecimal(Int64(bitPattern: load(p, byteCount: 8, isSigned: false)))
    case .record(let record):
      appendRecord(p, record, json: json, inKey: inKey, to: out)
    case .array(let element, let count):
      appendArray(p, element: element, count: count, json: json, inKey: inKey, to: out)
    case .string(let capacity):
      let n = ValueFormatter.stringLength(p, capacity: capacity)
      if json {
        out.appendByte(UInt8(ascii: "\""))
        ValueFormatter.appendJSONEscaped(p.assumingMemoryBound(to: UInt8.self), n, to: out)
        out.appendByte(UInt8(ascii: "\""))
      } else {
        out.appendBytes(p.assumingMemoryBound(to: UInt8.self), n)
      }
    default:
      out.appendUnsigned(load(p, byteCount: min(size, 8), isSigned: false))
    }
  }

  /// A little-endian integer of 1, 2, 4 or 8 bytes, sign-extended when signed.
  static func load(_ p: UnsafeRawPointer, byteCount: Int, isSigned: Bool) -> UInt64 {
    switch (byteCount, isSigned) {
    case (1, true): return UInt64(bitPattern: Int64(p.load(as: Int8.self)))
    case (1, false): return UInt64(p.load(as: UInt8.self))
    case (2, true): return UInt64(bitPattern: Int64(p.loadUnaligned(as: Int16.self)))
    case (2, false): return UInt64(p.loadUnaligned(as: UInt16.self))
    case (4, true): return UInt64(bitPattern: Int64(p.loadUnaligned(as: Int32.self)))
    case (4, false): return UInt64(p.loadUnaligned(as: UInt32.self))
    default: return p.loadUnaligned(as: UInt64.self)
    }
  }
}
