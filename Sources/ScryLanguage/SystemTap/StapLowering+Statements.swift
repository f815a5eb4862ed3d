extension StapLowering {
  mutating func lowerStatements(_ s: StapStmt) -> [Stmt] {
    if case .block(let list) = s.kind { return list.flatMap { lowerStatement($0) } }
    return lowerStatement(s)
  }

  mutating func lowered(_ s: StapStmt) -> Block { Block(span: s.span, statements: lowerStatements(s)) }

  /// One SystemTap statement as Scry statements: the inlined bodies of the functions it calls first.
  mutating func lowerStatement(_ s: StapStmt) -> [Stmt] {
    var prelude: [Stmt] = []
    let result: [Stmt]
    switch s.kind {
    case .block: result = [stmt(.block(lowered(s)), s.span)]
    case .empty: result = []
    case .expression(let e): result = lowerEffect(e, prelude: &prelude)
    case .ifElse(let condition, let then, let otherwise):
      let c = lowerCondition(condition, prelude: &prelude)
      result = [stmt(.ifElse(condition: c, then: lowered(then), elseBranch: otherwise.map { lowered($0) }), s.span)]
    case .tryCatch(let body, let variable, let handler):
      result = lowerTry(body, variable: variable, handler: handler, span: s.span)
    case .whileLoop(let condition, let body):
      var conditionPrelude: [Stmt] = []
      let c = lowerCondition(condition, prelude: &conditionPrelude)
      if !conditionPrelude.isEmpty { error(condition.span, "a loop's condition cannot call a function with statements") }
      result = [stmt(.whileLoop(condition: c, body: lowered(body)), s.span)]
    case .forLoop(let initial, let condition, let step, let body):
      if contains(body, where: { if case .continueLoop = $0.kind { return true } else { return false } }) {
        error(s.span, "'continue' inside 'for' is not supported", hint: "write the loop with 'while'")
      }
      let start = initial.map { lowerEffect($0, prelude: &prelude) } ?? []
      var conditionPrelude: [Stmt] = []
      let c = condition.map { lowerCondition($0, prelude: &conditionPrelude) } ?? expr(.integer(1), s.span)
      if let condition, !conditionPrelude.isEmpty { error(condition.span, "a loop's condition cannot call a function with statements") }
      var inner = lowerStatements(body)
      if let step { inner += lowerEffect(step, prelude: &inner) }
      result = start + [stmt(.whileLoop(condition: c, body: Block(span: body.span, statements: inner)), s.span)]
    case .foreach(let keys, let value, let array, let arraySpan, let sort, let limit, let body):
      result = lowerForeach(s, keys: keys, value: value, array: array, arraySpan: arraySpan, sort: sort, limit: limit, body: body)
    case .delete(let target): result = lowerDelete(target)
    case .next: result = [stmt(.returnProbe, s.span)]
    case .breakLoop: result = [stmt(.breakLoop, s.span)]
    case .continueLoop: result = [stmt(.continueLoop, s.span)]
    case .returnValue:
      error(s.span, "'return' outside a function", hint: "use 'next' to leave a probe")
      result = []
    }
    // An error() caught inside a loop of a `try` body leaves the loop; this leaves the `try`.
    if let current = tries.last, isLoop(s) {
      let leave = stmt(.breakLoop, s.span)
      let caught = expr(.variable(current.caught), s.span)
      return prelude + result + [stmt(.ifElse(condition: caught, then: Block(span: s.span, statements: [leave]), elseBranch: nil), s.span)]
    }
    return prelude + result
  }

  func isLoop(_ s: StapStmt) -> Bool {
    switch s.kind {
    case .whileLoop, .forLoop, .foreach: return true
    default: return false
    }
  }

  /// `try { body } catch (msg) { handler }`: the body runs inside a loop that runs once, an
  /// `error(m)` in it sets the message and leaves it, and the handler runs when one did. Scry's
  /// actions have no other run-time errors (division by zero is 0, as in bpftrace), so `error()`
  /// is what a `try` catches; an `error()` inside a called function still ends the run.
  mutating func lowerTry(_ body: StapStmt, variable: (name: String, span: SourceSpan)?, handler: StapStmt, span: SourceSpan) -> [Stmt] {
    let leavesLoop = contains(body) { s in
      switch s.kind {
      case .breakLoop, .continueLoop: return true
      default: return false
      }
    }
    if leavesLoop {
      error(body.span, "'break' and 'continue' directly inside 'try' are not supported", hint: "set a variable in the 'try' and leave the loop after it")
    }
    temporaries += 1
    let current = (caught: "$__caught\(temporaries)", message: "$__message\(temporaries)")
    func local(_ name: String) -> Expr { expr(.variable(name), span) }
    var out = [
      stmt(.assign(target: local(current.caught), op: nil, value: expr(.integer(0), span)), span),
      stmt(.assign(target: local(current.message), op: nil, value: expr(.string([]), span)), span),
    ]
    tries.append(current)
    var inner = lowerStatements(body)
    tries.removeLast()
    inner.append(stmt(.breakLoop, span))
    out.append(stmt(.whileLoop(condition: expr(.integer(1), span), body: Block(span: body.span, statements: inner)), span))
    var caught: [Stmt] = []
    if let name = variable?.name {
      locals[name] = .string
      caught.append(stmt(.assign(target: expr(.variable(localName(name)), span), op: nil, value: local(current.message)), span))
    }
    caught += lowerStatements(handler)
    out.append(stmt(.ifElse(condition: local(current.caught), then: Block(span: handler.span, statements: caught), elseBranch: nil), span))
    return out
  }

  func contains(_ s: StapStmt, where predicate: (StapStmt) -> Bool) -> Bool {
    if predicate(s) { return true }
    switch s.kind {
    case .block(let list): return list.contains { contains($0, where: predicate) }
    case .ifElse(_, let t, let o): return contains(t, where: predicate) || (o.map { contains($0, where: predicate) } ?? false)
    default: return false
    }
  }

  mutating func lowerCondition(_ e: StapExpr, prelude: inout [Stmt]) -> Expr { lowerExpr(e, prelude: &prelude) }

  mutating func lowerDelete(_ target: StapExpr) -> [Stmt] {
    guard let g = globalName(target), let use = globals[g] else {
      error(target.span, "'delete' takes a global array, an element of one, or a global")
      return []
    }
    if isNeverWritten(g) { return [] }
    var out: [Stmt] = []
    for extractor in use.isStatistic ? statisticMaps(g).map(Optional.some) : [nil] {
      var prelude: [Stmt] = []
      if case .index(_, _, let keys) = target.kind {
        let map = globalRef(g, extractor: extractor, keys: keys.map { lowerExpr($0, prelude: &prelude) }, span: target.span)
        out += prelude
        out.append(stmt(.expression(expr(.call(name: "delete", nameSpan: target.span, args: [map]), target.span)), target.span))
      } else {
        let map = globalRef(g, extractor: extractor, keys: [], span: target.span)
        let name = use.isArray || use.isStatistic ? "clear" : "delete"
        out.append(stmt(.expression(expr(.call(name: name, nameSpan: target.span, args: [map]), target.span)), target.span))
      }
    }
    return out
  }

  /// The maps that hold a statistic: one per extractor read, `count` always (for `foreach`), and
  /// all five scalar ones when nothing reads it (SystemTap prints them at exit).
  func statisticMaps(_ g: String) -> [String] {
    guard let use = globals[g] else { return [] }
    var set = use.extractors
    set.insert("count")
    // At the prompt a later entry may read any of them: all are kept from the first.
    if !use.isRead || isSession { set.formUnion(["count", "min", "max", "sum"]) }
    // The average is the sum over the count, read when asked for.
    if set.remove("avg") != nil { set.insert("sum") }
    // The variance is read with the exact mean, from the sum.
    if set.contains("variance") { set.insert("sum") }
    return ["count", "sum", "min", "max", "variance", "hist_log", "hist_linear"].filter(set.contains)
  }

  /// `foreach ([a, b] in arr- limit 5) body`: `for ($kv : @arr)` that binds `$a`, `$b` first, with
  /// the order kept beside the loop for the planner.
  mutating func lowerForeach(
    _ s: StapStmt, keys: [(name: String, span: SourceSpan)], value: String?, array: String, arraySpan: SourceSpan,
    sort: StapSort?, limit: StapExpr?, body: StapStmt
  ) -> [Stmt] {
    guard let use = globals[array] else {
      error(arraySpan, "'\(array)' is not a global array", hint: "declare it with 'global \(array)'")
      return []
    }
    // An array nothing adds to is empty: the loop never runs.
    if isNeverWritten(array) { return [] }
    var mapName: String? = nil
    if use.isStatistic {
      mapName = sort?.extractor.map { String($0.dropFirst()) } ?? "count"
      if let m = mapName, !statisticMaps(array).contains(m) || m.hasPrefix("hist") {
        error(arraySpan, "'foreach' cannot sort on '@\(m)' here", hint: "sort on @count, @sum, @min, @max or @avg")
      }
      if value != nil { error(s.span, "'v = [k] in' on a statistic is not supported", hint: "read '@count(\(array)[k])' in the body") }
    }
    temporaries += 1
    let pair = "$__kv\(temporaries)"
    var limitValue: UInt64?
    if let limit {
      if case .integer(let n) = limit.kind { limitValue = n } else { error(limit.span, "'limit' must be a number here") }
    }
    var order: MapLoopOrder?
    if sort != nil || limitValue != nil {
      let key: MapLoopOrder.SortKey? = sort.map { $0.keyIndex.map { .key(element: $0 - 1) } ?? .value }
      order = MapLoopOrder(sortKey: key, descending: sort?.descending ?? false, limit: limitValue)
    }
    var binds: [Stmt] = []
    let multi = keys.count > 1
    for (i, key) in keys.enumerated() {
      var element = expr(.tupleIndex(expr(.variable(pair), key.span), 0), key.span)
      if multi { element = expr(.tupleIndex(element, i), key.span) }
      locals[key.name] = use.keyKinds.indices.contains(i) ? use.keyKinds[i] : .unknown
      binds.append(stmt(.assign(target: expr(.variable(localName(key.name)), key.span), op: nil, value: element), key.span))
    }
    if let value {
      locals[value] = use.kind
      let element = expr(.tupleIndex(expr(.variable(pair), s.span), 1), s.span)
      binds.append(stmt(.assign(target: expr(.variable(localName(value)), s.span), op: nil, value: element), s.span))
    }
    let map = globalRef(array, extractor: mapName, keys: [], span: arraySpan)
    let inner = binds + lowerStatements(body)
    let loop = stmt(.forMap(variable: pair, variableSpan: s.span, map: map, body: Block(span: body.span, statements: inner)), s.span)
    if let order { mapLoopOrders[loop.id] = order }
    return [loop]
  }
}
