/// Recursive-descent parser for SystemTap's language (probes, globals, functions). Like Scry's own
/// parser it never throws or traps: errors become diagnostics and `.missing` nodes, and parsing goes
/// on at the next statement or declaration.
struct StapParser {
  let source: SourceFile
  var lexer: StapLexer
  var token: StapToken
  var diagnostics: [Diagnostic] = []
  var probes: [StapProbe] = []
  var globals: [StapGlobal] = []
  var functions: [StapFunction] = []
  /// The script's arguments, for `$1`/`@1` (after the script on the command line).
  var positionals: [String] = []
  /// `probe NAME = points { prologue }` and `probe NAME += points { epilogue }`, by NAME.
  var aliases: [String: StapAlias] = [:]
  /// Nesting guard, so deep input is an error rather than a stack overflow (as in `Parser`).
  var depth = 0
  static let maxDepth = 400
  /// Binary operators in one statement, bounding the height of the tree the checker walks.
  var operators = 0
  static let maxOperators = 1_000

  init(source: SourceFile) {
    self.source = source
    self.lexer = StapLexer(bytes: source.bytes)
    self.token = StapToken(kind: .endOfFile, span: .at(0))
    advance()
  }

  /// A `$N`/`@N` argument's text and whether it is a string (`@`); `$#`/`@#` is their count. An
  /// argument not given is an error, as in SystemTap.
  mutating func argumentText(_ t: StapToken) -> (String, Bool)? {
    let spelled = text(t)
    let isString = spelled.hasPrefix("@")
    if spelled.hasSuffix("#") { return (String(positionals.count), isString) }
    guard let n = Int(spelled.dropFirst()), n >= 1, n <= positionals.count else {
      error(t.span, "'\(spelled)' names argument \(spelled.dropFirst()), but the script was given \(positionals.count)",
        hint: "pass the arguments after the script: scry script.stp ARG1 ARG2")
      return nil
    }
    return (positionals[n - 1], isString)
  }

  /// Where the token before `token` ended, for spans that close on it.
  var lastEnd: UInt32 = 0

  mutating func advance() {
    lastEnd = token.span.end
    token = lexer.next()
  }
  func text(_ t: StapToken) -> String { source.text(of: t.span) }
  func isPunct(_ p: String) -> Bool { token.kind == .punct(p) }
  func isKeyword(_ word: String) -> Bool { token.kind == .identifier && text(token) == word }

  mutating func accept(_ p: String) -> Bool {
    guard isPunct(p) else { return false }
    advance()
    return true
  }

  mutating func expect(_ p: String, _ context: String) {
    if accept(p) { return }
    error(token.span, "expected '\(p)' \(context), found \(describe(token))")
  }

  func describe(_ t: StapToken) -> String {
    switch t.kind {
    case .endOfFile: return "end of input"
    case .string: return "a string"
    case .unterminatedString: return "an unterminated string"
    case .unterminatedComment: return "an unterminated comment"
    case .embeddedC: return "embedded C"
    default: return "'\(text(t))'"
    }
  }

  mutating func error(_ span: SourceSpan, _ message: String, hint: String? = nil) {
    if let last = diagnostics.last, last.span.start == span.start { return }
    diagnostics.append(.error(span, message, hint: hint))
  }

  // MARK: Top level

  mutating func parseProgram() {
    while token.kind != .endOfFile {
      let before = token.span.start
      if isKeyword("probe") {
        parseProbe()
      } else if isKeyword("global") {
        parseGlobals()
      } else if isKeyword("function") {
        parseFunction()
      } else if token.kind == .embeddedC {
        error(token.span, "embedded C ('%{ … %}') does not run in Scry", hint: "Scry runs no compiled C; use tapset functions")
        advance()
      } else if token.kind == .unterminatedComment {
        error(token.span, "unterminated comment", hint: "close the comment with '*/'")
        advance()
      } else {
        error(token.span, "expected 'probe', 'global' or 'function', found \(describe(token))")
        advance()
      }
      if token.span.start == before && token.kind != .endOfFile { advance() }
    }
    expandAliases()
  }

