/// Statements and blocks: assignments, control flow, `let`, and the type names they declare.
extension Parser {
  // MARK: Statements

  mutating func parseBlock() -> Block {
    let open = token.span
    guard accept(.lbrace) else {
      error(at: token.span, "expected '{', found \(describe(token))")
      return Block(span: token.span, statements: [])
    }
    let statements = nested { $0.parseStatementList(until: .punct(.rbrace)) }
    // A block that may give a value: ending with an expression, or with an `if` (whose branches
    // may, in turn), without a `;`.
    if let last = statements.last, !lastStatementHadSemicolon {
      switch last.kind {
      case .expression, .ifElse: valueBlockStarts.insert(open.start)
      default: break
      }
    }
    let close = token.span
    if !accept(.rbrace) {
      error(at: open, "unclosed '{': expected '}' before \(describe(token))", hint: "add '}' to close this block")
    }
    return Block(span: open.merged(with: close), statements: statements)
  }

  mutating func parseStatementList(until end: TokenKind) -> [Stmt] {
    var statements: [Stmt] = []
    while token.kind != end && token.kind != .endOfFile {
      if end == .punct(.greater) && atTerminator { break }
      if accept(.semicolon) { continue }
      if reportLexicalError() { continue }
      let before = token.span.start
      if let statement = parseStatement() {
        statements.append(statement)
        lastStatementHadSemicolon = isPunct(.semicolon)
        if statement.needsSemicolon && token.kind != end && token.kind != .endOfFile
          && !(end == .punct(.greater) && atTerminator)
        {
          if !accept(.semicolon) {
            error(at: token.span, "expected ';' after the statement, found \(describe(token))",
                  hint: "separate statements with ';'")
            skipToStatementEnd()
          }
        }
      } else {
        skipToStatementEnd()
      }
      if token.span.start == before && token.kind != .endOfFile && token.kind != end { advance() }
    }
    return statements
  }

  /// Past a nesting cap: reports it once per parse (every deeper level would repeat it), then the
  /// caller skips what is nested, so the enclosing levels still find their closers.
  mutating func reportTooDeep(at span: SourceSpan, _ message: String) {
    if hasReportedNesting { return }
    hasReportedNesting = true
    error(at: span, message, hint: "split it into smaller pieces with variables")
  }

  /// Skips to the next `;` or the `}` of the current block, keeping nested blocks balanced.
  mutating func skipToStatementEnd() {
    var depth = 0
    while token.kind != .endOfFile {
      if depth == 0 && (isPunct(.rbrace) || atTerminator) { return }
      if isPunct(.semicolon) && depth == 0 {
        advance()
        return
      }
      if isPunct(.lbrace) { depth += 1 }
      if isPunct(.rbrace) { depth -= 1 }
      advance()
    }
  }

  mutating func statement(_ kind: Stmt.Kind, from start: SourceSpan, to end: SourceSpan) -> Stmt {
    Stmt(id: makeID(), span: start.merged(with: end), kind: kind)
  }

  mutating func parseStatement() -> Stmt? {
    depth += 1
    defer { depth -= 1 }
    if depth > Parser.maxDepth {
      reportTooDeep(at: token.span, "statements nested too deeply: more than \(Parser.maxDepth) levels")
      skipToExpressionEnd()
      return nil
    }
    let start = token.span
    if isPunct(.lbrace) {
      let block = parseBlock()
      return statement(.block(block), from: start, to: block.span)
    }
    if token.kind == .identifier {
      switch text(token) {
      case "if": return parseIf()
      case "while":
        advance()
        let condition = parseParenthesized("while")
        let body = parseBlock()
        return statement(.whileLoop(condition: condition, body: body), from: start, to: body.span)
      case "unroll":
        advance()
        let count = parseParenthesized("unroll")
        let body = parseBlock()
        return statement(.unroll(count: count, body: body), from: start, to: body.span)
      case "for": return parseFor()
      case "break":
        advance()
        return statement(.breakLoop, from: start, to: start)
      case "continue":
        advance()
        return statement(.continueLoop, from: start, to: start)
      case "return":
        advance()
        return statement(.returnProbe, from: start, to: start)
      case "let": return parseLet()
      case "_" where nextTokenIs(.punct(.assign)):
        // `_ = expr;`: bpftrace 0.22's discard, an expression evaluated for its effect.
        advance()
        advance()
        let value = parseExpression()
        return statement(.expression(value), from: start, to: value.span)
      case "else":
        error(at: token.span, "'else' without a preceding 'if'")
        advance()
        return nil
      default: break
      }
    }
    let target = parseExpression()
    if let op = assignmentOperator() {
      advance()
      let value = parseExpression()
      return statement(.assign(target: target, op: op.binary, value: value), from: start, to: value.span)
    }
    return statement(.expression(target), from: start, to: target.span)
  }

