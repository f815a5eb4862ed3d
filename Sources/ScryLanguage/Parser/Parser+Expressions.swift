/// Expressions by precedence climbing, primaries, casts, calls, `sizeof` and `offsetof`.
extension Parser {
  // MARK: Expressions

  mutating func parseExpression() -> Expr {
    depth += 1
    height += 1
    defer {
      depth -= 1
      height -= 1
    }
    if depth > Parser.maxDepth || height > Parser.maxHeight {
      return tooDeep()
    }
    return parseTernary()
  }

  /// Past the nesting cap: one located error, then the rest of the statement is skipped, so a
  /// 100000-deep input costs one diagnostic and no more recursion.
  mutating func tooDeep() -> Expr {
    let span = token.span
    reportTooDeep(at: span, "expression nested too deeply")
    skipToExpressionEnd()
    return missing(at: span)
  }

  /// Skips the rest of the current expression or statement: up to (not consuming) the `,` or `;` that
  /// ends it or the unmatched `)`, `]` or `}` around it, so each enclosing level finds its own closer.
  mutating func skipToExpressionEnd() {
    var balance = 0
    while token.kind != .endOfFile && !(balance == 0 && atTerminator) {
      if balance == 0 && (isPunct(.semicolon) || isPunct(.comma) || isPunct(.rparen) || isPunct(.rbracket) || isPunct(.rbrace)) {
        return
      }
      if isPunct(.lparen) || isPunct(.lbracket) || isPunct(.lbrace) { balance += 1 }
      if isPunct(.rparen) || isPunct(.rbracket) || isPunct(.rbrace) { balance -= 1 }
      advance()
    }
  }

  mutating func parseTernary() -> Expr {
    let condition = parseBinary(precedence: 0)
    guard isPunct(.question) else { return condition }
    advance()
    let whenTrue = nested { $0.parseExpression() }
    expect(.colon, "in the conditional expression 'a ? b : c'")
    // `a ? b : c ? d : …` recurses once per arm.
    depth += 1
    defer { depth -= 1 }
    if depth > Parser.maxDepth { return tooDeep() }
    let whenFalse = parseTernary()
    return expr(.ternary(condition, whenTrue, whenFalse), condition.span.merged(with: whenFalse.span))
  }

  static let precedence: [Punct: (Int, BinaryOperator)] = [
    .orOr: (0, .logicalOr), .andAnd: (1, .logicalAnd), .pipe: (2, .bitOr), .caret: (3, .bitXor), .amp: (4, .bitAnd),
    .equalEqual: (5, .equal), .notEqual: (5, .notEqual),
    .less: (6, .less), .lessEqual: (6, .lessEqual), .greater: (6, .greater), .greaterEqual: (6, .greaterEqual),
    .shiftLeft: (7, .shiftLeft), .shiftRight: (7, .shiftRight),
    .plus: (8, .add), .minus: (8, .subtract), .star: (9, .multiply), .slash: (9, .divide), .percent: (9, .modulo),
  ]

  mutating func parseBinary(precedence minimum: Int) -> Expr {
    var left = parseUnary()
    var chain = 0
    defer { height -= chain }
    while case .punct(let p) = token.kind, let (level, op) = Parser.precedence[p], level >= minimum, !atTerminator {
      chain += 1
      height += 1
      if height > Parser.maxHeight {
        reportTooDeep(at: token.span, "expression too long: more than \(Parser.maxHeight) operators and nested levels")
        skipToExpressionEnd()
        return left
      }
      advance()
      let right = parseBinary(precedence: level + 1)
      left = expr(.binary(op, left, right), left.span.merged(with: right.span))
    }
    return left
  }

