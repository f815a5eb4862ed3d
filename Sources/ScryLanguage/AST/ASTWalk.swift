/// Generic pre-order traversal of the tree, for passes that only look (planner analyses, tools).
/// Iterative, so no script can exhaust the stack.
extension Expr {
  /// Direct sub-expressions, left to right.
  public var children: [Expr] {
    switch kind {
    case .integer, .string, .boolean, .positional, .positionalCount, .identifier, .variable, .sizeofType, .offsetof,
      .wildcard, .missing:
      return []
    case .map(_, let keys, _): return keys
    case .call(_, _, let args): return args
    case .unary(_, let e), .field(let e, _, _), .tupleIndex(let e, _), .cast(_, let e), .update(let e, _, _):
      return [e]
    case .binary(_, let a, let b), .index(let a, let b): return [a, b]
    case .ternary(let a, let b, let c): return [a, b, c]
    case .tuple(let elements): return elements
    case .block(let block, let value):
      return block.allStatements().flatMap(\.expressions) + (value.map { [$0] } ?? [])
    }
  }
}

extension Stmt {
  /// Expressions held directly by this statement (not those of nested blocks).
  public var expressions: [Expr] {
    switch kind {
    case .expression(let e): return [e]
    case .assign(let target, _, let value): return [target, value]
    case .letDecl(_, _, _, let value): return value.map { [$0] } ?? []
    case .ifElse(let condition, _, _), .whileLoop(let condition, _): return [condition]
    case .unroll(let count, _): return [count]
    case .forMap(_, _, let map, _): return [map]
    case .forRange(_, _, let start, let end, _): return [start, end]
    case .breakLoop, .continueLoop, .returnProbe, .block: return []
    }
  }

  /// Blocks nested in this statement.
  public var blocks: [Block] {
    switch kind {
    case .ifElse(_, let then, let elseBranch): return [then] + (elseBranch.map { [$0] } ?? [])
    case .unroll(_, let body), .whileLoop(_, let body), .forMap(_, _, _, let body), .forRange(_, _, _, _, let body):
      return [body]
    case .block(let b): return [b]
    default: return []
    }
  }
}

extension Block {
  /// Every statement in this block and nested blocks, pre-order.
  public func allStatements() -> [Stmt] {
    var result: [Stmt] = []
    var pending: [Block] = [self]
    while let block = pending.popLast() {
      for stmt in block.statements {
        result.append(stmt)
        pending.append(contentsOf: stmt.blocks)
      }
    }
    return result
  }
}

/// Calls `body` for every expression under `roots`, pre-order.
public func forEachExpression(in roots: [Expr], _ body: (Expr) -> Void) {
  visitExpressions(in: roots) { e in
    body(e)
    return false
  }
}

/// Calls `visit` for the expressions under `roots`, pre-order; where it returns true (it took the
/// expression whole), the expression's parts are not visited.
public func visitExpressions(in roots: [Expr], _ visit: (Expr) -> Bool) {
  var pending = roots.reversed() as [Expr]
  while let e = pending.popLast() {
    if visit(e) { continue }
    pending.append(contentsOf: e.children.reversed())
  }
}

extension ProbeBlock {
  /// The predicate and every statement's own expressions, in order.
  var expressionRoots: [Expr] {
    var roots: [Expr] = predicate.map { [$0] } ?? []
    for stmt in body.allStatements() { roots.append(contentsOf: stmt.expressions) }
    return roots
  }

  /// Every expression of the predicate and the body.
  public func forEachExpression(_ body: (Expr) -> Void) {
    ScryLanguage.forEachExpression(in: expressionRoots, body)
  }

  /// The expressions of the predicate and the body, pre-order, skipping the parts of one `visit`
  /// took whole (returned true for).
  public func visitExpressions(_ visit: (Expr) -> Bool) {
    ScryLanguage.visitExpressions(in: expressionRoots, visit)
  }
}
