/// A bounds-checked little-endian reader over one DWARF section. Reading past the end sets
/// `failed` and yields zeros, so a truncated or malformed section ends the parse with an error
/// instead of a trap.
struct DWARFCursor {
  let bytes: [UInt8]
  var offset: Int
  /// Reads stop here: the section's end, or a unit's.
  let end: Int
  private(set) var failed = false

  init(_ bytes: [UInt8], at offset: Int = 0, end: Int? = nil) {
    self.bytes = bytes
    self.offset = offset
    self.end = min(end ?? bytes.count, bytes.count)
    if offset < 0 || offset > self.end { failed = true }
  }

  var atEnd: Bool { failed || offset >= end }

  mutating func skip(_ count: Int) {
    guard count >= 0, offset <= end - count else {
      failed = true
      offset = end
      return
    }
    offset += count
  }

  mutating func u8() -> UInt8 {
    guard offset < end else {
      failed = true
      return 0
    }
    defer { offset += 1 }
    return bytes[offset]
  }

  /// An unsigned little-endian integer of `count` bytes (1…8).
  mutating func unsigned(_ count: Int) -> UInt64 {
    guard count >= 0, offset <= end - count else {
      failed = true
      offset = end
      return 0
    }
    var value: UInt64 = 0
    for i in 0..<count { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
    offset += count
    return value
  }

  mutating func uleb() -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      let byte = u8()
      if failed { return 0 }
      if shift < 64 { value |= UInt64(byte & 0x7f) << shift }
      shift += 7
      if byte & 0x80 == 0 { return value }
    }
  }

  mutating func sleb() -> Int64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    var byte: UInt8 = 0
    repeat {
      byte = u8()
      if failed { return 0 }
      if shift < 64 { value |= UInt64(byte & 0x7f) << shift }
      shift += 7
    } while byte & 0x80 != 0
    // Sign-extend from the last byte's sign bit (bit patterns: no overflow at 64 bits).
    if shift < 64 && byte & 0x40 != 0 { value |= ~0 << shift }
    return Int64(bitPattern: value)
  }

  /// A NUL-terminated string; the rest of the section when there is no NUL.
  mutating func cString() -> String {
    let start = offset
    while offset < end && bytes[offset] != 0 { offset += 1 }
    let text = String(decoding: bytes[start..<offset], as: UTF8.self)
    if offset < end { offset += 1 } else { failed = true }
    return text
  }

  /// The string at `offset` of a string section, nil when out of range.
  static func string(in bytes: [UInt8], at offset: UInt64) -> String? {
    guard offset < UInt64(bytes.count) else { return nil }
    var cursor = DWARFCursor(bytes, at: Int(offset))
    return cursor.cString()
  }
}
