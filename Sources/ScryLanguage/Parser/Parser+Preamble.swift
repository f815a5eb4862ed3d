/// bpftrace 0.20–0.26's preamble (config blocks, map declarations, macros) and its block and `if`
/// expressions.
extension Parser {
  // MARK: Preamble

  /// A preamble item at the current token: `config = { … }`, `let @m = hash(N);` or a macro
  /// definition (already collected by `collectMacros`, passed over here). False when it is none.
  mutating func parsePreambleItem() -> Bool {
    guard token.kind == .identifier else { return false }
    switch text(token) {
    case "config" where nextTokenIs(.punct(.assign)):
      parseConfigBlock()
      return true
    case "let" where nextTokenIs(.mapName):
      parseMapDeclaration()
      return true
    case "macro" where nextTokenIs(.identifier):
      skipMacroDefinition()
      return true
    default:
      return false
    }
  }

  /// Whether the token after the current one has this kind; nothing consumed.
  mutating func nextTokenIs(_ kind: TokenKind) -> Bool {
    let saved = (lexer, token)
    defer { (lexer, token) = saved }
    advance()
    return token.kind == kind
  }

  /// `config = { name = value; … }`: values are integers, words (`perf`, `true`) or strings.
  mutating func parseConfigBlock() {
    advance()  // config
    advance()  // =
    let open = token.span
    guard expect(.lbrace, "after 'config ='", hint: "write 'config = { max_map_keys = 1024; stack_mode = perf }'") else {
      recoverToProbeEnd()
      return
    }
    while token.kind != .endOfFile && !isPunct(.rbrace) {
      if accept(.semicolon) { continue }
      let nameToken = token
      guard token.kind == .identifier else {
        error(at: token.span, "expected a config variable name, found \(describe(token))")
        skipToStatementEnd()
        continue
      }
      advance()
      guard expect(.assign, "after the config variable '\(text(nameToken))'") else {
        skipToStatementEnd()
        continue
      }
      let valueToken = token
      let value: ConfigEntry.Value
      switch token.kind {
      case .integer:
        guard let number = parseIntegerLiteral(text(token)) else {
          error(at: token.span, "invalid integer literal '\(text(token))'")
          skipToStatementEnd()
          continue
        }
        value = .integer(number)
      case .identifier: value = .word(text(token))
      case .string: value = .string(String(decoding: decodeString(token), as: UTF8.self))
      default:
        error(at: token.span, "expected a value for '\(text(nameToken))', found \(describe(token))",
              hint: "a config value is a number, a word such as 'perf' or 'true', or a string")
        skipToStatementEnd()
        continue
      }
      advance()
      config.append(ConfigEntry(name: text(nameToken), nameSpan: nameToken.span, value: value, valueSpan: valueToken.span))
      if !isPunct(.rbrace) && !accept(.semicolon) {
        error(at: token.span, "expected ';' or '}' after the config value, found \(describe(token))")
        skipToStatementEnd()
      }
    }
    if !accept(.rbrace) { error(at: open, "unclosed config block: expected '}'", hint: "add '}' to close it") }
  }

  /// `let @name = kind(max_entries);`
  mutating func parseMapDeclaration() {
    let start = token.span
    advance()  // let
    let nameToken = token
    advance()
    guard expect(.assign, "after '\(text(nameToken))' in the map declaration", hint: "write 'let @name = hash(1024);'"),
      token.kind == .identifier
    else {
      if token.kind != .identifier { error(at: token.span, "expected a map kind such as 'hash', found \(describe(token))") }
      skipToStatementEnd()
      return
    }
    let kindToken = token
    advance()
    var maxEntries: UInt64?
    var end = kindToken.span
    if isPunct(.lparen) {
      let (args, close) = parseArguments()
      end = close
      if args.count == 1, case .integer(let value) = args[0].kind {
        maxEntries = value
      } else {
        error(at: kindToken.span.merged(with: close), "a map declaration takes one argument: the maximum number of entries",
              hint: "write '\(text(kindToken))(1024)'")
      }
    } else {
      error(at: token.span, "expected '(' after '\(text(kindToken))', found \(describe(token))",
            hint: "write '\(text(kindToken))(1024)'")
    }
    mapDeclarations.append(
      MapDeclaration(
        name: text(nameToken), nameSpan: nameToken.span, kind: text(kindToken), kindSpan: kindToken.span,
        maxEntries: maxEntries, span: start.merged(with: end)))
    if !accept(.semicolon) {
      error(at: token.span, "expected ';' after the map declaration, found \(describe(token))")
    }
  }