  mutating func parseUnary() -> Expr {
    depth += 1
    defer { depth -= 1 }
    if depth > Parser.maxDepth {
      return tooDeep()
    }
    let start = token.span
    let op: UnaryOperator?
    switch token.kind {
    case .punct(.bang): op = .not
    case .punct(.tilde): op = .bitNot
    case .punct(.minus): op = .negate
    case .punct(.star): op = .deref
    case .punct(.amp): op = .addressOf
    case .punct(.increment), .punct(.decrement):
      let isIncrement = isPunct(.increment)
      advance()
      let operand = parseUnary()
      return expr(.update(operand, isIncrement: isIncrement, isPrefix: true), start.merged(with: operand.span))
    default: op = nil
    }
    if let op {
      advance()
      let operand = parseUnary()
      return expr(.unary(op, operand), start.merged(with: operand.span))
    }
    let first = token.span
    return parsePostfix(parsePrimary(), from: first)
  }

  /// `from`: where the primary's text starts. A parenthesized primary's node spans its inside
  /// only; a field, index or update of it starts at the `(`, as bpftrace places it
  /// (`((struct foo *)0)->a` is 21 columns, where a failed read's warning points).
  mutating func parsePostfix(_ base: Expr, from first: SourceSpan? = nil) -> Expr {
    var value = base
    let start = first.map { $0.start < base.span.start ? $0 : base.span } ?? base.span
    while true {
      if isPunct(.dot) || isPunct(.arrow) {
        let isArrow = isPunct(.arrow)
        let dot = token.span
        advance()
        if case .integer = value.kind, !isArrow, token.kind == .integer, value.span.end == dot.start,
          dot.end == token.span.start
        {
          let number = value.span.merged(with: token.span)
          error(at: number, "'\(source.text(of: number))' is not an integer: there are no floating-point numbers",
                hint: "write an integer, such as '1e3' for 1000")
          advance()
          return value
        }
        if token.kind == .integer, !isArrow, let index = parseIntegerLiteral(text(token)) {
          let end = token.span
          advance()
          value = expr(.tupleIndex(value, Int(clamping: index)), start.merged(with: end))
        } else if token.kind == .identifier {
          let name = text(token)
          let end = token.span
          advance()
          value = expr(.field(value, name: name, isArrow: isArrow), start.merged(with: end))
        } else {
          error(at: token.span, "expected a field name after '\(isArrow ? "->" : ".")', found \(describe(token))")
          return value
        }
      } else if isPunct(.increment) || isPunct(.decrement) {
        let isIncrement = isPunct(.increment)
        let end = token.span
        advance()
        value = expr(.update(value, isIncrement: isIncrement, isPrefix: false), start.merged(with: end))
      } else if isPunct(.lbracket) {
        advance()
        let index = nested { $0.parseExpression() }
        let end = token.span
        expect(.rbracket, "to close the index")
        value = expr(.index(value, index), start.merged(with: end))
      } else {
        return value
      }
    }
  }

  mutating func parseMapKeys() -> ([Expr], SourceSpan) {
    // Caller saw '['.
    advance()
    var keys: [Expr] = []
    nested { parser in
      repeat {
        if parser.isPunct(.rbracket) { break }
        // `@m[k, *]`: a component that matches any value (delete() of every such key).
        if parser.isPunct(.star), parser.nextTokenIs(.punct(.comma)) || parser.nextTokenIs(.punct(.rbracket)) {
          keys.append(parser.expr(.wildcard, parser.token.span))
          parser.advance()
          continue
        }
        keys.append(parser.parseExpression())
      } while parser.accept(.comma)
    }
    let end = token.span
    expect(.rbracket, "to close the map key")
    if keys.isEmpty { error(at: end, "empty map key '[]'", hint: "write the key, or drop the brackets for a map without keys") }
    return (keys, end)
  }

  mutating func parseArguments() -> ([Expr], SourceSpan) {
    let (args, _, end) = parseArgumentsWithStarts()
    return (args, end)
  }

  /// The arguments and where each one's text starts: a macro argument is parsed again from its
  /// text, and an argument's node may start elsewhere (`x + 1` whose `x` is a macro parameter
  /// spans the parameter's own argument).
  mutating func parseArgumentsWithStarts() -> ([Expr], [UInt32], SourceSpan) {
    // Caller saw '('.
    advance()
    var args: [Expr] = []
    var starts: [UInt32] = []
    nested { parser in
      if !parser.isPunct(.rparen) {
        repeat {
          starts.append(parser.token.span.start)
          args.append(parser.parseExpression())
        } while parser.accept(.comma)
      }
    }
    let end = token.span
    expect(.rparen, "to close the argument list")
    return (args, starts, end)
  }

