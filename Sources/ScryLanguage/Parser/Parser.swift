/// Hand-written recursive-descent parser for `Grammar/scry.ebnf`.
/// Never throws and never traps: missing pieces become `.missing` nodes plus a diagnostic, and parsing
/// goes on at the next statement or probe, so one run reports every syntax error it can.
public struct Parser {
  public static func parse(_ source: SourceFile) -> (program: Program, diagnostics: [Diagnostic]) {
    var parser = Parser(source: source)
    let probes = parser.parseProgram()
    return (
      Program(
        source: source, probes: probes, nodeCount: Int(parser.nextID), declarations: parser.declarations,
        config: parser.config, mapDeclarations: parser.mapDeclarations, macroExpansions: parser.macroExpansions),
      parser.diagnostics
    )
  }

  let source: SourceFile
  var lexer: Lexer
  var token: Token
  var diagnostics: [Diagnostic] = []
  /// Spans of the script's C: preprocessor lines and type definitions, in order.
  var declarations: [SourceSpan] = []
  /// Names the script's typedefs declare.
  var typedefNames: Set<String> = []
  var nextID: UInt32 = 0
  /// Inside `/predicate/` a `/` at nesting depth 0 ends the predicate; inside `< … >` a `>` ends the block.
  var terminator: Punct?
  /// Parentheses, brackets and braces open since the terminator was set: inside them it is an operator again.
  var nesting = 0
  /// Recursion guard: deeply nested input gets a diagnostic instead of a stack overflow.
  /// A parenthesis costs two levels (expression and operand), so 512 allows 250 nested parentheses.
  var depth = 0
  static let maxDepth = 512
  /// The height of the expression tree being built: one per expression entered and one per operator
  /// of a chain (`1 + 1 + …` loops here but builds a left-deep tree, which the checker and the runtime
  /// walk recursively). Capped so that what parses also runs: in a debug build the checker needs about
  /// 10 KiB of stack per level (`scry` runs it on a 256 MiB stack) and the runtime's action compiler,
  /// on the main thread's 8 MiB, overflows at about 1,700 levels.
  var height = 0
  static let maxHeight = 1_200
  var hasReportedNesting = false
  /// The preamble's config entries and map declarations.
  var config: [ConfigEntry] = []
  var mapDeclarations: [MapDeclaration] = []
  /// Macros by name, found before parsing (a macro may be used above its definition).
  var macros: [String: MacroDefinition] = [:]
  /// The macro expansions being parsed, innermost last: their parameters' bindings.
  var macroFrames: [MacroFrame] = []
  var macroExpansions: [MacroExpansion] = []
  var hasReportedMacroLimit = false
  /// Whether the last statement `parseStatementList` read was followed by a `;`: a block
  /// expression's value is its last expression written without one.
  var lastStatementHadSemicolon = false
  /// Blocks (by where they open) whose last statement is an expression without a `;`: an `if`
  /// statement ending a block expression is its value when both branches are such blocks.
  var valueBlockStarts: Set<UInt32> = []

  init(source: SourceFile) {
    self.source = source
    self.lexer = Lexer(bytes: source.bytes)
    self.token = Token(kind: .endOfFile, span: .at(0))
    advance()
  }

  // MARK: Tokens

  mutating func advance() {
    token = lexer.next()
  }

  func text(_ t: Token) -> String { source.text(of: t.span) }

  func isPunct(_ p: Punct) -> Bool { token.kind == .punct(p) }

  mutating func accept(_ p: Punct) -> Bool {
    guard isPunct(p) else { return false }
    advance()
    return true
  }

  @discardableResult
  mutating func expect(_ p: Punct, _ context: String, hint: String? = nil) -> Bool {
    if accept(p) { return true }
    error(at: token.span, "expected '\(p.rawValue)' \(context), found \(describe(token))", hint: hint)
    return false
  }

  func describe(_ t: Token) -> String {
    switch t.kind {
    case .endOfFile: return "end of input"
    case .string: return "a string"
    case .integer: return "number '\(text(t))'"
    case .unterminatedString: return "an unterminated string"
    default: return "'\(text(t))'"
    }
  }

