/// The program-wide facts lowering needs before any body: which globals are arrays or statistics,
/// which extractors each statistic is read through, and which are written but never read (those
/// SystemTap prints at exit).
extension StapLowering {
  /// Calls `body` on every expression under `statement`, outermost first.
  func visit(_ statement: StapStmt, _ body: (StapExpr) -> Void) {
    func walk(_ s: StapStmt) {
      switch s.kind {
      case .block(let list): list.forEach(walk)
      case .expression(let e), .delete(let e): walkExpr(e)
      case .ifElse(let c, let t, let o):
        walkExpr(c)
        walk(t)
        if let o { walk(o) }
      case .whileLoop(let c, let b):
        walkExpr(c)
        walk(b)
      case .forLoop(let a, let b, let c, let d):
        [a, b, c].compactMap { $0 }.forEach(walkExpr)
        walk(d)
      case .foreach(_, _, _, _, _, let limit, let b):
        if let limit { walkExpr(limit) }
        walk(b)
      case .returnValue(let e): if let e { walkExpr(e) }
      case .tryCatch(let b, _, let h):
        walk(b)
        walk(h)
      case .next, .breakLoop, .continueLoop, .empty: break
      }
    }
    func walkExpr(_ e: StapExpr) {
      body(e)
      switch e.kind {
      case .field(let a, _), .unary(_, let a), .update(let a, _, _): walkExpr(a)
      case .index(_, _, let list), .call(_, _, let list), .extractor(_, _, let list), .membership(let list, _, _):
        list.forEach(walkExpr)
      case .binary(_, let a, let b), .assign(_, let a, let b):
        walkExpr(a)
        walkExpr(b)
      case .ternary(let a, let b, let c):
        walkExpr(a)
        walkExpr(b)
        walkExpr(c)
      case .integer, .string, .name, .target, .missing: break
      }
    }
    walk(statement)
  }

  /// The global an lvalue or array reference names, if it is one.
  func globalName(_ e: StapExpr) -> String? {
    switch e.kind {
    case .name(let n) where globals[n] != nil: return n
    case .index(let n, _, _) where globals[n] != nil: return n
    default: return nil
    }
  }

  mutating func analyse(_ body: StapStmt) {
    var reads: [String] = []
    var writes: [(String, StapExpr, StapExpr?, String)] = []
    var extractors: [(String, String, [StapExpr])] = []
    var arrays: [String] = []
    var writeTargets = Set<ObjectIdentifier>()
    visit(body) { e in
      switch e.kind {
      case .assign(let op, let target, let value):
        if let g = globalName(target) {
          writes.append((g, target, value, op))
          writeTargets.insert(ObjectIdentifier(target))
        }
      case .update(let target, _, _):
        if let g = globalName(target) {
          writes.append((g, target, nil, "++"))
          writeTargets.insert(ObjectIdentifier(target))
        }
      case .extractor(let name, _, let args):
        if let first = args.first, let g = globalName(first) {
          extractors.append((g, name, args))
          writeTargets.insert(ObjectIdentifier(first))
          reads.append(g)
        }
      case .membership(_, let array, _): reads.append(array)
      case .name(let n), .index(let n, _, _):
        if globals[n] != nil && !writeTargets.contains(ObjectIdentifier(e)) { reads.append(n) }
      default: break
      }
      if case .index(let n, _, _) = e.kind, globals[n] != nil { arrays.append(n) }
    }
    visitForeach(body) { arrays.append($0); reads.append($0) }
    visitDeletes(body) { writeTargets.insert(ObjectIdentifier($0)) }
    for n in reads { globals[n]?.isRead = true }
    for n in arrays { globals[n]?.isArray = true }
    for (g, target, value, op) in writes {
      globals[g]?.isWritten = true
      if op == "<<<" { globals[g]?.isStatistic = true }
      if op == "=", let value, globals[g]?.kind == .unknown {
        let k = staticKind(value)
        globals[g]?.kind = k
      }
      if op == "++" || (op != "=" && op != "<<<" && op != ".=") { globals[g]?.kind = .integer }
      if op == ".=" { globals[g]?.kind = .string }
      if case .index(_, _, let keys) = target.kind, globals[g]?.keyKinds.isEmpty == true {
        let kinds = keys.map(staticKind)
        globals[g]?.keyKinds = kinds
      }
    }
    for (g, name, args) in extractors {
      globals[g]?.extractors.insert(name)
      if name == "hist_linear" { globals[g]?.linear = Array(args.dropFirst()) }
      if name == "variance", args.count > 1, case .integer(let shift) = args[1].kind {
        let kept = globals[g]?.varianceShift ?? 0
        globals[g]?.varianceShift = max(kept, shift)
      }
    }
  }

  func visitForeach(_ s: StapStmt, _ body: (String) -> Void) {
    switch s.kind {
    case .block(let list): list.forEach { visitForeach($0, body) }
    case .ifElse(_, let t, let o):
      visitForeach(t, body)
      if let o { visitForeach(o, body) }
    case .whileLoop(_, let b), .forLoop(_, _, _, let b): visitForeach(b, body)
    case .tryCatch(let b, _, let h):
      visitForeach(b, body)
      visitForeach(h, body)
    case .foreach(_, _, let array, _, _, _, let b):
      body(array)
      visitForeach(b, body)
    default: break
    }
  }

  func visitDeletes(_ s: StapStmt, _ body: (StapExpr) -> Void) {
    switch s.kind {
    case .block(let list): list.forEach { visitDeletes($0, body) }
    case .ifElse(_, let t, let o):
      visitDeletes(t, body)
      if let o { visitDeletes(o, body) }
    case .whileLoop(_, let b), .forLoop(_, _, _, let b), .foreach(_, _, _, _, _, _, let b): visitDeletes(b, body)
    case .tryCatch(let b, _, let h):
      visitDeletes(b, body)
      visitDeletes(h, body)
    case .delete(let e): body(e)
    default: break
    }
  }

  /// A value's kind from its form alone (no locals): literals and tapset functions.
  func staticKind(_ e: StapExpr) -> Kind {
    switch e.kind {
    case .string: return .string
    case .integer, .membership, .update, .extractor: return .integer
    case .binary(let op, let a, _):
      if op == "." { return .string }
      return op == "+" || op == "-" ? (staticKind(a) == .string ? .unknown : .integer) : .integer
    case .unary: return .integer
    case .call(let name, _, _):
      if let f = TapsetFunction(rawValue: name) { return f.returnsString || f.returnsStack ? .string : .integer }
      return .unknown
    case .name(let n): return globals[n]?.kind ?? .unknown
    case .index(let n, _, _): return globals[n]?.kind ?? .unknown
    case .ternary(_, let a, _): return staticKind(a)
    default: return .unknown
    }
  }
}