  /// `offsetof(struct X, a.b)`; nil (nothing consumed) when it is not that shape.
  mutating func parseOffsetof(start t: Token) -> Expr? {
    let save = (lexer, token, diagnostics.count)
    advance()
    if token.kind == .identifier, let type = parseTypeName(), accept(.comma), token.kind == .identifier {
      var fields = [text(token)]
      advance()
      while accept(.dot), token.kind == .identifier {
        fields.append(text(token))
        advance()
      }
      if isPunct(.rparen) {
        let end = token.span
        advance()
        return expr(.offsetof(type, fields: fields), t.span.merged(with: end))
      }
    }
    (lexer, token) = (save.0, save.1)
    diagnostics.removeLast(diagnostics.count - save.2)
    return nil
  }

  static let typeWords: Set<String> = [
    "struct", "union", "enum", "unsigned", "signed", "string", "inet", "buffer", "bool", "void",
  ]

  func looksLikeType(_ name: String) -> Bool {
    IntegerType(name: name) != nil || Parser.typeWords.contains(name) || typedefNames.contains(name)
  }

  mutating func parsePrimary() -> Expr {
    let t = token
    switch t.kind {
    case .integer:
      advance()
      switch IntegerLiteral.value(of: text(t)) {
      case .success(let value):
        return expr(.integer(value), t.span)
      case .failure(.coefficient(let coefficient)):
        error(at: t.span, "the part before 'e' in '\(text(t))' must be one digit, not \(coefficient)",
              hint: "write the power of ten with one digit before it, as '1e3' for 1000, or write the number in full")
      case .failure(.exponent(let exponent)):
        error(at: t.span, "the exponent of '\(text(t))' is \(exponent): at most \(IntegerLiteral.maxExponent) fits",
              hint: "write the number in full, or in hex")
      case .failure:
        error(at: t.span, "invalid integer literal '\(text(t))'",
              hint: "integers are decimal, 0x hex, 0o or leading-0 octal, 0b binary, or 1e6 for 1000000, up to 2^64-1; '_' may separate digits")
      }
      return expr(.integer(0), t.span)
    case .string:
      advance()
      return expr(.string(decodeString(t)), t.span)
    case .positional:
      advance()
      return expr(.positional(Int(text(t).dropFirst()) ?? 0), t.span)
    case .positionalCount:
      advance()
      return expr(.positionalCount, t.span)
    case .variable:
      advance()
      return expr(.variable(macroName(text(t), at: t.span)), t.span)
    case .mapName:
      advance()
      let name = macroName(text(t), at: t.span)
      if isPunct(.lbracket) {
        let (keys, end) = parseMapKeys()
        return expr(.map(name: name, keys: keys, isBare: false), t.span.merged(with: end))
      }
      return expr(.map(name: name, keys: [], isBare: false), t.span)
    case .identifier:
      let name = text(t)
      advance()
      if !macroFrames.isEmpty, let argument = macroArgument(name, at: t.span) { return argument }
      if name == "true" || name == "false" { return expr(.boolean(name == "true"), t.span) }
      if name == "if" { return parseIfExpression(start: t) }
      if let definition = macros[name], isPunct(.lparen) || definition.parameters.isEmpty {
        return expandMacro(definition, nameToken: t)
      }
      if name == "sizeof" && isPunct(.lparen) {
        let save = (lexer, token)
        advance()
        if token.kind == .identifier && looksLikeType(text(token)), let type = parseTypeName(), isPunct(.rparen) {
          let end = token.span
          advance()
          return expr(.sizeofType(type), t.span.merged(with: end))
        }
        (lexer, token) = save
      }
      if name == "offsetof" && isPunct(.lparen), let offsetof = parseOffsetof(start: t) { return offsetof }
      if isPunct(.lparen) {
        let (args, end) = parseArguments()
        // bpftrace 0.24+ writes builtins as calls too: `pid()`, `comm()`.
        if args.isEmpty, Function(name: name) == nil, Builtin(name: name) != nil {
          return expr(.identifier(name), t.span.merged(with: end))
        }
        // bpftrace 0.24's clock argument: the monotonic clock is the one `nsecs` reads.
        if name == "nsecs", args.count == 1, case .identifier("monotonic") = args[0].kind {
          return expr(.identifier(name), t.span.merged(with: end))
        }
        return expr(.call(name: name, nameSpan: t.span, args: args), t.span.merged(with: end))
      }
      if isPunct(.lbracket) && Builtin(name: name) == nil {
        let (keys, end) = parseMapKeys()
        return expr(.map(name: name, keys: keys, isBare: true), t.span.merged(with: end))
      }
      return expr(.identifier(name), t.span)
    case .punct(.lbrace):
      return parseBlockExpression()
    case .punct(.lparen):
      advance()
      // A cast: `(uint32)x`, `(struct task_struct *)curtask`.
      if token.kind == .identifier && looksLikeType(text(token)) {
        let save = (lexer, token, diagnostics.count)
        if let type = parseTypeName(), isPunct(.rparen) {
          advance()
          let operand = parseUnary()
          return expr(.cast(type, operand), t.span.merged(with: operand.span))
        }
        (lexer, token) = (save.0, save.1)
        diagnostics.removeLast(diagnostics.count - save.2)
      }
      var elements: [Expr] = []
      nested { parser in
        repeat { elements.append(parser.parseExpression()) } while parser.accept(.comma)
      }
      let end = token.span
      expect(.rparen, "to close '('")
      if elements.count == 1 { return elements[0] }
      return expr(.tuple(elements), t.span.merged(with: end))
    default:
      if reportLexicalError() { return missing(at: t.span) }
      error(at: t.span, "expected an expression, found \(describe(t))")
      if !isPunct(.rbrace) && !isPunct(.semicolon) && token.kind != .endOfFile && !atTerminator { advance() }
      return missing(at: t.span)
    }
  }

