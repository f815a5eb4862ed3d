/// One token: its kind and where it is. Its text is read from the source only when needed.
struct Token: Sendable {
  var kind: TokenKind
  var span: SourceSpan
}

enum TokenKind: Sendable, Equatable {
  case identifier
  /// `$name`
  case variable
  /// `$1`, `$2`…
  case positional
  /// `$#`
  case positionalCount
  /// `@name` or `@`
  case mapName
  case integer
  case string
  /// An operator or punctuation, spelled as in the source (`+=`, `{`, `->`).
  case punct(Punct)
  case endOfFile
  /// A character no token starts with; the parser reports it.
  case invalid
  /// A string without its closing quote.
  case unterminatedString
  /// `/*` without its `*/`.
  case unterminatedComment
}

enum Punct: String, Sendable, CaseIterable {
  case lbrace = "{", rbrace = "}", lparen = "(", rparen = ")", lbracket = "[", rbracket = "]"
  case semicolon = ";", comma = ",", colon = ":", question = "?", dot = ".", dotDot = "..", arrow = "->"
  case assign = "=", plusAssign = "+=", minusAssign = "-=", starAssign = "*=", slashAssign = "/="
  case percentAssign = "%=", ampAssign = "&=", pipeAssign = "|=", caretAssign = "^="
  case shiftLeftAssign = "<<=", shiftRightAssign = ">>="
  case increment = "++", decrement = "--"
  case orOr = "||", andAnd = "&&", pipe = "|", caret = "^", amp = "&"
  case equalEqual = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
  case shiftLeft = "<<", shiftRight = ">>", plus = "+", minus = "-", star = "*", slash = "/", percent = "%"
  case bang = "!", tilde = "~"
}

/// Splits script text into tokens on demand. Comments, whitespace and a leading `#!` line are skipped.
/// Probe specs are not tokens: their syntax (paths, wildcards, `:` separators) differs from
/// expressions, so the parser scans them with `scanProbeSpec` at the start of each probe.
struct Lexer {
  let bytes: [UInt8]
  var position: Int

