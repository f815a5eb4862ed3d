/// `str()` of a pointer kept in a map, as bpftrace's tools write it:
///
///     tracepoint:syscalls:sys_enter_openat { @filename[tid] = args->filename; }
///     tracepoint:syscalls:sys_exit_openat  { printf("%s\n", str(@filename[tid])); }
///
/// bpftrace reads the string when `str()` runs, in the exit probe. Scry reads memory only at the
/// event that holds the pointer (its capture programs copy it there), so this pass moves the read
/// to where the pointer is stored: every `@m[k] = v` gains `str(@m)[k] = str(v)`, into an internal
/// map of strings keyed alike, and `str(@m[k])` reads that map. For a pointer stored on entry and
/// read on return (the pattern of every tool that does this) both read the same bytes, unless the
/// traced program changes them during the call. `delete` and `clear` of `@m` follow to the
/// internal map; it never prints.
///
/// Only maps whose every write is a plain assignment of an expression without effects are moved:
/// pointer arithmetic on the stored value (`@m[k] += 8`) or a value with calls leaves the program
/// as written, and the checker then refuses the `str()` with its location.
enum PointerStringMaps {
  /// The name of the internal map holding the strings of `map`'s pointers; not a name a script can
  /// write, so it cannot collide with one.
  static func stringMapName(of map: String) -> String { "str(\(map))" }

  static func rewrite(_ program: Program) -> Program {
    var candidates = Set<String>()
    var blocked = Set<String>()
    for probe in program.probes {
      for stmt in probe.body.allStatements() { survey(stmt, candidates: &candidates, blocked: &blocked) }
      if let predicate = probe.predicate { surveyReads(predicate, into: &candidates) }
    }
    let maps = candidates.subtracting(blocked)
    guard !maps.isEmpty else { return program }
    var rewriter = Rewriter(maps: maps, nextID: UInt32(program.nodeCount))
    let probes = program.probes.map { probe in
      ProbeBlock(
        span: probe.span, specs: probe.specs, predicate: probe.predicate.map { rewriter.expression($0) },
        body: rewriter.block(probe.body), isAngleBlock: probe.isAngleBlock)
    }
    return Program(
      source: program.source, probes: probes, nodeCount: Int(rewriter.nextID), declarations: program.declarations,
      mapLoopOrders: program.mapLoopOrders, printsMapsAtExit: program.printsMapsAtExit,
      histogramStyle: program.histogramStyle, config: program.config, mapDeclarations: program.mapDeclarations,
      macroExpansions: program.macroExpansions,
      internalMaps: program.internalMaps.union(maps.map(stringMapName(of:))))
  }

  /// Maps read by `str(@m[…])` become candidates; maps written other than by `@m[k] = v` with `v`
  /// free of effects are blocked.
  private static func survey(_ stmt: Stmt, candidates: inout Set<String>, blocked: inout Set<String>) {
    for e in stmt.expressions { surveyReads(e, into: &candidates) }
    switch stmt.kind {
    case .assign(let target, let op, let value):
      if case .map(let name, _, _) = target.kind, op != nil || !isFreeOfEffects(value) { blocked.insert(name) }
    default: break
    }
    for e in stmt.expressions {
      walk(e) { node in
        if case .update(let target, _, _) = node.kind, case .map(let name, _, _) = target.kind { blocked.insert(name) }
      }
    }
  }

  private static func surveyReads(_ e: Expr, into candidates: inout Set<String>) {
    walk(e) { node in
      if let name = stringRead(node)?.map { candidates.insert(name) }
    }
  }

  /// The map whose element `node` reads as a string: `str(@m[k])` or `str(@m[k], n)`.
  static func stringRead(_ node: Expr) -> (map: String, element: Expr, length: Expr?)? {
    guard case .call("str", _, let args) = node.kind, (1...2).contains(args.count),
      case .map(let name, _, _) = args[0].kind
    else { return nil }
    return (name, args[0], args.count == 2 ? args[1] : nil)
  }

  private static func walk(_ e: Expr, _ visit: (Expr) -> Void) {
    var pending = [e]
    while let node = pending.popLast() {
      visit(node)
      pending.append(contentsOf: node.children)
    }
  }

  /// Reading `value` twice gives the same result and does nothing else.
  private static func isFreeOfEffects(_ value: Expr) -> Bool {
    var free = true
    walk(value) { node in
      switch node.kind {
      case .call, .update, .block: free = false
      default: break
      }
    }
    return free
  }

  private struct Rewriter {
    let maps: Set<String>
    var nextID: UInt32

    mutating func block(_ block: Block) -> Block {
      Block(span: block.span, statements: block.statements.flatMap { statements(for: $0) })
    }

