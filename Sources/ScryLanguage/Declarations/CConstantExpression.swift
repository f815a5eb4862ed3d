/// Integer constant expressions, for `#define` values, `#if`, enumerator values, array sizes and
/// bitfield widths: 64-bit arithmetic with C's signed/unsigned rules (an unsigned operand makes
/// the operation unsigned), casts to integer types and `sizeof`/`_Alignof` of a type.
extension CDeclarationParser {
  struct Value {
    var value: Int64
    var isUnsigned: Bool
  }

  /// The value of a whole token list; `isPreprocessor`: names left after expansion are 0, as in `#if`.
  mutating func evaluate(_ expression: [CToken], isPreprocessor: Bool) throws(Failure) -> Int64 {
    let saved = (tokens, index, isPreprocessorExpression)
    defer { (tokens, index, isPreprocessorExpression) = saved }
    tokens = expression
    index = 0
    isPreprocessorExpression = isPreprocessor
    guard !tokens.isEmpty else { throw failure("expected an expression") }
    let value = try conditional(live: true)
    guard token.kind == .end else { throw failure("unexpected '\(token.text)' in a constant expression") }
    return value.value
  }

  /// A constant expression inside a declaration (`[N * 2]`, `: 3`, `= 1 << 4`).
  mutating func constantExpression() throws(Failure) -> Int64 {
    try conditional(live: true).value
  }

  /// `live` is false in the arm a `?:`, `&&` or `||` does not take: no division-by-zero error there.
  private mutating func conditional(live: Bool) throws(Failure) -> Value {
    try enter()
    defer { nesting -= 1 }
    let condition = try binary(minimumPrecedence: 1, live: live)
    guard token.isPunctuation("?") else { return condition }
    advance()
    let taken = condition.value != 0
    let a = try conditional(live: live && taken)
    try expect(":", "in a conditional expression")
    let b = try conditional(live: live && !taken)
    return Value(value: taken ? a.value : b.value, isUnsigned: a.isUnsigned || b.isUnsigned)
  }

  mutating func enter() throws(Failure) {
    nesting += 1
    guard nesting < Self.maximumNesting else { throw failure("expression or declaration nested too deeply") }
  }

  private static let precedence: [String: Int] = [
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8,
    "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
  ]

  private mutating func binary(minimumPrecedence: Int, live: Bool) throws(Failure) -> Value {
    var left = try unary(live: live)
    while token.kind == .punctuation, let p = Self.precedence[token.text], p >= minimumPrecedence {
      let op = token
      advance()
      let rightLive = live && !(op.text == "&&" && left.value == 0) && !(op.text == "||" && left.value != 0)
      try enter()
      let right = try binary(minimumPrecedence: p + 1, live: rightLive)
      nesting -= 1
      left = try apply(op, left, right, live: live && rightLive)
    }
    return left
  }

  private func apply(_ op: CToken, _ l: Value, _ r: Value, live: Bool) throws(Failure) -> Value {
    let u = l.isUnsigned || r.isUnsigned
    let (a, b) = (l.value, r.value)
    let (ua, ub) = (UInt64(bitPattern: a), UInt64(bitPattern: b))
    func truth(_ x: Bool) -> Value { Value(value: x ? 1 : 0, isUnsigned: false) }
    switch op.text {
    case "||": return truth(a != 0 || b != 0)
    case "&&": return truth(a != 0 && b != 0)
    case "|": return Value(value: a | b, isUnsigned: u)
    case "^": return Value(value: a ^ b, isUnsigned: u)
    case "&": return Value(value: a & b, isUnsigned: u)
    case "==": return truth(a == b)
    case "!=": return truth(a != b)
    case "<": return truth(u ? ua < ub : a < b)
    case ">": return truth(u ? ua > ub : a > b)
    case "<=": return truth(u ? ua <= ub : a <= b)
    case ">=": return truth(u ? ua >= ub : a >= b)
    case "<<": return Value(value: b < 0 || b >= 64 ? 0 : a << b, isUnsigned: l.isUnsigned)
    case ">>":
      if b < 0 || b >= 64 { return Value(value: l.isUnsigned || a >= 0 ? 0 : -1, isUnsigned: l.isUnsigned) }
      return Value(value: l.isUnsigned ? Int64(bitPattern: ua >> ub) : a >> b, isUnsigned: l.isUnsigned)
    case "+": return Value(value: a &+ b, isUnsigned: u)
    case "-": return Value(value: a &- b, isUnsigned: u)
    case "*": return Value(value: a &* b, isUnsigned: u)
    default:
      guard b != 0 else {
        if live { throw failure("division by zero in a constant expression", at: op) }
        return Value(value: 0, isUnsigned: u)
      }
      let isDivision = op.text == "/"
      if u { return Value(value: Int64(bitPattern: isDivision ? ua / ub : ua % ub), isUnsigned: true) }
      let result = isDivision ? a.dividedReportingOverflow(by: b) : a.remainderReportingOverflow(dividingBy: b)
      return Value(value: result.partialValue, isUnsigned: false)
    }
  }

