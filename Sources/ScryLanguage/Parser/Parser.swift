/// Hand-written recursive-descent parser for `Grammar/scry.ebnf`.
/// Never throws and never traps: missing pieces become `.missing` nodes plus a diagnostic, and parsing
/// goes on at the next statement or probe, so one run reports every syntax error it can.
public struct Parser {
  public static func parse(_ source: SourceFile) -> (program: Program, diagnostics: [Diagnostic]) {
    var parser = Parser(source: source)
    let probes = parser.parseProgram()
    return (
      Program(source: source, probes: probes, nodeCount: Int(parser.nextID), declarations: parser.declarations),
      parser.diagnostics
    )
  }

  private let source: SourceFile
  private var lexer: Lexer
  private var token: Token
  private var diagnostics: [Diagnostic] = []
  /// Spans of the script's C: preprocessor lines and type definitions, in order.
  private var declarations: [SourceSpan] = []
  /// Names the script's typedefs declare.
  private var typedefNames: Set<String> = []
  private var nextID: UInt32 = 0
  /// Inside `/predicate/` a `/` at nesting depth 0 ends the predicate; inside `< … >` a `>` ends the block.
  private var terminator: Punct?
  /// Parentheses, brackets and braces open since the terminator was set: inside them it is an operator again.
  private var nesting = 0
  /// Recursion guard: deeply nested input gets a diagnostic instead of a stack overflow.
  /// A parenthesis costs two levels (expression and operand), so 512 allows 250 nested parentheses.
  private var depth = 0
  static let maxDepth = 512
  /// The height of the expression tree being built: one per expression entered and one per operator
  /// of a chain (`1 + 1 + …` loops here but builds a left-deep tree, which the checker and the runtime
  /// walk recursively). Capped so that what parses also runs: in a debug build the checker needs about
  /// 10 KiB of stack per level (`scry` runs it on a 256 MiB stack) and the runtime's action compiler,
  /// on the main thread's 8 MiB, overflows at about 1,700 levels.
  private var height = 0
  static let maxHeight = 1_200
  private var hasReportedNesting = false

  private init(source: SourceFile) {
    self.source = source
    self.lexer = Lexer(bytes: source.bytes)
    self.token = Token(kind: .endOfFile, span: .at(0))
    advance()
  }

  // MARK: Tokens

  private mutating func advance() {
    token = lexer.next()
  }

  private func text(_ t: Token) -> String { source.text(of: t.span) }

  private func isPunct(_ p: Punct) -> Bool { token.kind == .punct(p) }

  private mutating func accept(_ p: Punct) -> Bool {
    guard isPunct(p) else { return false }
    advance()
    return true
  }

  @discardableResult
  private mutating func expect(_ p: Punct, _ context: String, hint: String? = nil) -> Bool {
    if accept(p) { return true }
    error(at: token.span, "expected '\(p.rawValue)' \(context), found \(describe(token))", hint: hint)
    return false
  }

  private func describe(_ t: Token) -> String {
    switch t.kind {
    case .endOfFile: return "end of input"
    case .string: return "a string"
    case .integer: return "number '\(text(t))'"
    case .unterminatedString: return "an unterminated string"
    default: return "'\(text(t))'"
    }
  }

  private mutating func error(at span: SourceSpan, _ message: String, hint: String? = nil) {
    // One error per position: recovery can otherwise report the same spot twice.
    if let last = diagnostics.last, last.span.start == span.start { return }
    diagnostics.append(.error(span, message, hint: hint))
  }

  private mutating func makeID() -> NodeID {
    defer { nextID += 1 }
    return NodeID(nextID)
  }

  private mutating func expr(_ kind: Expr.Kind, _ span: SourceSpan) -> Expr {
    Expr(id: makeID(), span: span, kind: kind)
  }

  private mutating func missing(at span: SourceSpan) -> Expr { expr(.missing, span) }

