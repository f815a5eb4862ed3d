/// What one REPL entry is, and whether the user has finished typing it.
/// A lexical scan only (strings, comments, brackets, the `<` block): the parser judges the rest.
enum InputScanner {
  enum Kind: Equatable {
    case empty
    /// `.help`, `.save FILE`…
    case command
    /// Probe blocks: `BEGIN { … }`, `tracepoint:sched:sched_switch < … >`.
    case program
    /// A statement or expression run at once: `print(@m)`, `@m`, `1 + 2`.
    case statement
    /// SystemTap's `probe P { … }`, `global x`, `function f(…) { … }`.
    case systemTap
  }

  static func kind(of text: String) -> Kind {
    let bytes = Array(text.utf8)
    var i = skipSpaceAndComments(bytes, from: 0)
    guard i < bytes.count else { return .empty }
    if bytes[i] == UInt8(ascii: ".") { return .command }
    if bytes[i] == UInt8(ascii: "#") { return .program }
    let start = i
    while i < bytes.count, isWordByte(bytes[i]) { i += 1 }
    guard i > start else { return .statement }
    let word = String(decoding: bytes[start..<i], as: UTF8.self)
    if isBareCommand(word, rest: bytes[i...]) { return .command }
    if ["probe", "global", "function"].contains(word) {
      // Followed by a name, the word is SystemTap's keyword (as ScriptLanguage.detect reads it).
      let next = skipSpaceAndComments(bytes, from: i)
      if next > i, next < bytes.count, isWordByte(bytes[next]) || bytes[next] == UInt8(ascii: "*") { return .systemTap }
    }
    if word == "BEGIN" || word == "END" || ["struct", "union", "enum", "typedef"].contains(word) { return .program }
    // A probe spec is a provider name followed at once by ':'.
    if i < bytes.count, bytes[i] == UInt8(ascii: ":") { return .program }
    return .statement
  }

  /// `help`, `help NAME` and `quit` typed without their dot: nothing else a statement could be.
  private static func isBareCommand(_ word: String, rest: ArraySlice<UInt8>) -> Bool {
    let words = String(decoding: rest, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
    switch word {
    case "help": return words.count <= 1 && words.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" } }
    case "quit": return words.isEmpty
    default: return false
    }
  }

  /// Whether `text` can be submitted: nothing left open. `lastLineEmpty` (the user pressed Enter on
  /// an empty continuation line) submits a probe header still waiting for its block.
  static func isComplete(_ text: String, kind: Kind, lastLineEmpty: Bool = false) -> Bool {
    if kind == .systemTap {
      // Balanced, and a probe or function has its body (a global needs none).
      let isGlobal = text.drop { $0 == " " || $0 == "\t" || $0 == "\n" }.hasPrefix("global")
      return isComplete(text, kind: .statement) && (isGlobal || text.contains("{") || lastLineEmpty)
    }
    let b = Array(text.utf8)
    var depth = 0
    var i = 0
    var inAngle = false
    var inPredicate = false
    var headerPending = false
    var inWord = false
    while i < b.count {
      let c = b[i]
      if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "/") {
        while i < b.count, b[i] != 0x0A { i += 1 }
        continue
      }
      if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") {
        guard let end = find(b, "*/", from: i + 2) else { return false }
        i = end + 2
        continue
      }
      if c == UInt8(ascii: "\"") {
        i += 1
        // A string ends at its quote or, unterminated, at the end of its line (the parser reports it).
        while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != 0x0A {
          if b[i] == UInt8(ascii: "\\") { i += 1 }
          i += 1
        }
        i += 1
        continue
      }
      let topLevel = depth == 0 && kind == .program && !inAngle
      switch c {
      case UInt8(ascii: "{"), UInt8(ascii: "("), UInt8(ascii: "["):
        if topLevel && c == UInt8(ascii: "{") && !inPredicate { headerPending = false }
        depth += 1
      case UInt8(ascii: "}"), UInt8(ascii: ")"), UInt8(ascii: "]"):
        depth -= 1
      case UInt8(ascii: "<") where topLevel && !inPredicate:
        inAngle = true
        headerPending = false
      case UInt8(ascii: ">") where depth == 0 && inAngle:
        inAngle = false
      case UInt8(ascii: "/") where topLevel && (inPredicate || !inWord):
        inPredicate.toggle()
      default:
        if topLevel && !inPredicate && !isSpace(c) { headerPending = true }
      }
      inWord = !isSpace(c) && c != UInt8(ascii: "}") && c != UInt8(ascii: ">")
      i += 1
    }
    if depth > 0 || inAngle { return false }
    if kind == .program && (headerPending || inPredicate) && !lastLineEmpty { return false }
    return true
  }

  static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

  static func isWordByte(_ c: UInt8) -> Bool {
    (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
      || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_")
  }

  private static func skipSpaceAndComments(_ b: [UInt8], from start: Int) -> Int {
    var i = start
    while i < b.count {
      if isSpace(b[i]) {
        i += 1
      } else if b[i] == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "/") {
        while i < b.count, b[i] != 0x0A { i += 1 }
      } else if b[i] == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") {
        i = (find(b, "*/", from: i + 2) ?? b.count - 2) + 2
      } else {
        break
      }
    }
    return i
  }

  private static func find(_ b: [UInt8], _ needle: StaticString, from start: Int) -> Int? {
    let n = needle.utf8CodeUnitCount
    let p = needle.utf8Start
    var i = start
    while i + n <= b.count {
      var match = true
      for k in 0..<n where b[i + k] != p[k] {
        match = false
        break
      }
      if match { return i }
      i += 1
    }
    return nil
  }
}
