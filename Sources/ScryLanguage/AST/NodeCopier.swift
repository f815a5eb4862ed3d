/// A deep copy of a probe block with fresh node ids, so the checker's side tables (keyed by id)
/// can type the copy apart from the original.
///
/// With `keepsIDs`, a copy keeps its nodes' ids (side tables keyed by them, such as
/// `mapLoopOrders`, stay right) and only nodes it makes get fresh ones: a rewrite, not a twin.
struct NodeCopier {
  private(set) var nextID: UInt32
  var keepsIDs = false
  /// Expressions to replace (uprobe `args->n` → `(int32 *)arg0`).
  var replacement: ((Expr) -> Replacement?)? = nil

  enum Replacement {
    /// `(type)name`: a cast of a builtin.
    case cast(TypeName, builtin: String)
    /// A node the checker ignores, where an error was already reported.
    case missing
  }

  init(nextID: UInt32, keepsIDs: Bool = false) {
    self.nextID = nextID
    self.keepsIDs = keepsIDs
  }

  mutating func probeBlock(_ probe: ProbeBlock) -> ProbeBlock {
    ProbeBlock(
      span: probe.span, specs: probe.specs, predicate: probe.predicate.map { expression($0) }, body: block(probe.body),
      isAngleBlock: probe.isAngleBlock)
  }

  mutating func block(_ block: Block) -> Block {
    Block(span: block.span, statements: block.statements.map { statement($0) })
  }

  mutating func statement(_ stmt: Stmt) -> Stmt {
    let kind: Stmt.Kind
    switch stmt.kind {
    case .expression(let e): kind = .expression(expression(e))
    case .assign(let target, let op, let value): kind = .assign(target: expression(target), op: op, value: expression(value))
    case .letDecl(let name, let nameSpan, let type, let value):
      kind = .letDecl(name: name, nameSpan: nameSpan, type: type, value: value.map { expression($0) })
    case .ifElse(let condition, let then, let elseBranch):
      kind = .ifElse(condition: expression(condition), then: block(then), elseBranch: elseBranch.map { block($0) })
    case .unroll(let count, let body): kind = .unroll(count: expression(count), body: block(body))
    case .whileLoop(let condition, let body): kind = .whileLoop(condition: expression(condition), body: block(body))
    case .forMap(let variable, let variableSpan, let map, let body):
      kind = .forMap(variable: variable, variableSpan: variableSpan, map: expression(map), body: block(body))
    case .forRange(let variable, let variableSpan, let start, let end, let body):
      kind = .forRange(variable: variable, variableSpan: variableSpan, start: expression(start), end: expression(end), body: block(body))
    case .breakLoop, .continueLoop, .returnProbe: kind = stmt.kind
    case .block(let inner): kind = .block(block(inner))
    }
    return Stmt(id: keepsIDs ? stmt.id : fresh(), span: stmt.span, kind: kind)
  }

  mutating func expression(_ e: Expr) -> Expr {
    switch replacement?(e) {
    case .cast(let type, let name)?:
      let inner = Expr(id: fresh(), span: e.span, kind: .identifier(name))
      return Expr(id: keepsIDs ? e.id : fresh(), span: e.span, kind: .cast(type, inner))
    case .missing?:
      return Expr(id: keepsIDs ? e.id : fresh(), span: e.span, kind: .missing)
    case nil:
      break
    }
    let kind: Expr.Kind
    switch e.kind {
    case .integer, .string, .boolean, .positional, .positionalCount, .identifier, .variable, .sizeofType, .offsetof,
      .wildcard, .missing:
      kind = e.kind
    case .map(let name, let keys, let isBare): kind = .map(name: name, keys: keys.map { expression($0) }, isBare: isBare)
    case .call(let name, let nameSpan, let args): kind = .call(name: name, nameSpan: nameSpan, args: args.map { expression($0) })
    case .unary(let op, let a): kind = .unary(op, expression(a))
    case .binary(let op, let a, let b): kind = .binary(op, expression(a), expression(b))
    case .ternary(let a, let b, let c): kind = .ternary(expression(a), expression(b), expression(c))
    case .field(let a, let name, let isArrow): kind = .field(expression(a), name: name, isArrow: isArrow)
    case .tupleIndex(let a, let i): kind = .tupleIndex(expression(a), i)
    case .index(let a, let b): kind = .index(expression(a), expression(b))
    case .tuple(let elements): kind = .tuple(elements.map { expression($0) })
    case .cast(let type, let a): kind = .cast(type, expression(a))
    case .update(let a, let isIncrement, let isPrefix): kind = .update(expression(a), isIncrement: isIncrement, isPrefix: isPrefix)
    case .block(let inner, let value): kind = .block(block(inner), value: value.map { expression($0) })
    }
    return Expr(id: keepsIDs ? e.id : fresh(), span: e.span, kind: kind)
  }

  private mutating func fresh() -> NodeID {
    defer { nextID += 1 }
    return NodeID(nextID)
  }
}