  init(bytes: [UInt8]) {
    self.bytes = bytes
    self.position = 0
    if bytes.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) { skipLine() }
  }

  private func peek(_ ahead: Int = 0) -> UInt8 {
    let i = position + ahead
    return i < bytes.count ? bytes[i] : 0
  }

  private mutating func skipLine() {
    while position < bytes.count && bytes[position] != UInt8(ascii: "\n") { position += 1 }
  }

  /// Skips whitespace and comments; returns the start of an unterminated `/*` if one swallows the rest.
  mutating func skipTrivia() -> Int? {
    while position < bytes.count {
      let c = bytes[position]
      if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0C || c == 0x0B {
        position += 1
      } else if c == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "/") {
        skipLine()
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

  /// Skips a preprocessor line (`#include <…>`, `#define …`) at the top level: bpftrace hands these
  /// to clang for struct definitions, which Scry takes from tracefs instead.
  mutating func skipDirectiveLines() -> [SourceSpan] {
    var spans: [SourceSpan] = []
    while true {
      if let unterminated = skipTrivia() {
        position = unterminated
        return spans
      }
      guard peek() == UInt8(ascii: "#") else { return spans }
      let start = position
      skipLine()
      // A backslash before the newline continues the directive (a multi-line `#define`).
      while position < bytes.count && endsWithBackslash(from: start) {
        position += 1
        skipLine()
      }
      spans.append(SourceSpan(start: start, end: position))
    }
  }

  /// Whether the line from `start` to `position` ends in `\` (before a CR, if any).
  private func endsWithBackslash(from start: Int) -> Bool {
    var end = position
    if end > start && bytes[end - 1] == 0x0D { end -= 1 }
    return end > start && bytes[end - 1] == UInt8(ascii: "\\")
  }

  mutating func next() -> Token {
    if let start = skipTrivia() {
      return Token(kind: .unterminatedComment, span: SourceSpan(start: start, end: start + 2))
    }
    let start = position
    guard position < bytes.count else { return Token(kind: .endOfFile, span: .at(UInt32(start))) }
    let c = bytes[position]
    func token(_ kind: TokenKind) -> Token { Token(kind: kind, span: SourceSpan(start: start, end: position)) }

    if isIdentifierStart(c) {
      while position < bytes.count && isIdentifierPart(bytes[position]) { position += 1 }
      return token(.identifier)
    }
    if isDigit(c) {
      while position < bytes.count && (isIdentifierPart(bytes[position])) { position += 1 }
      return token(.integer)
    }
    switch c {
    case UInt8(ascii: "$"):
      position += 1
      if peek() == UInt8(ascii: "#") {
        position += 1
        return token(.positionalCount)
      }
      if isDigit(peek()) {
        while isDigit(peek()) { position += 1 }
        return token(.positional)
      }
      if isIdentifierStart(peek()) {
        while position < bytes.count && isIdentifierPart(bytes[position]) { position += 1 }
        return token(.variable)
      }
      return token(.invalid)
    case UInt8(ascii: "@"):
      position += 1
      while position < bytes.count && isIdentifierPart(bytes[position]) { position += 1 }
      return token(.mapName)
    case UInt8(ascii: "\""):
      position += 1
      while position < bytes.count {
        let b = bytes[position]
        if b == UInt8(ascii: "\\") {
          position += 2
          continue
        }
        // A string may span lines, as in bpftrace (`printf("%d<newline>")` from a shell's echo).
        position += 1
        if b == UInt8(ascii: "\"") { return token(.string) }
      }
      position = min(position, bytes.count)
      return token(.unterminatedString)
    default:
      break
    }
    // Longest operator first.
    for length in stride(from: 3, through: 1, by: -1) where position + length <= bytes.count {
      if let punct = Lexer.punctuation[length - 1][Array(bytes[position..<position + length])] {
        position += length
        return token(.punct(punct))
      }
    }
    // One whole UTF-8 character, so the caret sits under it.
    position += 1
    while position < bytes.count && bytes[position] & 0xC0 == 0x80 { position += 1 }
    return token(.invalid)
  }

  private static let punctuation: [[[UInt8]: Punct]] = {
    var tables: [[[UInt8]: Punct]] = [[:], [:], [:]]
    for p in Punct.allCases {
      let utf8 = Array(p.rawValue.utf8)
      tables[utf8.count - 1][utf8] = p
    }
    return tables
  }()

  // MARK: Probe specs

  /// Scans one probe spec at the current position: `provider[:part…]`, parts possibly quoted,
  /// paths and wildcards included. Stops at whitespace, `,`, `{`, `<`, `;` or a `/` that opens a
  /// predicate (a `/` is a path separator only at the start of a part or inside a part that began with one).
  mutating func scanProbeSpec() -> (spec: ProbeSpec?, error: (SourceSpan, String)?) {
    _ = skipTrivia()
    let start = position
    var pieces: [String] = []
    var spans: [SourceSpan] = []
    var current: [UInt8] = []
    var partStart = position
    var partIsPath = false
    func endPart() {
      pieces.append(String(decoding: current, as: UTF8.self))
      spans.append(SourceSpan(start: partStart, end: position))
      current = []
    }
    scan: while position < bytes.count {
      let c = bytes[position]
      switch c {
      case 0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ","), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ";"),
        UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "("), UInt8(ascii: ")"):
        break scan
      case UInt8(ascii: ":"):
        endPart()
        position += 1
        partStart = position
        partIsPath = false
      case UInt8(ascii: "\""):
        let quoteStart = position
        position += 1
        while position < bytes.count && bytes[position] != UInt8(ascii: "\"") {
          // `\"` and `\\` inside the quotes stand for the character itself, as in bpftrace
          // (`usdt:prog:test:"\"probe1\""` names the probe `"probe1"`, quotes included).
          if bytes[position] == UInt8(ascii: "\\"), position + 1 < bytes.count,
            bytes[position + 1] == UInt8(ascii: "\"") || bytes[position + 1] == UInt8(ascii: "\\")
          {
            position += 1
          }
          current.append(bytes[position])
          position += 1
        }
        if position >= bytes.count {
          return (nil, (SourceSpan(start: quoteStart, end: position), "unterminated quote in probe spec"))
        }
        position += 1
      case UInt8(ascii: "/"):
        if current.isEmpty && position > start && bytes[position - 1] == UInt8(ascii: ":") { partIsPath = true }
        // The target of a uprobe or USDT probe is a file: `uprobe:bin/prog:f` names ./bin/prog, as in bpftrace.
        if pieces.count == 1, Lexer.hasFileTarget(pieces[0]) { partIsPath = true }
        guard partIsPath else { break scan }
        current.append(c)
        position += 1
      case UInt8(ascii: "."):
        if current.isEmpty && position > start && bytes[position - 1] == UInt8(ascii: ":") { partIsPath = true }
        current.append(c)
        position += 1
      default:
        if c < 0x20 || c == 0x7F { break scan }
        current.append(c)
        position += 1
      }
    }
    if position == start { return (nil, nil) }
    endPart()
    let provider = pieces.removeFirst()
    spans.removeFirst()
    return (
      ProbeSpec(span: SourceSpan(start: start, end: position), provider: provider, parts: pieces, partSpans: spans),
      nil
    )
  }
}

extension Lexer {
  /// Providers whose first part is a file path (relative paths included).
  static func hasFileTarget(_ provider: String) -> Bool {
    switch ProbeKind(provider: provider) {
    case .uprobe, .uretprobe, .usdt: return true
    default: return false
    }
  }
}

@inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
@inline(__always) func isIdentifierStart(_ c: UInt8) -> Bool {
  (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || c == 0x5F
}
@inline(__always) func isIdentifierPart(_ c: UInt8) -> Bool { isIdentifierStart(c) || isDigit(c) }