  mutating func parseGlobals() {
    advance()
    repeat {
      guard token.kind == .identifier else {
        error(token.span, "expected a global's name, found \(describe(token))")
        return
      }
      let nameToken = token
      advance()
      // `global arr[10000]`: a size limit, which Scry's maps take from their own limit.
      if accept("[") {
        if token.kind == .integer { advance() }
        expect("]", "after the array's size")
      }
      var initializer: StapExpr?
      if accept("=") { initializer = parseExpression() }
      globals.append(StapGlobal(name: text(nameToken), span: nameToken.span, initializer: initializer))
    } while accept(",")
    _ = accept(";")
  }

  mutating func parseFunction() {
    advance()
    guard token.kind == .identifier else {
      error(token.span, "expected the function's name, found \(describe(token))")
      return
    }
    let nameToken = token
    advance()
    skipTypeAnnotation()
    var parameters: [(name: String, span: SourceSpan)] = []
    expect("(", "after the function's name")
    if !isPunct(")") {
      repeat {
        guard token.kind == .identifier else {
          error(token.span, "expected a parameter name, found \(describe(token))")
          break
        }
        parameters.append((text(token), token.span))
        advance()
        skipTypeAnnotation()
      } while accept(",")
    }
    expect(")", "after the parameters")
    if token.kind == .embeddedC {
      error(token.span, "a function in embedded C ('%{ … %}') does not run in Scry", hint: "write the function in SystemTap's language")
      advance()
      return
    }
    let body = parseBlock()
    functions.append(StapFunction(name: text(nameToken), span: nameToken.span, parameters: parameters, body: body))
  }

  /// `:long`, `:string`: the types are checked by use, as Scry infers them.
  mutating func skipTypeAnnotation() {
    if accept(":"), token.kind == .identifier { advance() }
  }

  mutating func parseProbe() {
    let start = token.span
    advance()
    var points: [StapProbePoint] = []
    repeat {
      guard let point = parsePoint() else {
        recoverToBlock()
        return
      }
      points.append(point)
    } while accept(",")
    if isPunct("=") || isPunct("+=") {
      parseAlias(points, start: start)
      return
    }
    let body = parseBlock()
    probes.append(StapProbe(points: points, body: body, span: start.merged(with: body.span)))
  }

  /// `probe NAME = P1, P2 { prologue }` (`+=`: an epilogue): uses of NAME become the points, with
  /// the alias's statements before (after) the probe's own, in one scope as in SystemTap.
  mutating func parseAlias(_ names: [StapProbePoint], start: SourceSpan) {
    let isEpilogue = isPunct("+=")
    advance()
    guard names.count == 1, let name = StapAlias.name(of: names[0]) else {
      error(names[0].span, "an alias's name is one probe point without arguments", hint: "probe my_alias = kernel.trace(\"sys_enter\") { … }")
      recoverToBlock()
      return
    }
    var points: [StapProbePoint] = []
    repeat {
      guard let point = parsePoint() else {
        recoverToBlock()
        return
      }
      points.append(point)
    } while accept(",")
    let body = parseBlock()
    if aliases[name] != nil { error(names[0].span, "the alias '\(name)' is defined twice") }
    aliases[name] = StapAlias(points: points, body: body, isEpilogue: isEpilogue)
  }

  /// Probes that name aliases, on the aliases' points; after the whole file, as aliases may be
  /// defined after their use. An alias names other aliases only once removed (no recursion).
  mutating func expandAliases() {
    guard !aliases.isEmpty else { return }
    var expanded: [StapProbe] = []
    for probe in probes {
      var own: [StapProbePoint] = []
      for point in probe.points {
        guard let name = StapAlias.name(of: point), let alias = aliases[name] else {
          own.append(point)
          continue
        }
        func statements(_ s: StapStmt) -> [StapStmt] {
          if case .block(let list) = s.kind { return list }
          return [s]
        }
        let list = alias.isEpilogue ? statements(probe.body) + statements(alias.body) : statements(alias.body) + statements(probe.body)
        expanded.append(StapProbe(points: alias.points, body: StapStmt(.block(list), probe.body.span), span: probe.span))
      }
      if !own.isEmpty { expanded.append(StapProbe(points: own, body: probe.body, span: probe.span)) }
    }
    probes = expanded
  }