  mutating func error(at span: SourceSpan, _ message: String, hint: String? = nil) {
    // One error per position: recovery can otherwise report the same spot twice.
    if let last = diagnostics.last, last.span.start == span.start { return }
    diagnostics.append(.error(span, message, hint: hint))
  }

  mutating func makeID() -> NodeID {
    defer { nextID += 1 }
    return NodeID(nextID)
  }

  mutating func expr(_ kind: Expr.Kind, _ span: SourceSpan) -> Expr {
    Expr(id: makeID(), span: span, kind: kind)
  }

  mutating func missing(at span: SourceSpan) -> Expr { expr(.missing, span) }

  /// Reports lexical errors the token carries; returns true if the token was one.
  mutating func reportLexicalError() -> Bool {
    switch token.kind {
    case .invalid:
      error(at: token.span, "unexpected character '\(text(token))'")
    case .unterminatedString:
      error(at: token.span, "unterminated string literal", hint: "close the string with '\"'")
    case .unterminatedComment:
      error(at: token.span, "unterminated comment", hint: "close the comment with '*/'")
      advance()
      return true
    default:
      return false
    }
    advance()
    return true
  }

  // MARK: Program

  mutating func parseProgram() -> [ProbeBlock] {
    var probes: [ProbeBlock] = []
    collectMacros()
    while true {
      lexer.position = Int(token.span.start)
      declarations += lexer.skipDirectiveLines()
      advance()
      if token.kind == .endOfFile { break }
      if token.kind == .unterminatedComment {
        _ = reportLexicalError()
        break
      }
      if skipTypeDefinition() { continue }
      if parsePreambleItem() { continue }
      let before = token.span.start
      if let probe = parseProbe() { probes.append(probe) }
      if token.span.start == before && token.kind != .endOfFile { advance() }
    }
    return probes
  }

  /// Passes over a C `struct name { … };` definition at the top level, keeping its span for the
  /// declaration parser (bpftrace hands these to clang).
  mutating func skipTypeDefinition() -> Bool {
    guard token.kind == .identifier, ["struct", "union", "enum", "typedef"].contains(text(token)) else { return false }
    let start = token.span.start
    var end = token.span.end
    let isTypedef = text(token) == "typedef"
    var lastName: String?
    defer {
      declarations.append(SourceSpan(start: start, end: end))
      // The name a typedef declares reads as a type in casts later on: `(foo_t *)arg0`.
      if isTypedef, let lastName { typedefNames.insert(lastName) }
    }
    var depth = 0
    while token.kind != .endOfFile {
      end = token.span.end
      if depth == 0 && token.kind == .identifier { lastName = text(token) }
      if isPunct(.lbrace) { depth += 1 }
      if isPunct(.rbrace) {
        depth -= 1
        if depth <= 0 {
          advance()
          // The definition runs on to its `;`: a typedef's name, `__attribute__((packed))`. Meeting
          // what starts a probe's body or predicate first, the `;` is missing: the definition ends here.
          let saved = (lexer, token)
          var declared: String?
          while token.kind != .endOfFile && ![.lbrace, .less, .slash, .colon].contains(where: isPunct) {
            if declared == nil && token.kind == .identifier && !text(token).hasPrefix("__") { declared = text(token) }
            if isPunct(.semicolon) {
              end = token.span.end
              if let declared { lastName = declared }
              advance()
              return true
            }
            advance()
          }
          (lexer, token) = saved
          return true
        }
      }
      if depth == 0 && isPunct(.semicolon) {
        advance()
        return true
      }
      advance()
    }
    return true
  }