    /// The statement rewritten, followed by what keeps the string map in step with it.
    mutating func statements(for stmt: Stmt) -> [Stmt] {
      switch stmt.kind {
      case .expression(let e):
        var result = [Stmt(id: stmt.id, span: stmt.span, kind: .expression(expression(e)))]
        if case .call(let function, let nameSpan, let args) = e.kind, ["delete", "clear", "zero"].contains(function),
          let first = args.first, case .map(let name, let keys, let isBare) = first.kind, maps.contains(name)
        {
          // `zero` of pointers leaves null pointers, whose strings are empty: the string map is cleared.
          let call = function == "delete" ? "delete" : "clear"
          let target = make(.map(name: stringMapName(of: name), keys: keys.map { copy($0) }, isBare: isBare), first.span)
          let rest = call == "delete" ? args.dropFirst().map { copy($0) } : []
          result.append(make(statement: .expression(make(.call(name: call, nameSpan: nameSpan, args: [target] + rest), e.span)), stmt.span))
        }
        return result
      case .assign(let target, let op, let value):
        var result = [Stmt(id: stmt.id, span: stmt.span, kind: .assign(target: expression(target), op: op, value: expression(value)))]
        if op == nil, case .map(let name, let keys, let isBare) = target.kind, maps.contains(name) {
          let stringTarget = make(.map(name: stringMapName(of: name), keys: keys.map { copy($0) }, isBare: isBare), target.span)
          let read = make(.call(name: "str", nameSpan: value.span, args: [copy(value)]), value.span)
          result.append(make(statement: .assign(target: stringTarget, op: nil, value: read), stmt.span))
        }
        return result
      case .letDecl(let name, let nameSpan, let type, let value):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .letDecl(name: name, nameSpan: nameSpan, type: type, value: value.map { expression($0) }))]
      case .ifElse(let condition, let then, let elseBranch):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .ifElse(condition: expression(condition), then: block(then), elseBranch: elseBranch.map { block($0) }))]
      case .unroll(let count, let body):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .unroll(count: count, body: block(body)))]
      case .whileLoop(let condition, let body):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .whileLoop(condition: expression(condition), body: block(body)))]
      case .forMap(let variable, let variableSpan, let map, let body):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .forMap(variable: variable, variableSpan: variableSpan, map: map, body: block(body)))]
      case .forRange(let variable, let variableSpan, let start, let end, let body):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .forRange(variable: variable, variableSpan: variableSpan, start: expression(start), end: expression(end), body: block(body)))]
      case .block(let inner):
        return [Stmt(id: stmt.id, span: stmt.span, kind: .block(block(inner)))]
      case .breakLoop, .continueLoop, .returnProbe:
        return [stmt]
      }
    }

    /// `e` with each `str(@m[k])` of a moved map read from its string map; nodes keep their ids.
    mutating func expression(_ e: Expr) -> Expr {
      if let read = PointerStringMaps.stringRead(e), maps.contains(read.map), case .map(let name, let keys, let isBare) = read.element.kind {
        let element = make(.map(name: stringMapName(of: name), keys: keys.map { expression($0) }, isBare: isBare), read.element.span)
        guard let length = read.length, case .call(_, let nameSpan, _) = e.kind else { return element }
        return Expr(id: e.id, span: e.span, kind: .call(name: "str", nameSpan: nameSpan, args: [element, expression(length)]))
      }
      return rebuilt(e) { $0.expression($1) }
    }

    /// A fresh copy of `e` (new ids), for the second place it is evaluated.
    mutating func copy(_ e: Expr) -> Expr {
      let copied = rebuilt(e) { $0.copy($1) }
      return make(copied.kind, copied.span)
    }

    /// `e` with `transform` applied to its children (block expressions are kept whole: they are
    /// never the value or key a moved map is written with).
    private mutating func rebuilt(_ e: Expr, _ transform: (inout Rewriter, Expr) -> Expr) -> Expr {
      let kind: Expr.Kind
      switch e.kind {
      case .integer, .string, .boolean, .positional, .positionalCount, .identifier, .variable, .sizeofType, .offsetof,
        .wildcard, .missing, .block:
        return e
      case .map(let name, let keys, let isBare): kind = .map(name: name, keys: keys.map { transform(&self, $0) }, isBare: isBare)
      case .call(let name, let nameSpan, let args): kind = .call(name: name, nameSpan: nameSpan, args: args.map { transform(&self, $0) })
      case .unary(let op, let a): kind = .unary(op, transform(&self, a))
      case .binary(let op, let a, let b): kind = .binary(op, transform(&self, a), transform(&self, b))
      case .ternary(let a, let b, let c): kind = .ternary(transform(&self, a), transform(&self, b), transform(&self, c))
      case .field(let a, let name, let isArrow): kind = .field(transform(&self, a), name: name, isArrow: isArrow)
      case .tupleIndex(let a, let i): kind = .tupleIndex(transform(&self, a), i)
      case .index(let a, let b): kind = .index(transform(&self, a), transform(&self, b))
      case .tuple(let elements): kind = .tuple(elements.map { transform(&self, $0) })
      case .cast(let type, let a): kind = .cast(type, transform(&self, a))
      case .update(let a, let isIncrement, let isPrefix): kind = .update(transform(&self, a), isIncrement: isIncrement, isPrefix: isPrefix)
      }
      return Expr(id: e.id, span: e.span, kind: kind)
    }

    private mutating func make(_ kind: Expr.Kind, _ span: SourceSpan) -> Expr {
      defer { nextID += 1 }
      return Expr(id: NodeID(nextID), span: span, kind: kind)
    }

    private mutating func make(statement kind: Stmt.Kind, _ span: SourceSpan) -> Stmt {
      defer { nextID += 1 }
      return Stmt(id: NodeID(nextID), span: span, kind: kind)
    }
  }
}