  func assignmentOperator() -> (binary: BinaryOperator?, Void)? {
    guard case .punct(let p) = token.kind else { return nil }
    switch p {
    case .assign: return (nil, ())
    case .plusAssign: return (.add, ())
    case .minusAssign: return (.subtract, ())
    case .starAssign: return (.multiply, ())
    case .slashAssign: return (.divide, ())
    case .percentAssign: return (.modulo, ())
    case .ampAssign: return (.bitAnd, ())
    case .pipeAssign: return (.bitOr, ())
    case .caretAssign: return (.bitXor, ())
    case .shiftLeftAssign: return (.shiftLeft, ())
    case .shiftRightAssign: return (.shiftRight, ())
    default: return nil
    }
  }

  mutating func parseParenthesized(_ keyword: String) -> Expr {
    let open = token.span
    // bpftrace 0.24 takes a condition without parentheses: `if has_key(@a, 1) { … }`.
    if (keyword == "if" || keyword == "while") && !isPunct(.lparen) && !isPunct(.lbrace) && token.kind != .endOfFile {
      return nested { $0.parseExpression() }
    }
    guard accept(.lparen) else {
      error(at: token.span, "expected '(' after '\(keyword)', found \(describe(token))",
            hint: "write '\(keyword) (condition) { … }'")
      return missing(at: open)
    }
    let value = nested { $0.parseExpression() }
    expect(.rparen, "to close '\(keyword) ('")
    return value
  }

  mutating func parseIf() -> Stmt {
    let start = token.span
    // `else if` chains recurse here once per arm.
    depth += 1
    defer { depth -= 1 }
    if depth > Parser.maxDepth {
      reportTooDeep(at: start, "statements nested too deeply: more than \(Parser.maxDepth) levels")
      skipToExpressionEnd()
      return statement(.expression(missing(at: start)), from: start, to: start)
    }
    advance()
    let condition = parseParenthesized("if")
    let then = parseBlock()
    var elseBranch: Block?
    var end = then.span
    if token.kind == .identifier && text(token) == "else" {
      advance()
      if token.kind == .identifier && text(token) == "if" {
        let nestedIf = parseIf()
        elseBranch = Block(span: nestedIf.span, statements: [nestedIf])
      } else {
        elseBranch = parseBlock()
      }
      end = elseBranch!.span
    }
    return statement(.ifElse(condition: condition, then: then, elseBranch: elseBranch), from: start, to: end)
  }

  mutating func parseFor() -> Stmt? {
    let start = token.span
    advance()
    guard expect(.lparen, "after 'for'", hint: "write 'for ($kv : @map) { … }' or 'for ($i : 0..10) { … }'") else {
      return nil
    }
    let variableToken = token
    guard token.kind == .variable else {
      error(at: token.span, "expected a variable such as '$kv' after 'for (', found \(describe(token))")
      return nil
    }
    advance()
    let name = macroName(text(variableToken), at: variableToken.span)
    guard expect(.colon, "after the loop variable") else { return nil }
    let first = nested { $0.parseExpression() }
    if accept(.dotDot) {
      let last = nested { $0.parseExpression() }
      expect(.rparen, "to close 'for ('")
      let body = parseBlock()
      return statement(
        .forRange(variable: name, variableSpan: variableToken.span, start: first, end: last, body: body),
        from: start, to: body.span)
    }
    expect(.rparen, "to close 'for ('")
    let body = parseBlock()
    return statement(
      .forMap(variable: name, variableSpan: variableToken.span, map: first, body: body), from: start, to: body.span)
  }

  mutating func parseLet() -> Stmt? {
    let start = token.span
    advance()
    guard token.kind == .variable else {
      error(at: token.span, "expected a variable such as '$x' after 'let', found \(describe(token))")
      return nil
    }
    let nameToken = token
    advance()
    var type: TypeName?
    if accept(.colon) { type = parseTypeName() }
    var value: Expr?
    if accept(.assign) { value = parseExpression() }
    let end = value?.span ?? type?.span ?? nameToken.span
    return statement(
      .letDecl(name: macroName(text(nameToken), at: nameToken.span), nameSpan: nameToken.span, type: type, value: value), from: start, to: end)
  }

  mutating func parseTypeName() -> TypeName? {
    guard token.kind == .identifier else {
      error(at: token.span, "expected a type name, found \(describe(token))")
      return nil
    }
    let start = token.span
    var words = [text(token)]
    advance()
    // Multi-word C types: `unsigned long`, `struct task_struct`.
    while token.kind == .identifier, let last = words.last,
      ["unsigned", "signed", "long", "short", "struct", "union", "enum", "const"].contains(last)
        || (["long", "int", "char", "short"].contains(text(token)) && ["unsigned", "signed", "long", "short"].contains(last))
    {
      words.append(text(token))
      advance()
    }
    var end = start
    var pointers = 0
    while isPunct(.star) {
      pointers += 1
      end = token.span
      advance()
    }
    var count: Int?
    if isPunct(.lbracket) {
      advance()
      if token.kind == .integer, let value = parseIntegerLiteral(text(token)) { count = Int(clamping: value) }
      advance()
      end = token.span
      expect(.rbracket, "after the array size")
    }
    return TypeName(
      span: start.merged(with: end), name: words.filter { $0 != "const" }.joined(separator: " "), pointerDepth: pointers,
      arrayCount: count)
  }
}