  mutating func parseProbe() -> ProbeBlock? {
    let start = token.span.start
    var specs: [ProbeSpec] = []
    while true {
      lexer.position = Int(token.span.start)
      let (spec, specError) = lexer.scanProbeSpec()
      if let (span, message) = specError {
        error(at: span, message)
        advance()
        recoverToProbeEnd()
        return nil
      }
      guard let spec else {
        advance()
        if !reportLexicalError() {
          error(
            at: token.span, "expected a probe, found \(describe(token))",
            hint: "a program is a list of probes such as 'BEGIN { … }' or 'tracepoint:sched:sched_switch { … }'")
        }
        recoverToProbeEnd()
        return nil
      }
      specs.append(spec)
      advance()
      if accept(.comma) { continue }
      break
    }
    var predicate: Expr?
    if isPunct(.slash) {
      advance()
      predicate = withTerminator(.slash) { $0.parseExpression() }
      expect(.slash, "to close the predicate", hint: "a predicate is written '/condition/'; wrap a division in parentheses")
    }
    let body: Block
    let isAngle: Bool
    if isPunct(.lbrace) {
      body = parseBlock()
      isAngle = false
    } else if isPunct(.less) {
      let open = token.span
      advance()
      let statements = withTerminator(.greater) { $0.parseStatementList(until: .punct(.greater)) }
      let close = token.span
      if !accept(.greater) {
        error(at: open, "unclosed '<' block: expected '>' at its end", hint: "write 'probe < statements >'")
      }
      body = Block(span: open.merged(with: close), statements: statements)
      isAngle = true
    } else {
      error(
        at: token.span, "expected '{' to start the probe's actions, found \(describe(token))",
        hint: "write '\(specs.last!.text) { … }' or '\(specs.last!.text) < … >'")
      recoverToProbeEnd()
      return nil
    }
    return ProbeBlock(
      span: SourceSpan(start: start, end: body.span.end), specs: specs, predicate: predicate, body: body,
      isAngleBlock: isAngle)
  }

  /// After a broken probe header: skip to the end of its block, if it has one.
  mutating func recoverToProbeEnd() {
    while token.kind != .endOfFile && !isPunct(.lbrace) && !isPunct(.rbrace) {
      if token.kind == .identifier && token.span.start > 0 && source.bytes[Int(token.span.start) - 1] == 0x0A {
        return  // a new line starting with a name: probably the next probe
      }
      advance()
    }
    if isPunct(.lbrace) { _ = parseBlock() } else if isPunct(.rbrace) { advance() }
  }

  mutating func withTerminator<T>(_ p: Punct, _ body: (inout Parser) -> T) -> T {
    let (savedTerminator, savedNesting) = (terminator, nesting)
    terminator = p
    nesting = 0
    defer { (terminator, nesting) = (savedTerminator, savedNesting) }
    return body(&self)
  }

  mutating func nested<T>(_ body: (inout Parser) -> T) -> T {
    nesting += 1
    defer { nesting -= 1 }
    return body(&self)
  }

  var atTerminator: Bool {
    guard let terminator, nesting == 0 else { return false }
    return isPunct(terminator)
  }

}

func hexValue(_ c: UInt8) -> Int? {
  switch c {
  case 0x30...0x39: return Int(c - 0x30)
  case 0x61...0x66: return Int(c - 0x61 + 10)
  case 0x41...0x46: return Int(c - 0x41 + 10)
  default: return nil
  }
}

/// Decimal, `0x` hex, `0b` binary, `0o` or leading-`0` octal, with `_` separators and C suffixes
/// (`u`, `l`, `ul`, `ull`) ignored. Nil when malformed or above 2^64-1.
func parseIntegerLiteral(_ text: String) -> UInt64? {
  if case .success(let value) = IntegerLiteral.value(of: text) { return value }
  return nil
}

/// The value of an integer literal, or why it has none.
enum IntegerLiteral {
  enum Failure: Error, Equatable {
    /// Not a number in any base Scry reads.
    case malformed
    /// Above 2^64-1.
    case tooLarge
    /// `10e2`: bpftrace 0.17 takes only one digit before the `e`.
    case coefficient(UInt64)
    /// `1e17`: bpftrace 0.17 refuses exponents above 16.
    case exponent(UInt64)
  }

  /// The largest exponent bpftrace 0.17 accepts in `De N`; `1e17` is "Exponent will overflow integer range".
  static let maxExponent: UInt64 = 16