  private mutating func unary(live: Bool) throws(Failure) -> Value {
    try enter()
    defer { nesting -= 1 }
    let t = token
    switch t.kind {
    case .number:
      advance()
      guard let value = Self.integerLiteral(t) else { throw failure("'\(t.text)' is not an integer constant", at: t) }
      return value
    case .character:
      advance()
      guard let value = Self.characterLiteral(t.text) else { throw failure("invalid character constant \(t.text)", at: t) }
      return Value(value: value, isUnsigned: false)
    case .identifier:
      if t.text == "sizeof" || t.text == "_Alignof" || t.text == "__alignof__" || t.text == "alignof" {
        advance()
        try expect("(", "after '\(t.text)'")
        let type = try typeName()
        try expect(")", "after the type name")
        guard type.isComplete else { throw failure("invalid application of '\(t.text)' to an incomplete type '\(type.spelling)'", at: t) }
        return Value(value: Int64(t.text == "sizeof" ? type.size : type.align), isUnsigned: true)
      }
      advance()
      if isPreprocessorExpression { return Value(value: 0, isUnsigned: false) }
      guard let value = declarations.constants[t.text] else {
        throw failure("use of undeclared identifier '\(t.text)'", at: t, hint: "a constant expression may use numbers, earlier #defines and enumerators")
      }
      return Value(value: value, isUnsigned: false)
    case .punctuation:
      advance()
      switch t.text {
      case "(":
        if !isPreprocessorExpression && startsTypeName() {
          let type = try typeName()
          try expect(")", "after the type in a cast")
          return Self.cast(try unary(live: live), to: type)
        }
        let value = try conditional(live: live)
        try expect(")", "to close the parenthesis")
        return value
      case "-": let v = try unary(live: live); return Value(value: 0 &- v.value, isUnsigned: v.isUnsigned)
      case "+": return try unary(live: live)
      case "~": let v = try unary(live: live); return Value(value: ~v.value, isUnsigned: v.isUnsigned)
      case "!": return Value(value: try unary(live: live).value == 0 ? 1 : 0, isUnsigned: false)
      default: break
      }
    default: break
    }
    throw failure(t.kind == .end ? "expected an expression" : "unexpected '\(t.text)' in a constant expression", at: t)
  }

  /// `(u32)x` keeps the low bits and takes the type's signedness; other types leave the value.
  private static func cast(_ value: Value, to type: CType) -> Value {
    if case .pointer = type.type { return Value(value: value.value, isUnsigned: true) }
    guard case .integer(let integer) = type.type, integer.bits < 64 else {
      if case .integer(let integer) = type.type { return Value(value: value.value, isUnsigned: !integer.isSigned) }
      return value
    }
    let shift = Int64(64 - integer.bits)
    let v = integer.isSigned ? (value.value << shift) >> shift : Int64(bitPattern: (UInt64(bitPattern: value.value) << UInt64(shift)) >> UInt64(shift))
    return Value(value: v, isUnsigned: !integer.isSigned)
  }

  /// `42`, `0x2a`, `052`, `0b101`, with `u`/`l` suffixes; nil for floating constants and junk.
  static func integerLiteral(_ t: CToken) -> Value? {
    var digits = Substring(t.text.lowercased())
    var isUnsigned = false
    while let last = digits.last, last == "u" || last == "l" {
      if last == "u" { isUnsigned = true }
      digits = digits.dropLast()
    }
    var radix = 10
    if digits.hasPrefix("0x") {
      radix = 16
      digits = digits.dropFirst(2)
    } else if digits.hasPrefix("0b") {
      radix = 2
      digits = digits.dropFirst(2)
    } else if digits.count > 1 && digits.hasPrefix("0") {
      radix = 8
      digits = digits.dropFirst()
    }
    guard let value = UInt64(digits, radix: radix) else { return nil }
    // A literal too big for long is unsigned (C's rule for hex and octal; GCC's for decimal too).
    return Value(value: Int64(bitPattern: value), isUnsigned: isUnsigned || value > UInt64(Int64.max))
  }

  /// `'a'`, `'\n'`, `'\0'`, `'\x41'`, `'\101'`.
  static func characterLiteral(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 3, bytes.first == UInt8(ascii: "'"), bytes.last == UInt8(ascii: "'") else { return nil }
    let body = Array(bytes[1..<(bytes.count - 1)])
    guard body.first == UInt8(ascii: "\\") else { return body.count == 1 ? Int64(Int8(bitPattern: body[0])) : nil }
    let rest = body.dropFirst()
    guard let escape = rest.first else { return nil }
    let simple: [UInt8: Int64] = [
      UInt8(ascii: "n"): 10, UInt8(ascii: "t"): 9, UInt8(ascii: "r"): 13, UInt8(ascii: "a"): 7, UInt8(ascii: "b"): 8,
      UInt8(ascii: "f"): 12, UInt8(ascii: "v"): 11, UInt8(ascii: "\\"): 92, UInt8(ascii: "'"): 39, UInt8(ascii: "\""): 34,
      UInt8(ascii: "?"): 63,
    ]
    if rest.count == 1, let value = simple[escape] { return value }
    let digits = String(decoding: escape == UInt8(ascii: "x") ? rest.dropFirst() : rest, as: UTF8.self)
    guard let value = UInt8(digits, radix: escape == UInt8(ascii: "x") ? 16 : 8) else { return nil }
    return Int64(Int8(bitPattern: value))
  }
}
