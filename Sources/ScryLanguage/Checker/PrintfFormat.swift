/// A printf-style format string split into literal text and conversions.
/// Parsed once, at check time; the checker matches conversions against argument types,
/// and the runtime formats from the parsed pieces without re-reading the text.
public struct PrintfFormat: Sendable, Hashable {
  /// One `%…` conversion, as bpftrace accepts it: flags, width, precision, length modifier, verb.
  public struct Conversion: Sendable, Hashable {
    public var leftAlign = false
    public var plusSign = false
    public var spaceSign = false
    public var alternate = false
    public var zeroPad = false
    public var width: Int?
    public var precision: Int?
    /// `h`, `hh`, `l`, `ll`, `z`, `j`, `t` or none: the width in bits an integer is printed at
    /// (none: C's `int`, 32). Kept as bits, so a conversion is plain data, copied without
    /// reference counting on the per-event path.
    public var integerBits = 32
    /// `d i u x X o s c p r` (`r`: a buffer).
    public var verb: UInt8
    /// How `%r` prints a buffer: 0 escapes the unprintable bytes, `x` (`%rx`) escapes every byte
    /// as `\xNN`, `h` (`%rh`) writes every byte as two hex digits, space-separated (bpftrace 0.20).
    public var bufferStyle: UInt8 = 0
    /// Byte offsets of the conversion in the format text.
    public var range: Range<Int>

    public var takesString: Bool { verb == UInt8(ascii: "s") || verb == UInt8(ascii: "r") }
    public var takesInteger: Bool { !takesString }
  }

  public enum Piece: Sendable, Hashable {
    case literal([UInt8])
    case conversion(Conversion)
  }

  public struct ParseError: Error, Sendable, Equatable {
    /// Byte range in the format text of the bad conversion.
    public var range: Range<Int>
    public var message: String
  }

  public var pieces: [Piece]
  /// The format as written (escapes decoded), for `--plan`.
  public var text: [UInt8]

  public var conversions: [Conversion] {
    pieces.compactMap { if case .conversion(let c) = $0 { return c } else { return nil } }
  }

  public static func parse(_ text: [UInt8]) -> Result<PrintfFormat, ParseError> {
    var pieces: [Piece] = []
    var literal: [UInt8] = []
    var i = 0
    while i < text.count {
      let byte = text[i]
      guard byte == UInt8(ascii: "%") else {
        literal.append(byte)
        i += 1
        continue
      }
      let start = i
      i += 1
      if i < text.count, text[i] == UInt8(ascii: "%") {
        literal.append(UInt8(ascii: "%"))
        i += 1
        continue
      }
      var c = Conversion(verb: 0, range: start..<start)
      flags: while i < text.count {
        switch text[i] {
        case UInt8(ascii: "-"): c.leftAlign = true
        case UInt8(ascii: "+"): c.plusSign = true
        case UInt8(ascii: " "): c.spaceSign = true
        case UInt8(ascii: "#"): c.alternate = true
        case UInt8(ascii: "0"): c.zeroPad = true
        default: break flags
        }
        i += 1
      }
      c.width = readNumber(text, &i)
      if i < text.count, text[i] == UInt8(ascii: ".") {
        i += 1
        c.precision = readNumber(text, &i) ?? 0
      }
      var modifier = ""
      while i < text.count, "hlzjt".utf8.contains(text[i]) {
        modifier.append(Character(UnicodeScalar(text[i])))
        i += 1
      }
      guard i < text.count else {
        return .failure(ParseError(range: start..<text.count, message: "incomplete conversion at the end of the format"))
      }
      let verb = text[i]
      i += 1
      guard "diuxXoscpr".utf8.contains(verb) else {
        let shown = String(decoding: text[start..<i], as: UTF8.self)
        return .failure(ParseError(range: start..<i, message: "unknown conversion '\(shown)' in format"))
      }
      switch modifier {
      case "": c.integerBits = 32
      case "h": c.integerBits = 16
      case "hh": c.integerBits = 8
      case "l", "ll", "z", "j", "t": c.integerBits = 64
      default:
        return .failure(ParseError(range: start..<i, message: "unknown length modifier '\(modifier)'"))
      }
      c.verb = verb
      if verb == UInt8(ascii: "r"), i < text.count, text[i] == UInt8(ascii: "x") || text[i] == UInt8(ascii: "h") {
        c.bufferStyle = text[i]
        i += 1
      }
      c.range = start..<i
      if !literal.isEmpty {
        pieces.append(.literal(literal))
        literal = []
      }
      pieces.append(.conversion(c))
    }
    if !literal.isEmpty { pieces.append(.literal(literal)) }
    return .success(PrintfFormat(pieces: pieces, text: text))
  }

  private static func readNumber(_ text: [UInt8], _ i: inout Int) -> Int? {
    var value: Int?
    while i < text.count, text[i] >= UInt8(ascii: "0"), text[i] <= UInt8(ascii: "9") {
      value = min((value ?? 0) * 10 + Int(text[i] - UInt8(ascii: "0")), 1 << 20)
      i += 1
    }
    return value
  }
}