  /// Decimal, `0x` hex, `0b` binary, `0o` or leading-`0` octal, and bpftrace's scientific form `DeN`
  /// (`1e6` is 1000000: one digit, then a power of ten up to 16), with `_` separators and C suffixes
  /// (`u`, `l`, `ul`, `ull`) ignored.
  static func value(of text: String) -> Result<UInt64, Failure> {
    if let (number, unit) = durationParts(text) {
      guard case .success(let count) = value(of: number) else { return .failure(.malformed) }
      let (nanoseconds, overflow) = count.multipliedReportingOverflow(by: unit)
      return overflow ? .failure(.tooLarge) : .success(nanoseconds)
    }
    var digits = Array(text.utf8.filter { $0 != UInt8(ascii: "_") })
    while let last = digits.last, last == UInt8(ascii: "u") || last == UInt8(ascii: "U") || last == UInt8(ascii: "l")
      || last == UInt8(ascii: "L")
    {
      digits.removeLast()
    }
    guard !digits.isEmpty else { return .failure(.malformed) }
    var radix: UInt64 = 10
    if digits.count > 1 && digits[0] == UInt8(ascii: "0") {
      switch digits[1] {
      case UInt8(ascii: "x"), UInt8(ascii: "X"): radix = 16; digits.removeFirst(2)
      case UInt8(ascii: "b"), UInt8(ascii: "B"): radix = 2; digits.removeFirst(2)
      case UInt8(ascii: "o"), UInt8(ascii: "O"): radix = 8; digits.removeFirst(2)
      default: radix = 8; digits.removeFirst()
      }
    }
    // Scientific: the digits before `e` are read in decimal even with a leading 0 (`07e2` is 700, as in bpftrace).
    if radix != 16, let e = digits.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
      let whole = Array(text.utf8.filter { $0 != UInt8(ascii: "_") }.prefix { $0 != UInt8(ascii: "e") && $0 != UInt8(ascii: "E") })
      guard case .success(let coefficient) = number(whole, radix: 10),
        case .success(let exponent) = number(Array(digits[(e + 1)...]), radix: 10)
      else { return .failure(.malformed) }
      if coefficient > 9 { return .failure(.coefficient(coefficient)) }
      if exponent > maxExponent { return .failure(.exponent(exponent)) }
      var value = coefficient
      for _ in 0..<exponent { value *= 10 }
      return .success(value)
    }
    return number(digits, radix: radix)
  }

  /// bpftrace 0.21+'s duration suffixes, each in nanoseconds: `100ms` is 100000000.
  static let durationUnits: [(suffix: String, nanoseconds: UInt64)] = [
    ("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000),
    ("h", 3_600_000_000_000), ("d", 86_400_000_000_000),
  ]

  /// `100ms` as ("100", 1000000); nil when the literal has no duration suffix. Hex literals have none
  /// (`0x1d` is 29), and the suffix must follow a digit.
  static func durationParts(_ text: String) -> (String, UInt64)? {
    let utf8 = Array(text.utf8)
    guard utf8.count >= 2, !(utf8[0] == UInt8(ascii: "0") && (utf8[1] | 0x20) == UInt8(ascii: "x")) else { return nil }
    for (suffix, nanoseconds) in durationUnits where text.hasSuffix(suffix) {
      let number = String(text.dropLast(suffix.count))
      guard let last = number.utf8.last, isDigit(last) else { continue }
      return (number, nanoseconds)
    }
    return nil
  }

  private static func number(_ digits: [UInt8], radix: UInt64) -> Result<UInt64, Failure> {
    guard !digits.isEmpty else { return .failure(.malformed) }
    var value: UInt64 = 0
    for d in digits {
      guard let v = hexValue(d), UInt64(v) < radix else { return .failure(.malformed) }
      let (m, o1) = value.multipliedReportingOverflow(by: radix)
      let (s, o2) = m.addingReportingOverflow(UInt64(v))
      if o1 || o2 { return .failure(.tooLarge) }
      value = s
    }
    return .success(value)
  }
}

extension Stmt {
  /// Statements that end with an expression need a `;` before the next statement; blocks do not.
  var needsSemicolon: Bool {
    switch kind {
    case .ifElse, .unroll, .whileLoop, .forMap, .forRange, .block: return false
    default: return true
    }
  }
}