  // MARK: Block and `if` expressions

  /// `{ statements; value }` in expression position.
  mutating func parseBlockExpression() -> Expr {
    let block = parseBlock()
    var statements = block.statements
    var value: Expr?
    if let last = statements.last, case .expression(let e) = last.kind, !lastStatementHadSemicolon {
      value = e
      statements.removeLast()
    } else if let last = statements.last, !lastStatementHadSemicolon, let ifValue = ifStatementValue(last) {
      value = ifValue
      statements.removeLast()
    }
    return expr(.block(Block(span: block.span, statements: statements), value: value), block.span)
  }

  /// `if (c) { a } else { b }` ending a block expression, as the ternary it means there; nil unless
  /// every branch ends with a value.
  mutating func ifStatementValue(_ statement: Stmt) -> Expr? {
    guard case .ifElse(let condition, let then, let otherwise?) = statement.kind, let whenTrue = blockValue(then) else {
      return nil
    }
    let whenFalse: Expr?
    if otherwise.statements.count == 1, otherwise.span == otherwise.statements[0].span {
      whenFalse = ifStatementValue(otherwise.statements[0])  // `else if`
    } else {
      whenFalse = blockValue(otherwise)
    }
    guard let whenFalse else { return nil }
    return expr(.ternary(condition, whenTrue, whenFalse), statement.span)
  }

  /// A branch's value: its last expression, or an `if` ending it whose branches all have values
  /// (`if (a) { if (b) { 1 } else { 2 } } else { 3 }`).
  private mutating func blockValue(_ block: Block) -> Expr? {
    guard valueBlockStarts.contains(block.span.start), let last = block.statements.last else { return nil }
    let value: Expr
    if case .expression(let e) = last.kind {
      value = e
    } else if let nested = ifStatementValue(last) {
      value = nested
    } else {
      return nil
    }
    return expr(.block(Block(span: block.span, statements: Array(block.statements.dropLast())), value: value), block.span)
  }

  /// `if (c) { a } else { b }` in expression position: a ternary of two block expressions.
  mutating func parseIfExpression(start: Token) -> Expr {
    depth += 1
    defer { depth -= 1 }
    if depth > Parser.maxDepth { return tooDeep() }
    let condition = parseParenthesized("if")
    guard isPunct(.lbrace) else {
      error(at: token.span, "expected '{' after 'if (…)', found \(describe(token))")
      return missing(at: start.span)
    }
    let then = parseBlockExpression()
    guard token.kind == .identifier && text(token) == "else" else {
      error(at: start.span.merged(with: then.span), "an 'if' used as a value needs an 'else'",
            hint: "add 'else { … }' with the value when the condition is false")
      return missing(at: start.span)
    }
    advance()
    let otherwise: Expr
    if token.kind == .identifier && text(token) == "if" {
      let elseIf = token
      advance()
      otherwise = parseIfExpression(start: elseIf)
    } else if isPunct(.lbrace) {
      otherwise = parseBlockExpression()
    } else {
      error(at: token.span, "expected '{' or 'if' after 'else', found \(describe(token))")
      return missing(at: start.span)
    }
    return expr(.ternary(condition, then, otherwise), start.span.merged(with: otherwise.span))
  }
}