  /// `a.b("x").c(5)?`; `*` is a wildcard within a component's name.
  mutating func parsePoint() -> StapProbePoint? {
    var components: [StapPointComponent] = []
    let start = token.span
    repeat {
      var name = ""
      var span = token.span
      while token.kind == .identifier || token.kind == .integer || isPunct("*") {
        name += text(token)
        span = span.merged(with: token.span)
        let end = token.span.end
        advance()
        if token.span.start != end { break }
      }
      guard !name.isEmpty else {
        error(token.span, "expected a probe point such as 'begin' or 'kernel.trace(\"sys_enter\")', found \(describe(token))")
        return nil
      }
      var argument: StapLiteral?
      if accept("(") {
        if token.kind == .string {
          argument = .string(String(decoding: StapLexer.stringValue(source.bytes[Int(token.span.start)..<Int(token.span.end)]), as: UTF8.self))
          advance()
        } else if token.kind == .integer, let value = StapLexer.integerValue(text(token)) {
          argument = .integer(value)
          advance()
        } else if token.kind == .argument, let (text, asString) = argumentText(token) {
          if asString {
            argument = .string(text)
          } else if let value = StapLexer.integerValue(text) {
            argument = .integer(value)
          } else {
            error(token.span, "'\(self.text(token))' is '\(text)', not a number", hint: "use '@\(self.text(token).dropFirst())' for the argument as a string")
          }
          advance()
        } else {
          error(token.span, "expected a string or a number in the probe point, found \(describe(token))")
          return nil
        }
        span = span.merged(with: token.span)
        expect(")", "after the probe point's argument")
      }
      components.append(StapPointComponent(name: name, argument: argument, span: span))
    } while accept(".")
    var end = components.last?.span ?? start
    var isOptional = false
    while isPunct("?") || isPunct("!") {
      isOptional = true
      end = token.span
      advance()
    }
    return StapProbePoint(components: components, span: start.merged(with: end), isOptional: isOptional)
  }

  mutating func recoverToBlock() {
    var braces = 0
    while token.kind != .endOfFile {
      if isPunct("{") { braces += 1 }
      if isPunct("}") {
        braces -= 1
        if braces <= 0 {
          advance()
          return
        }
      }
      if braces == 0 && (isKeyword("probe") || isKeyword("global") || isKeyword("function")) { return }
      advance()
    }
  }

  // MARK: Statements

  mutating func parseBlock() -> StapStmt {
    let start = token.span
    guard accept("{") else {
      error(token.span, "expected '{' to start the probe's body, found \(describe(token))")
      return StapStmt(.block([]), start)
    }
    var statements: [StapStmt] = []
    while !isPunct("}") && token.kind != .endOfFile {
      if isKeyword("probe") || isKeyword("global") || isKeyword("function") { break }
      let before = token.span.start
      statements.append(parseStatement())
      if token.span.start == before { advance() }
    }
    let end = token.span
    expect("}", "to close the block")
    return StapStmt(.block(statements), start.merged(with: end))
  }