  /// Reports lexical errors the token carries; returns true if the token was one.
  private mutating func reportLexicalError() -> Bool {
    switch token.kind {
    case .invalid:
      error(at: token.span, "unexpected character '\(text(token))'")
    case .unterminatedString:
      error(at: token.span, "unterminated string literal", hint: "close the string with '\"' on the same line")
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

  private mutating func parseProgram() -> [ProbeBlock] {
    var probes: [ProbeBlock] = []
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
      let before = token.span.start
      if let probe = parseProbe() { probes.append(probe) }
      if token.span.start == before && token.kind != .endOfFile { advance() }
    }
    return probes
  }

  /// Passes over a C `struct name { … };` definition at the top level, keeping its span for the
  /// declaration parser (bpftrace hands these to clang).
  private mutating func skipTypeDefinition() -> Bool {
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

  private mutating func parseProbe() -> ProbeBlock? {
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
  private mutating func recoverToProbeEnd() {
    while token.kind != .endOfFile && !isPunct(.lbrace) && !isPunct(.rbrace) {
      if token.kind == .identifier && token.span.start > 0 && source.bytes[Int(token.span.start) - 1] == 0x0A {
        return  // a new line starting with a name: probably the next probe
      }
      advance()
    }
    if isPunct(.lbrace) { _ = parseBlock() } else if isPunct(.rbrace) { advance() }
  }

  private mutating func withTerminator<T>(_ p: Punct, _ body: (inout Parser) -> T) -> T {
    let (savedTerminator, savedNesting) = (terminator, nesting)
    terminator = p
    nesting = 0
    defer { (terminator, nesting) = (savedTerminator, savedNesting) }
    return body(&self)
  }

  private mutating func nested<T>(_ body: (inout Parser) -> T) -> T {
    nesting += 1
    defer { nesting -= 1 }
    return body(&self)
  }

  private var atTerminator: Bool {
    guard let terminator, nesting == 0 else { return false }
    return isPunct(terminator)
  }

  // MARK: Statements

  private mutating func parseBlock() -> Block {
    let open = token.span
    guard accept(.lbrace) else {
      error(at: token.span, "expected '{', found \(describe(token))")
      return Block(span: token.span, statements: [])
    }
    let statements = nested { $0.parseStatementList(until: .punct(.rbrace)) }
    let close = token.span
    if !accept(.rbrace) {
      error(at: open, "unclosed '{': expected '}' before \(describe(token))", hint: "add '}' to close this block")
    }
    return Block(span: open.merged(with: close), statements: statements)
  }

  private mutating func parseStatementList(until end: TokenKind) -> [Stmt] {
    var statements: [Stmt] = []
    while token.kind != end && token.kind != .endOfFile {
      if end == .punct(.greater) && atTerminator { break }
      if accept(.semicolon) { continue }
      if reportLexicalError() { continue }
      let before = token.span.start
      if let statement = parseStatement() {
        statements.append(statement)
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
  private mutating func reportTooDeep(at span: SourceSpan, _ message: String) {
    if hasReportedNesting { return }
    hasReportedNesting = true
    error(at: span, message, hint: "split it into smaller pieces with variables")
  }

  /// Skips to the next `;` or the `}` of the current block, keeping nested blocks balanced.
  private mutating func skipToStatementEnd() {
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

  private mutating func statement(_ kind: Stmt.Kind, from start: SourceSpan, to end: SourceSpan) -> Stmt {
    Stmt(id: makeID(), span: start.merged(with: end), kind: kind)
  }

  private mutating func parseStatement() -> Stmt? {
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

  private func assignmentOperator() -> (binary: BinaryOperator?, Void)? {
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

  private mutating func parseParenthesized(_ keyword: String) -> Expr {
    let open = token.span
    guard accept(.lparen) else {
      error(at: token.span, "expected '(' after '\(keyword)', found \(describe(token))",
            hint: "write '\(keyword) (condition) { … }'")
      return missing(at: open)
    }
    let value = nested { $0.parseExpression() }
    expect(.rparen, "to close '\(keyword) ('")
    return value
  }

  private mutating func parseIf() -> Stmt {
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

  private mutating func parseFor() -> Stmt? {
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
    let name = text(variableToken)
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

  private mutating func parseLet() -> Stmt? {
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
      .letDecl(name: text(nameToken), nameSpan: nameToken.span, type: type, value: value), from: start, to: end)
  }

  private mutating func parseTypeName() -> TypeName? {
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
  private mutating func tooDeep() -> Expr {
    let span = token.span
    reportTooDeep(at: span, "expression nested too deeply")
    skipToExpressionEnd()
    return missing(at: span)
  }

  /// Skips the rest of the current expression or statement: up to (not consuming) the `,` or `;` that
  /// ends it or the unmatched `)`, `]` or `}` around it, so each enclosing level finds its own closer.
  private mutating func skipToExpressionEnd() {
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

  private mutating func parseTernary() -> Expr {
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

  private static let precedence: [Punct: (Int, BinaryOperator)] = [
    .orOr: (0, .logicalOr), .andAnd: (1, .logicalAnd), .pipe: (2, .bitOr), .caret: (3, .bitXor), .amp: (4, .bitAnd),
    .equalEqual: (5, .equal), .notEqual: (5, .notEqual),
    .less: (6, .less), .lessEqual: (6, .lessEqual), .greater: (6, .greater), .greaterEqual: (6, .greaterEqual),
    .shiftLeft: (7, .shiftLeft), .shiftRight: (7, .shiftRight),
    .plus: (8, .add), .minus: (8, .subtract), .star: (9, .multiply), .slash: (9, .divide), .percent: (9, .modulo),
  ]

  private mutating func parseBinary(precedence minimum: Int) -> Expr {
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

  private mutating func parseUnary() -> Expr {
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
    return parsePostfix(parsePrimary())
  }

  private mutating func parsePostfix(_ base: Expr) -> Expr {
    var value = base
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
          value = expr(.tupleIndex(value, Int(clamping: index)), value.span.merged(with: end))
        } else if token.kind == .identifier {
          let name = text(token)
          let end = token.span
          advance()
          value = expr(.field(value, name: name, isArrow: isArrow), value.span.merged(with: end))
        } else {
          error(at: token.span, "expected a field name after '\(isArrow ? "->" : ".")', found \(describe(token))")
          return value
        }
      } else if isPunct(.increment) || isPunct(.decrement) {
        let isIncrement = isPunct(.increment)
        let end = token.span
        advance()
        value = expr(.update(value, isIncrement: isIncrement, isPrefix: false), value.span.merged(with: end))
      } else if isPunct(.lbracket) {
        advance()
        let index = nested { $0.parseExpression() }
        let end = token.span
        expect(.rbracket, "to close the index")
        value = expr(.index(value, index), value.span.merged(with: end))
      } else {
        return value
      }
    }
  }

  private mutating func parseMapKeys() -> ([Expr], SourceSpan) {
    // Caller saw '['.
    advance()
    var keys: [Expr] = []
    nested { parser in
      repeat {
        if parser.isPunct(.rbracket) { break }
        keys.append(parser.parseExpression())
      } while parser.accept(.comma)
    }
    let end = token.span
    expect(.rbracket, "to close the map key")
    if keys.isEmpty { error(at: end, "empty map key '[]'", hint: "write the key, or drop the brackets for a map without keys") }
    return (keys, end)
  }

  private mutating func parseArguments() -> ([Expr], SourceSpan) {
    // Caller saw '('.
    advance()
    var args: [Expr] = []
    nested { parser in
      if !parser.isPunct(.rparen) {
        repeat { args.append(parser.parseExpression()) } while parser.accept(.comma)
      }
    }
    let end = token.span
    expect(.rparen, "to close the argument list")
    return (args, end)
  }

  /// `offsetof(struct X, a.b)`; nil (nothing consumed) when it is not that shape.
  private mutating func parseOffsetof(start t: Token) -> Expr? {
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

  private static let typeWords: Set<String> = [
    "struct", "union", "enum", "unsigned", "signed", "string", "inet", "buffer", "bool", "void",
  ]

  private func looksLikeType(_ name: String) -> Bool {
    IntegerType(name: name) != nil || Parser.typeWords.contains(name) || typedefNames.contains(name)
  }

  private mutating func parsePrimary() -> Expr {
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
      return expr(.variable(text(t)), t.span)
    case .mapName:
      advance()
      let name = text(t)
      if isPunct(.lbracket) {
        let (keys, end) = parseMapKeys()
        return expr(.map(name: name, keys: keys, isBare: false), t.span.merged(with: end))
      }
      return expr(.map(name: name, keys: [], isBare: false), t.span)
    case .identifier:
      let name = text(t)
      advance()
      if name == "true" || name == "false" { return expr(.boolean(name == "true"), t.span) }
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
        return expr(.call(name: name, nameSpan: t.span, args: args), t.span.merged(with: end))
      }
      if isPunct(.lbracket) && Builtin(name: name) == nil {
        let (keys, end) = parseMapKeys()
        return expr(.map(name: name, keys: keys, isBare: true), t.span.merged(with: end))
      }
      return expr(.identifier(name), t.span)
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
  private mutating func decodeString(_ t: Token) -> [UInt8] {
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

private func hexValue(_ c: UInt8) -> Int? {
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
