/// bpftrace 0.22+ macros: `macro add_one(x) { x + 1 }`, expanded where they are called, before the
/// checker sees the tree. A call parses the macro's body again with the parameters bound: an
/// expression parameter (`x`) reparses the argument's text at each use (so each use is its own
/// node, as bpftrace inserts the expression), a variable (`$v`) or map (`@m`) parameter renames.
/// The body's nodes keep the body's spans, so diagnostics point into the macro; `macroExpansions`
/// lets the front end add the call site.
struct MacroDefinition {
  enum ParameterKind { case expression, variable, map }
  struct Parameter {
    let kind: ParameterKind
    /// As written, sigil included: `x`, `$v`, `@m`.
    let name: String
    let span: SourceSpan
  }
  let name: String
  let nameSpan: SourceSpan
  let parameters: [Parameter]
  /// From the body's `{` to its `}`.
  let body: SourceSpan
}

/// One macro being expanded (or, `isDefinitionCheck`, its body read once for syntax).
struct MacroFrame {
  enum Binding {
    /// The argument's text from where it starts, reparsed with the frames below `frameDepth`
    /// (those around the call).
    case expression(start: UInt32, frameDepth: Int)
    /// A variable or map parameter: the caller's name.
    case rename(String)
    /// While checking the definition: any expression.
    case placeholder
  }
  let name: String
  let bindings: [String: Binding]
  let isDefinitionCheck: Bool
}

extension Parser {
  /// Macros may nest this deep (a macro calling a macro…) and expand this many times per script:
  /// bounds on what a few lines can make the parser build.
  static let maxMacroDepth = 64
  static let maxMacroExpansions = 2_000

  /// Finds every top-level `macro name(params) { body }` before parsing, so calls may precede
  /// definitions. Scripts without the word `macro` pay only for the byte search.
  mutating func collectMacros() {
    guard source.bytes.firstRange(of: Array("macro".utf8)) != nil else { return }
    var scanner = Lexer(bytes: source.bytes)
    var depth = 0
    while true {
      let t = scanner.next()
      switch t.kind {
      case .endOfFile: return
      case .punct(.lbrace): depth += 1
      case .punct(.rbrace): depth = max(0, depth - 1)
      case .identifier where depth == 0 && source.text(of: t.span) == "macro":
        let saved = (lexer, token)
        (lexer, token) = (scanner, t)
        if let definition = parseMacroHeader() {
          if let earlier = macros[definition.name] {
            diagnostics.append(
              .error(definition.nameSpan, "macro '\(definition.name)' is defined twice",
                     notes: [.init(span: earlier.nameSpan, message: "first defined here")]))
          } else {
            macros[definition.name] = definition
          }
        }
        // Scanning goes on at the token after the definition (the header parse has read it already).
        scanner = lexer
        scanner.position = Int(token.span.start)
        (lexer, token) = saved
      default: break
      }
    }
  }

  /// `macro name(params) {` … `}` from the `macro` token; leaves the lexer after the body.
  mutating func parseMacroHeader() -> MacroDefinition? {
    advance()  // macro
    guard token.kind == .identifier else { return nil }
    let nameToken = token
    advance()
    guard expect(.lparen, "after the macro's name", hint: "write 'macro \(text(nameToken))(x, $v, @m) { … }'") else {
      return nil
    }
    var parameters: [MacroDefinition.Parameter] = []
    while !isPunct(.rparen) && token.kind != .endOfFile {
      let kind: MacroDefinition.ParameterKind
      switch token.kind {
      case .identifier: kind = .expression
      case .variable: kind = .variable
      case .mapName: kind = .map
      default:
        error(at: token.span, "expected a parameter ('x', '$v' or '@m'), found \(describe(token))")
        return nil
      }
      if parameters.contains(where: { $0.name == text(token) }) {
        error(at: token.span, "parameter '\(text(token))' is named twice")
      }
      parameters.append(.init(kind: kind, name: text(token), span: token.span))
      advance()
      if !accept(.comma) { break }
    }
    guard expect(.rparen, "to close the macro's parameters") else { return nil }
    let open = token.span
    guard isPunct(.lbrace) else {
      error(at: token.span, "expected '{' to start the macro's body, found \(describe(token))")
      return nil
    }
    var depth = 0
    while token.kind != .endOfFile {
      if isPunct(.lbrace) { depth += 1 }
      if isPunct(.rbrace) {
        depth -= 1
        if depth == 0 { break }
      }
      advance()
    }
    guard isPunct(.rbrace) else {
      error(at: open, "unclosed '{': the macro's body has no '}'")
      return nil
    }
    let body = open.merged(with: token.span)
    advance()
    return MacroDefinition(name: text(nameToken), nameSpan: nameToken.span, parameters: parameters, body: body)
  }