  mutating func parseStatement() -> StapStmt {
    operators = 0
    depth += 1
    defer { depth -= 1 }
    let start = token.span
    guard depth < Self.maxDepth else {
      error(start, "statements nest too deeply")
      skipTo(["}"])
      return StapStmt(.empty, start)
    }
    if isPunct("{") { return parseBlock() }
    if accept(";") { return StapStmt(.empty, start) }
    if token.kind == .identifier {
      switch text(token) {
      case "if":
        advance()
        expect("(", "after 'if'")
        let condition = parseExpression()
        expect(")", "after the condition")
        let then = parseStatement()
        var otherwise: StapStmt?
        if isKeyword("else") {
          advance()
          otherwise = parseStatement()
        }
        return StapStmt(.ifElse(condition, then, otherwise), start.merged(with: (otherwise ?? then).span))
      case "while":
        advance()
        expect("(", "after 'while'")
        let condition = parseExpression()
        expect(")", "after the condition")
        let body = parseStatement()
        return StapStmt(.whileLoop(condition, body), start.merged(with: body.span))
      case "for":
        advance()
        expect("(", "after 'for'")
        let initial = isPunct(";") ? nil : parseExpression()
        expect(";", "after the loop's initialisation")
        let condition = isPunct(";") ? nil : parseExpression()
        expect(";", "after the loop's condition")
        let step = isPunct(")") ? nil : parseExpression()
        expect(")", "after the loop's step")
        let body = parseStatement()
        return StapStmt(.forLoop(initial, condition, step, body), start.merged(with: body.span))
      case "foreach": return parseForeach()
      case "delete":
        advance()
        let target = parseExpression()
        _ = accept(";")
        return StapStmt(.delete(target), start.merged(with: target.span))
      case "next", "break", "continue":
        let word = text(token)
        advance()
        _ = accept(";")
        return StapStmt(word == "next" ? .next : word == "break" ? .breakLoop : .continueLoop, start)
      case "return":
        advance()
        let value = isPunct(";") || isPunct("}") ? nil : parseExpression()
        _ = accept(";")
        return StapStmt(.returnValue(value), start.merged(with: value?.span ?? start))
      case "try":
        advance()
        let body = parseStatement()
        guard isKeyword("catch") else {
          error(token.span, "expected 'catch' after the 'try' block, found \(describe(token))")
          return body
        }
        advance()
        var variable: (name: String, span: SourceSpan)?
        if accept("(") {
          if token.kind == .identifier {
            variable = (text(token), token.span)
            advance()
          } else {
            error(token.span, "expected the message's variable, found \(describe(token))")
          }
          expect(")", "after the catch variable")
        }
        let handler = parseStatement()
        return StapStmt(.tryCatch(body, variable: variable, handler), start.merged(with: handler.span))
      default: break
      }
    }
    let expression = parseExpression()
    _ = accept(";")
    return StapStmt(.expression(expression), expression.span)
  }

  mutating func skipTo(_ puncts: [String]) {
    while token.kind != .endOfFile && !puncts.contains(where: isPunct) { advance() }
  }

  /// `foreach ([a, b] in arr- limit 5)`, `foreach (v = [k] in arr+)`, `foreach (k in arr @sum-)`.
  mutating func parseForeach() -> StapStmt {
    let start = token.span
    advance()
    expect("(", "after 'foreach'")
    var value: String?
    var keys: [(name: String, span: SourceSpan)] = []
    var sort: StapSort?
    func sortMark(_ p: StapParser) -> Bool? { p.isPunct("+") ? false : p.isPunct("-") ? true : nil }
    // `v = [k] in arr`: the value as well as the keys.
    if token.kind == .identifier {
      let saved = (lexer, token)
      let name = text(token)
      advance()
      if accept("=") { value = name } else { (lexer, token) = saved }
    }
    let bracketed = accept("[")
    repeat {
      guard token.kind == .identifier else {
        error(token.span, "expected a key variable, found \(describe(token))")
        skipTo([")"])
        break
      }
      keys.append((text(token), token.span))
      advance()
      if let descending = sortMark(self) {
        sort = StapSort(keyIndex: keys.count, descending: descending, extractor: nil)
        advance()
      }
    } while bracketed && accept(",")
    if bracketed { expect("]", "after the key variables") }
    if !isKeyword("in") {
      error(token.span, "expected 'in' after the key variables, found \(describe(token))")
    } else {
      advance()
    }
    let arrayToken = token
    if token.kind == .identifier { advance() } else { error(token.span, "expected an array's name, found \(describe(token))") }
    var extractor: String?
    if token.kind == .atName {
      extractor = text(token)
      advance()
    }
    if let descending = sortMark(self) {
      sort = StapSort(keyIndex: nil, descending: descending, extractor: extractor)
      advance()
    }
    var limit: StapExpr?
    if isKeyword("limit") {
      advance()
      limit = parseExpression()
    }
    expect(")", "to close the 'foreach'")
    let body = parseStatement()
    return StapStmt(
      .foreach(keys: keys, value: value, array: text(arrayToken), arraySpan: arrayToken.span, sort: sort, limit: limit, body: body),
      start.merged(with: body.span))
  }
}