  /// The bytes of a string literal with escapes decoded; bad escapes are reported and kept as written.
  mutating func decodeString(_ t: Token) -> [UInt8] {
    let bytes = source.bytes
    var i = Int(t.span.start) + 1
    let end = Int(t.span.end) - 1
    var out: [UInt8] = []
    while i < end {
      let c = bytes[i]
      guard c == UInt8(ascii: "\\"), i + 1 < end else {
        out.append(c)
        i += 1
        continue
      }
      let e = bytes[i + 1]
      i += 2
      switch e {
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "a"): out.append(0x07)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "v"): out.append(0x0B)
      case UInt8(ascii: "e"): out.append(0x1B)
      case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "?"): out.append(e)
      case UInt8(ascii: "x"):
        var value = 0
        var digits = 0
        while i < end, digits < 2, let d = hexValue(bytes[i]) {
          value = value * 16 + d
          i += 1
          digits += 1
        }
        if digits == 0 {
          error(at: SourceSpan(start: i - 2, end: i), "'\\x' needs hex digits", hint: "write e.g. '\\x41'")
        }
        out.append(UInt8(truncatingIfNeeded: value))
      case UInt8(ascii: "0")...UInt8(ascii: "7"):
        var value = Int(e - 0x30)
        var digits = 1
        while i < end, digits < 3, bytes[i] >= 0x30, bytes[i] <= 0x37 {
          value = value * 8 + Int(bytes[i] - 0x30)
          i += 1
          digits += 1
        }
        out.append(UInt8(truncatingIfNeeded: value))
      default:
        error(at: SourceSpan(start: i - 2, end: i), "unknown escape sequence '\\\(Character(Unicode.Scalar(e)))'",
              hint: "known escapes: \\n \\t \\r \\\\ \\\" \\xHH \\NNN")
        out.append(e)
      }
    }
    return out
  }
}
