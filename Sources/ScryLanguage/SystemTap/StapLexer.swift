/// A SystemTap token: its kind and where it is; its text is read from the source when needed.
struct StapToken: Sendable {
  var kind: StapTokenKind
  var span: SourceSpan
}

enum StapTokenKind: Sendable, Equatable {
  case identifier
  /// `$name`, `$$vars`, `$$parms`, `$return`
  case variable
  /// `@count`, `@hist_log`, `@entry`: statistic extractors and `@entry`.
  case atName
  /// `$1`, `@1`, `$#`, `@#`: the script's command-line arguments, inserted as a number or a string.
  case argument
  case integer
  case string
  /// An operator or punctuation, spelled as in the source (`<<<`, `.=`, `{`).
  case punct(String)
  case endOfFile
  /// A character no token starts with; the parser reports it.
  case invalid
  case unterminatedString
  case unterminatedComment
  /// `%{ … %}`: embedded C, which Scry does not run.
  case embeddedC
}

/// Splits SystemTap text into tokens: `#`, `//` and `/* */` comments are skipped.
struct StapLexer {
  let bytes: [UInt8]
  var position = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  /// Longest first, so `<<<` wins over `<<` and `<`.
  private static let puncts: [[UInt8]] = [
    "<<<", "<<=", ">>=", "->",
    "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "++", "--", "+=", "-=", "*=", "/=", "%=", ".=", "&=", "|=", "^=",
    "{", "}", "(", ")", "[", "]", ";", ",", ":", "?", ".", "=", "<", ">", "+", "-", "*", "/", "%", "!", "~", "&", "|", "^",
  ].map { Array($0.utf8) }

  static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

  private func peek(_ ahead: Int = 0) -> UInt8 {
    let i = position + ahead
    return i < bytes.count ? bytes[i] : 0
  }

  private static func isIdentifierStart(_ c: UInt8) -> Bool {
    (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F
  }

  private static func isIdentifierByte(_ c: UInt8) -> Bool { isIdentifierStart(c) || (c >= 0x30 && c <= 0x39) }

  /// Skips whitespace and comments; returns the start of an unterminated `/*`.
  private mutating func skipTrivia() -> Int? {
    while position < bytes.count {
      let c = bytes[position]
      if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C || c == 0x0B {
        position += 1
      } else if c == UInt8(ascii: "#") || (c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "/")) {
        while position < bytes.count && bytes[position] != 0x0A { position += 1 }
      } else if c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
        let start = position
        position += 2
        while position < bytes.count && !(bytes[position] == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/")) {
          position += 1
        }
        if position >= bytes.count { return start }
        position += 2
      } else {
        break
      }
    }
    return nil
  }

  mutating func next() -> StapToken {
    if let start = skipTrivia() {
      return StapToken(kind: .unterminatedComment, span: SourceSpan(start: start, end: start + 2))
    }
    let start = position
    func token(_ kind: StapTokenKind) -> StapToken { StapToken(kind: kind, span: SourceSpan(start: start, end: position)) }
    guard position < bytes.count else { return token(.endOfFile) }
    let c = bytes[position]
    if Self.isIdentifierStart(c) {
      while Self.isIdentifierByte(peek()) { position += 1 }
      return token(.identifier)
    }
    if (c == UInt8(ascii: "$") || c == UInt8(ascii: "@")) && (Self.isDigit(peek(1)) || peek(1) == UInt8(ascii: "#")) {
      position += 2
      if bytes[position - 1] != UInt8(ascii: "#") { while Self.isDigit(peek()) { position += 1 } }
      return token(.argument)
    }
    if c == UInt8(ascii: "$") {
      position += 1
      if peek() == UInt8(ascii: "$") { position += 1 }
      guard Self.isIdentifierStart(peek()) else { return token(.invalid) }
      while Self.isIdentifierByte(peek()) { position += 1 }
      return token(.variable)
    }
    if c == UInt8(ascii: "@") && Self.isIdentifierStart(peek(1)) {
      position += 1
      while Self.isIdentifierByte(peek()) { position += 1 }
      return token(.atName)
    }
    if c >= 0x30 && c <= 0x39 {
      while Self.isIdentifierByte(peek()) { position += 1 }
      return token(.integer)
    }
    if c == UInt8(ascii: "\"") {
      position += 1
      while position < bytes.count && bytes[position] != UInt8(ascii: "\"") && bytes[position] != 0x0A {
        if bytes[position] == UInt8(ascii: "\\") { position += 1 }
        position += 1
      }
      guard position < bytes.count && bytes[position] == UInt8(ascii: "\"") else {
        position = min(position, bytes.count)
        return token(.unterminatedString)
      }
      position += 1
      return token(.string)
    }
    if c == UInt8(ascii: "%") && peek(1) == UInt8(ascii: "{") {
      while position < bytes.count && !(bytes[position] == UInt8(ascii: "%") && peek(1) == UInt8(ascii: "}")) {
        position += 1
      }
      position = min(position + 2, bytes.count)
      return token(.embeddedC)
    }
    for p in Self.puncts where bytes[position...].starts(with: p) {
      position += p.count
      return token(.punct(String(decoding: p, as: UTF8.self)))
    }
    position += 1
    // A UTF-8 sequence is one invalid token, not one per byte.
    while position < bytes.count && bytes[position] & 0xC0 == 0x80 { position += 1 }
    return token(.invalid)
  }

  /// The value of an integer token (decimal, `0x` hex, leading-zero octal), or nil if malformed.
  static func integerValue(_ text: String) -> UInt64? {
    if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
    if text.count > 1 && text.hasPrefix("0") { return UInt64(text.dropFirst(), radix: 8) }
    return UInt64(text)
  }

  /// A string token's bytes with C escapes decoded.
  static func stringValue(_ raw: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    var i = raw.startIndex + 1
    let end = raw.endIndex - 1
    while i < end {
      let c = raw[i]
      i += 1
      guard c == UInt8(ascii: "\\"), i < end else {
        out.append(c)
        continue
      }
      let e = raw[i]
      i += 1
      switch e {
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "0")...UInt8(ascii: "7"):
        var value = Int(e - 0x30)
        var digits = 1
        while digits < 3, i < end, raw[i] >= 0x30 && raw[i] <= 0x37 {
          value = value * 8 + Int(raw[i] - 0x30)
          i += 1
          digits += 1
        }
        out.append(UInt8(truncatingIfNeeded: value))
      default: out.append(e)
      }
    }
    return out
  }
}