  /// At `macro` in the main pass: the definition was collected; its body is read once here, so a
  /// macro nobody calls still has its syntax and its maps checked.
  mutating func skipMacroDefinition() {
    let start = token.span.start
    let saved = diagnostics.count
    guard let definition = parseMacroHeader() else {
      diagnostics.removeLast(diagnostics.count - saved)  // already reported by collectMacros
      recoverToProbeEnd()
      return
    }
    diagnostics.removeLast(diagnostics.count - saved)
    guard macros[definition.name]?.body.start == definition.body.start, definition.body.start > start else { return }
    let bindings = Dictionary(definition.parameters.map { ($0.name, MacroFrame.Binding.placeholder) }) { a, _ in a }
    _ = parseMacroBody(definition, frame: MacroFrame(name: definition.name, bindings: bindings, isDefinitionCheck: true))
  }

  /// Parses `definition`'s body as a block expression inside `frame`, then returns to the current token.
  mutating func parseMacroBody(_ definition: MacroDefinition, frame: MacroFrame) -> Expr {
    let saved = (lexer, token, terminator, nesting)
    lexer.position = Int(definition.body.start)
    advance()
    (terminator, nesting) = (nil, 0)
    macroFrames.append(frame)
    let body = parseBlockExpression()
    macroFrames.removeLast()
    (lexer, token, terminator, nesting) = saved
    return body
  }

  /// `name(args)` or a bare `name` naming a macro without parameters: the expanded body.
  mutating func expandMacro(_ definition: MacroDefinition, nameToken t: Token) -> Expr {
    var args: [Expr] = []
    var starts: [UInt32] = []
    var call = t.span
    if isPunct(.lparen) {
      let (parsed, parsedStarts, end) = parseArgumentsWithStarts()
      (args, starts) = (parsed, parsedStarts)
      call = t.span.merged(with: end)
    }
    let definedHere = [Diagnostic.Note(span: definition.nameSpan, message: "'\(definition.name)' is defined here")]
    if macroFrames.contains(where: { $0.name == definition.name }) {
      diagnostics.append(.error(call, "macro '\(definition.name)' calls itself", hint: "macros cannot be recursive", notes: definedHere))
      return missing(at: call)
    }
    if macroFrames.count >= Parser.maxMacroDepth || macroExpansions.count >= Parser.maxMacroExpansions {
      if !hasReportedMacroLimit {
        hasReportedMacroLimit = true
        diagnostics.append(
          .error(call, "too many macro expansions",
                 hint: "macros may nest \(Parser.maxMacroDepth) deep and expand \(Parser.maxMacroExpansions) times"))
      }
      return missing(at: call)
    }
    guard args.count == definition.parameters.count else {
      let written = definition.parameters.map(\.name).joined(separator: ", ")
      diagnostics.append(
        .error(call, "macro '\(definition.name)' takes \(definition.parameters.count) argument\(definition.parameters.count == 1 ? "" : "s"), not \(args.count)",
               hint: "call it as '\(definition.name)(\(written))'", notes: definedHere))
      return missing(at: call)
    }
    var bindings: [String: MacroFrame.Binding] = [:]
    for (parameter, (arg, start)) in zip(definition.parameters, zip(args, starts)) {
      switch (parameter.kind, arg.kind) {
      case (.expression, _): bindings[parameter.name] = .expression(start: start, frameDepth: macroFrames.count)
      case (.variable, .variable(let name)): bindings[parameter.name] = .rename(name)
      case (.map, .map(let name, let keys, false)) where keys.isEmpty: bindings[parameter.name] = .rename(name)
      case (.variable, _), (.map, _):
        let what = parameter.kind == .variable ? "a scratch variable such as '$x'" : "a map such as '@m', without a key"
        diagnostics.append(
          .error(arg.span, "macro '\(definition.name)' takes \(what) for '\(parameter.name)'",
                 hint: "pass \(what), or declare the parameter without a sigil to take any expression", notes: definedHere))
        return missing(at: call)
      }
    }
    macroExpansions.append(MacroExpansion(name: definition.name, body: definition.body, call: call))
    let body = parseMacroBody(definition, frame: MacroFrame(name: definition.name, bindings: bindings, isDefinitionCheck: false))
    // Spanning the call, so that as another macro's argument the call's text is what is parsed again.
    return expr(.block(Block(span: call, statements: []), value: body), call)
  }

