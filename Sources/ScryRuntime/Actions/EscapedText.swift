import Glibc
import ScryLanguage

/// `text_str(s)`, `text_strn(s, n, quoted)`: a string with what is not printable escaped, as
/// SystemTap's runtime `_stp_text_str` writes it: `\n` `\t` `\"` `\\` and the other C escapes,
/// `\ooo` for other bytes, `\uXXXX` (`\UXXXXXXXX`) for UTF-8 characters, within MAXSTRINGLEN - 1
/// bytes; quoted, a cut string ends `"...`.
final class EscapedText: BytesNode {
  let source: BytesNode
  let length: Int
  let isQuoted: Bool
  let scratch: Scratch
  init(_ source: BytesNode, length: Int, isQuoted: Bool, type: ScryType) {
    self.source = source
    self.length = length
    self.isQuoted = isQuoted
    self.scratch = Scratch(source.byteSize)
    super.init(type: type)
  }

  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    source.eval(m, into: scratch.pointer)
    let input = UnsafeRawPointer(scratch.pointer).assumingMemoryBound(to: UInt8.self)
    let out = destination.assumingMemoryBound(to: UInt8.self)
    let limit = Function.systemTapStringCapacity - 1
    var remaining = Swift.min(StringBytes.length(scratch.pointer, source.byteSize), length > 0 && length < limit ? length : limit)
    var budget = Swift.min(limit, byteSize - 1)
    var n = 0
    if isQuoted {
      budget = Swift.max(budget, 5) - 2
      out[n] = UInt8(ascii: "\"")
      n += 1
    }
    var position = 0
    var character: UInt32 = 0
    while remaining > 0 {
      let (c, width) = Self.decode(input + position, remaining)
      character = c
      if budget <= 0 { break }
      position += width
      remaining -= width
      let needed: Int
      if width > 1 {
        needed = c <= 0xFFFF ? 6 : 10
        if budget < needed { break }
        out[n] = UInt8(ascii: "\\")
        out[n + 1] = c <= 0xFFFF ? UInt8(ascii: "u") : UInt8(ascii: "U")
        for i in 0..<(needed - 2) { out[n + 2 + i] = Self.hex((c >> UInt32(4 * (needed - 3 - i))) & 0xF) }
      } else if c >= 0x20 && c < 0x7F && c != 0x22 && c != 0x5C {
        needed = 1
        out[n] = UInt8(c)
      } else if let letter = Self.escape(c) {
        needed = 2
        if budget < needed { break }
        out[n] = UInt8(ascii: "\\")
        out[n + 1] = letter
      } else {
        needed = 4
        if budget < needed { break }
        out[n] = UInt8(ascii: "\\")
        out[n + 1] = UInt8(ascii: "0") + UInt8((c >> 6) & 3)
        out[n + 2] = UInt8(ascii: "0") + UInt8((c >> 3) & 7)
        out[n + 3] = UInt8(ascii: "0") + UInt8(c & 7)
      }
      n += needed
      budget -= needed
    }
    if isQuoted {
      // Cut short: the closing quote and "..." replace the end, as the runtime writes them.
      if character != 0 && remaining > 0 {
        n = n - 3 + budget
        out[n] = UInt8(ascii: "\"")
        for i in 1...3 { out[n + i] = UInt8(ascii: ".") }
        n += 4
      } else {
        out[n] = UInt8(ascii: "\"")
        n += 1
      }
    }
    (destination + n).initializeMemory(as: UInt8.self, repeating: 0, count: byteSize - n)
  }

  /// The letter of a character's C escape (`\n`), if it has one.
  static func escape(_ c: UInt32) -> UInt8? {
    switch c {
    case 0x07: return UInt8(ascii: "a")
    case 0x08: return UInt8(ascii: "b")
    case 0x0C: return UInt8(ascii: "f")
    case 0x0A: return UInt8(ascii: "n")
    case 0x0D: return UInt8(ascii: "r")
    case 0x09: return UInt8(ascii: "t")
    case 0x0B: return UInt8(ascii: "v")
    case 0x22: return UInt8(ascii: "\"")
    case 0x5C: return UInt8(ascii: "\\")
    default: return nil
    }
  }

  static func hex(_ v: UInt32) -> UInt8 { v < 10 ? UInt8(48 + v) : UInt8(87 + v) }

  /// One UTF-8 character (its code point and byte count), or a single byte where the sequence is
  /// not valid or longer than needed, as `_stp_decode_utf8` reads it.
  static func decode(_ p: UnsafePointer<UInt8>, _ count: Int) -> (UInt32, Int) {
    let b = p[0]
    let width = b >= 0xF0 && b < 0xF8 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
    guard width > 1, width <= count else { return (UInt32(b), 1) }
    var c = UInt32(b) & (0xFF >> UInt32(width + 1))
    for i in 1..<width {
      guard p[i] & 0xC0 == 0x80 else { return (UInt32(b), 1) }
      c = (c << 6) | UInt32(p[i] & 0x3F)
    }
    if c < 0x80 || (width == 3 && c < 0x800) || (width == 4 && c < 0x10000) { return (UInt32(b), 1) }
    return (c, width)
  }
}
