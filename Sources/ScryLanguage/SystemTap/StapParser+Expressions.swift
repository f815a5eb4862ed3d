extension StapParser {
  static let assignments: Set<String> = ["=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "|=", "^=", ".=", "<<<"]
  /// Binary operators by precedence, loosest first.
  static let levels: [[String]] = [
    ["||"], ["&&"], ["|"], ["^"], ["&"], ["==", "!="], ["<", "<=", ">", ">="], ["<<", ">>"], ["+", "-", "."], ["*", "/", "%"],
  ]

  mutating func parseExpression() -> StapExpr {
    depth += 1
    defer { depth -= 1 }
    guard depth < Self.maxDepth else {
      error(token.span, "the expression nests too deeply")
      skipTo([";", "}"])
      return StapExpr(.missing, token.span)
    }
    let target = parseTernary()
    if case .punct(let p) = token.kind, Self.assignments.contains(p) {
      advance()
      let value = parseExpression()
      return StapExpr(.assign(p, target, value), target.span.merged(with: value.span))
    }
    return target
  }

  mutating func parseTernary() -> StapExpr {
    let condition = parseBinary(0)
    guard accept("?") else { return condition }
    let then = parseExpression()
    expect(":", "in the conditional expression")
    let otherwise = parseTernary()
    return StapExpr(.ternary(condition, then, otherwise), condition.span.merged(with: otherwise.span))
  }

  mutating func parseBinary(_ level: Int) -> StapExpr {
    guard level < Self.levels.count else { return parseUnary() }
    var left = parseBinary(level + 1)
    // `k in arr` binds just above comparison.
    if level == 7 { left = parseMembership(left) }
    while case .punct(let p) = token.kind, Self.levels[level].contains(p) {
      // A long chain builds a deep tree the checker walks recursively: capped as Scry's parser caps it.
      operators += 1
      if operators > Self.maxOperators {
        error(token.span, "the expression is too long", hint: "split it into several statements")
        skipTo([";", "}"])
        return left
      }
      advance()
      var right = parseBinary(level + 1)
      if level == 7 { right = parseMembership(right) }
      left = StapExpr(.binary(p, left, right), left.span.merged(with: right.span))
    }
    return left
  }

  mutating func parseMembership(_ key: StapExpr) -> StapExpr {
    guard isKeyword("in") else { return key }
    advance()
    let arrayToken = token
    guard token.kind == .identifier else {
      error(token.span, "expected an array's name after 'in', found \(describe(token))")
      return StapExpr(.missing, token.span)
    }
    advance()
    var keys = [key]
    if case .index("", _, let list) = key.kind { keys = list }
    return StapExpr(.membership(keys, text(arrayToken), arraySpan: arrayToken.span), key.span.merged(with: arrayToken.span))
  }

  mutating func parseUnary() -> StapExpr {
    let start = token.span
    if case .punct(let p) = token.kind {
      switch p {
      case "!", "~", "-", "+":
        advance()
        let operand = parseUnary()
        return p == "+" ? operand : StapExpr(.unary(p, operand), start.merged(with: operand.span))
      case "++", "--":
        advance()
        let operand = parseUnary()
        return StapExpr(.update(operand, isIncrement: p == "++", isPrefix: true), start.merged(with: operand.span))
      default: break
      }
    }
    var operand = parsePrimary()
    while true {
      if isPunct("++") || isPunct("--") {
        operand = StapExpr(.update(operand, isIncrement: isPunct("++"), isPrefix: false), operand.span.merged(with: token.span))
        advance()
      } else if isPunct("->") {
        advance()
        guard token.kind == .identifier else {
          error(token.span, "expected a field name after '->', found \(describe(token))")
          return operand
        }
        operand = StapExpr(.field(operand, text(token)), operand.span.merged(with: token.span))
        advance()
      } else {
        return operand
      }
    }
  }

  mutating func parseArguments(_ closing: String) -> [StapExpr] {
    var arguments: [StapExpr] = []
    if accept(closing) { return arguments }
    repeat { arguments.append(parseExpression()) } while accept(",")
    expect(closing, "after the arguments")
    return arguments
  }

  mutating func parsePrimary() -> StapExpr {
    let t = token
    switch t.kind {
    case .argument:
      advance()
      guard let (text, isString) = argumentText(t) else { return StapExpr(.missing, t.span) }
      if isString { return StapExpr(.string(Array(text.utf8)), t.span) }
      guard let value = StapLexer.integerValue(text) ?? Int64(text).map({ UInt64(bitPattern: $0) }) else {
        error(t.span, "'\(self.text(t))' is '\(text)', not a number", hint: "use '@\(self.text(t).dropFirst())' for the argument as a string")
        return StapExpr(.missing, t.span)
      }
      return StapExpr(.integer(value), t.span)
    case .integer:
      advance()
      guard let value = StapLexer.integerValue(text(t)) else {
        error(t.span, "'\(text(t))' is not a number")
        return StapExpr(.missing, t.span)
      }
      return StapExpr(.integer(value), t.span)
    case .string:
      advance()
      var bytes = StapLexer.stringValue(source.bytes[Int(t.span.start)..<Int(t.span.end)])
      var span = t.span
      // Adjacent literals join, as in C.
      while token.kind == .string {
        bytes += StapLexer.stringValue(source.bytes[Int(token.span.start)..<Int(token.span.end)])
        span = span.merged(with: token.span)
        advance()
      }
      return StapExpr(.string(bytes), span)
    case .variable:
      advance()
      return StapExpr(.target(String(text(t).dropFirst())), t.span)
    case .atName:
      advance()
      let name = String(text(t).dropFirst())
      guard accept("(") else {
        error(token.span, "expected '(' after '@\(name)', found \(describe(token))")
        return StapExpr(.missing, t.span)
      }
      let arguments = parseArguments(")")
      return StapExpr(.extractor(name, nameSpan: t.span, arguments), t.span.merged(with: previousEnd))
    case .identifier:
      advance()
      let name = text(t)
      if accept("(") {
        let arguments = parseArguments(")")
        return StapExpr(.call(name, nameSpan: t.span, arguments), t.span.merged(with: previousEnd))
      }
      if accept("[") {
        let keys = parseArguments("]")
        return StapExpr(.index(name, nameSpan: t.span, keys), t.span.merged(with: previousEnd))
      }
      return StapExpr(.name(name), t.span)
    case .punct("("):
      advance()
      let inner = parseExpression()
      expect(")", "to close the parenthesis")
      return inner
    case .punct("["):
      // `[a, b] in arr`: a key list, kept as an index with no array name until `in` claims it.
      advance()
      let keys = parseArguments("]")
      return StapExpr(.index("", nameSpan: t.span, keys), t.span.merged(with: previousEnd))
    case .unterminatedString:
      error(t.span, "unterminated string literal", hint: "close the string with '\"' on the same line")
      advance()
      return StapExpr(.missing, t.span)
    default:
      error(t.span, "expected an expression, found \(describe(t))")
      return StapExpr(.missing, t.span)
    }
  }

  /// The end of the token just consumed.
  var previousEnd: SourceSpan { .at(lastEnd) }
}