  /// An identifier inside a macro's body that names an expression parameter: the argument, parsed
  /// again where the call wrote it. Nil when `name` is no parameter of the innermost macro.
  mutating func macroArgument(_ name: String, at span: SourceSpan) -> Expr? {
    guard let frame = macroFrames.last, let binding = frame.bindings[name] else { return nil }
    switch binding {
    case .placeholder: return missing(at: span)
    case .rename(let renamed): return expr(.identifier(renamed), span)
    case .expression(let start, let frameDepth):
      let saved = (lexer, token, terminator, nesting, macroFrames)
      lexer.position = Int(start)
      advance()
      (terminator, nesting) = (nil, 0)
      macroFrames.removeLast(macroFrames.count - frameDepth)
      let value = parseExpression()
      (lexer, token, terminator, nesting, macroFrames) = saved
      return value
    }
  }

  /// A `$variable` or `@map` name inside a macro's body: the caller's name for a parameter, a name
/// of the macro's own for another variable. A map
  /// that is no parameter is refused (bpftrace's macros are hygienic: a body reaches only the maps
  /// passed in), once, where the macro is defined.
  mutating func macroName(_ name: String, at span: SourceSpan) -> String {
    guard let frame = macroFrames.last else { return name }
    switch frame.bindings[name] {
    case .rename(let renamed): return renamed
    case .placeholder, .expression: return name
    case nil:
      // A variable the body makes is its own (bpftrace's hygiene): named apart from the caller's.
      if name.hasPrefix("$") && !frame.isDefinitionCheck { return "\(name) (in macro \(frame.name))" }
      if name.hasPrefix("@") && frame.isDefinitionCheck {
        diagnostics.append(
          .error(span, "macro '\(frame.name)' uses the map '\(name)', which is not one of its parameters",
                 hint: "pass the map in: 'macro \(frame.name)(…, \(name))'"))
      }
      return name
    }
  }
}

extension MacroExpansion {
  /// `diagnostics` with, on each one inside a macro's body, a note at the call that expanded it
  /// (the first such call: the body's nodes carry the body's spans, whichever call made them).
  public static func noting(_ expansions: [MacroExpansion], in diagnostics: [Diagnostic]) -> [Diagnostic] {
    guard !expansions.isEmpty else { return diagnostics }
    // One expansion per macro body (the first), so the search is over macros, not calls.
    var seen = Set<UInt32>()
    let firstCalls = expansions.filter { seen.insert($0.body.start).inserted }
    return diagnostics.map { diagnostic in
      guard let expansion = firstCalls.first(where: { $0.body.start <= diagnostic.span.start && diagnostic.span.end <= $0.body.end })
      else { return diagnostic }
      var noted = diagnostic
      noted.notes.append(.init(span: expansion.call, message: "in the expansion of macro '\(expansion.name)' here"))
      return noted
    }
  }
}
