/// One token of C as the declaration parser sees it, with where it came from: the script
/// (`file == 0`, so errors point into it) or a header (errors name the header and line).
struct CToken: Sendable {
  enum Kind: Sendable, Equatable {
    case identifier, number, character, string, punctuation, end
  }

  var kind: Kind
  var text: String
  /// Index into `CDeclarationParser.files`; 0 is the script.
  var file: Int
  var span: SourceSpan
  /// First token on its line: a `#` here starts a preprocessor directive.
  var startsLine: Bool

  func isPunctuation(_ p: String) -> Bool { kind == .punctuation && text == p }
  func isIdentifier(_ name: String) -> Bool { kind == .identifier && text == name }
}

/// Splits C text into tokens. Comments and backslash-newlines are whitespace; the lexer never
/// fails (an unknown byte is a one-byte punctuation token the parser rejects in context).
struct CTokenizer {
  private let bytes: [UInt8]
  private let file: Int

  init(bytes: [UInt8], file: Int) {
    self.bytes = bytes
    self.file = file
  }

  /// The tokens of `bytes[range]` (a whole header, or one declaration span of the script).
  func tokens(in range: Range<Int>) -> [CToken] {
    var result: [CToken] = []
    var i = max(0, range.lowerBound)
    let end = min(bytes.count, range.upperBound)
    var atLineStart = true
    func byte(_ j: Int) -> UInt8 { j < end ? bytes[j] : 0 }
    while i < end {
      let c = bytes[i]
      if c == UInt8(ascii: "\n") {
        atLineStart = true
        i += 1
        continue
      }
      if c == UInt8(ascii: "\\") && (byte(i + 1) == UInt8(ascii: "\n") || (byte(i + 1) == 0x0D && byte(i + 2) == 0x0A)) {
        i += byte(i + 1) == 0x0D ? 3 : 2
        continue
      }
      if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0C || c == 0x0B {
        i += 1
        continue
      }
      if c == UInt8(ascii: "/") && byte(i + 1) == UInt8(ascii: "/") {
        // A line comment ends at the newline, unless a backslash continues it.
        while i < end && bytes[i] != UInt8(ascii: "\n") {
          i += bytes[i] == UInt8(ascii: "\\") && byte(i + 1) == UInt8(ascii: "\n") ? 2 : 1
        }
        continue
      }
      if c == UInt8(ascii: "/") && byte(i + 1) == UInt8(ascii: "*") {
        i += 2
        while i < end && !(bytes[i] == UInt8(ascii: "*") && byte(i + 1) == UInt8(ascii: "/")) { i += 1 }
        i = min(end, i + 2)
        continue
      }
      let start = i
      let kind: CToken.Kind
      if isIdentifierStart(c) {
        while i < end && (isIdentifierStart(bytes[i]) || isDigit(bytes[i])) { i += 1 }
        kind = .identifier
      } else if isDigit(c) || (c == UInt8(ascii: ".") && isDigit(byte(i + 1))) {
        // A pp-number: digits, letters, dots, and signs after an exponent letter.
        i += 1
        while i < end {
          let b = bytes[i]
          if isIdentifierStart(b) || isDigit(b) || b == UInt8(ascii: ".") {
            i += 1
          } else if (b == UInt8(ascii: "+") || b == UInt8(ascii: "-"))
            && [UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "p"), UInt8(ascii: "P")].contains(bytes[i - 1])
          {
            i += 1
          } else {
            break
          }
        }
        kind = .number
      } else if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
        i += 1
        while i < end && bytes[i] != c && bytes[i] != UInt8(ascii: "\n") {
          i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
        }
        i = min(end, i + 1)
        kind = c == UInt8(ascii: "'") ? .character : .string
      } else {
        i += punctuationLength(at: i, end: end)
        kind = .punctuation
      }
      result.append(
        CToken(
          kind: kind, text: String(decoding: bytes[start..<i], as: UTF8.self), file: file,
          span: SourceSpan(start: start, end: i), startsLine: atLineStart))
      atLineStart = false
    }
    return result
  }

  private static let punctuators: [[UInt8]] = [
    "...", "<<=", ">>=", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "##", "+=", "-=", "*=",
    "/=", "%=", "&=", "|=", "^=",
  ].map { Array($0.utf8) }

  private func punctuationLength(at i: Int, end: Int) -> Int {
    for p in Self.punctuators where i + p.count <= end && Array(bytes[i..<(i + p.count)]) == p { return p.count }
    return 1
  }

  private func isIdentifierStart(_ c: UInt8) -> Bool {
    (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
      || c == UInt8(ascii: "_") || c == UInt8(ascii: "$")
  }

  private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
