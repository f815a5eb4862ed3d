import ScryLanguage

/// Lowers each probe block of a checked program into the action IR. Types and names were settled
/// by the checker; this decides how each value is computed (integer or bytes, from the record,
/// a map or a variable). Whatever the runtime cannot evaluate becomes a diagnostic with its span,
/// so `--dry-run` and `--plan` refuse it: nothing is lowered to a silent zero.
struct ActionLowering {
  let program: CheckedProgram
  /// Index of each map in `Plan.maps`, by name.
  let mapIndices: [String: Int]
  /// Values the kernel copies into the record at the event (fetch arguments, pointer data).
  let fetched: [NodeID: FetchedValue]
  /// Byte offset of each variable slot in the variable area.
  let variableOffsets: [Int]
  let variablesSize: Int
  private(set) var diagnostics: [Diagnostic] = []

  /// Where `span` is in the script, for the runtime's `-k` warnings.
  func site(_ span: SourceSpan) -> SourceSite { SourceSite(span: span) }

  init(program: CheckedProgram, fetched: [NodeID: FetchedValue]) {
    self.program = program
    self.fetched = fetched
    var indices: [String: Int] = [:]
    for (index, map) in program.maps.enumerated() { indices[map.name] = index }
    self.mapIndices = indices
    var offsets: [Int] = []
    var size = 0
    for type in program.variableTypes {
      offsets.append(size)
      size += (Swift.max(type.byteSize, 8) + 7) & ~7
    }
    self.variableOffsets = offsets
    self.variablesSize = size
  }

  mutating func lower(_ block: ProbeBlock) -> ProbeAction {
    let header = block.specs.map(\.text).joined(separator: ", ")
    return ProbeAction(header: header, predicate: block.predicate.map { int($0) }, body: statements(block.body))
  }

  // MARK: Statements

  mutating func statements(_ block: Block) -> [IRStatement] {
    block.statements.compactMap { statement($0) }
  }

  mutating func statement(_ stmt: Stmt) -> IRStatement? {
    switch stmt.kind {
    case .expression(let e):
      return expressionStatement(e)
    case .assign(let target, let op, let value):
      return assignment(target: target, op: op, value: value)
    case .letDecl(_, _, _, let value):
      guard let value, let slot = declaredSlot(stmt) else { return nil }
      return storeVariable(slot: slot, value: value)
    case .ifElse(let condition, let then, let elseBranch):
      return .ifElse(int(condition), then: statements(then), otherwise: elseBranch.map { statements($0) })
    case .unroll(let count, let body):
      return .loop(condition: nil, count: int(count), body: statements(body))
    case .whileLoop(let condition, let body):
      return .loop(condition: int(condition), count: nil, body: statements(body))
    case .forRange(_, _, let start, let end, let body):
      guard let slot = declaredSlot(stmt) else { return missingResolution(stmt.span) }
      return .rangeLoop(offset: variableOffsets[slot], start: int(start), end: int(end), body: statements(body))
    case .forMap(_, _, let mapExpr, let body):
      guard let slot = declaredSlot(stmt), let map = mapIndex(mapExpr) else { return missingResolution(stmt.span) }
      return .mapLoop(
        map: map, offset: variableOffsets[slot], body: statements(body), order: program.program.mapLoopOrders[stmt.id])
    case .breakLoop: return .flow(.breakLoop)
    case .continueLoop: return .flow(.continueLoop)
    case .returnProbe: return .flow(.returnProbe)
    case .block(let b): return .block(statements(b))
    }
  }

  /// The variable a `let` or `for` declares: the checker records it on the statement's id.
  func declaredSlot(_ stmt: Stmt) -> Int? {
    if case .variable(let slot)? = program.resolutions[stmt.id] { return slot }
    return nil
  }

  mutating func storeVariable(slot: Int, value: Expr) -> IRStatement {
    let type = program.variableTypes[slot]
    let offset = variableOffsets[slot]
    if Self.isIntLike(type) { return .storeVariable(offset: offset, int(value)) }
    return .storeVariableBytes(offset: offset, bytes(value, as: type))
  }

  /// The right side of `x op= v`: for a pointer `p += n` moves by whole pointees, as in C.
  private mutating func updateOperand(_ value: Expr, op: BinaryOperator, type: ScryType) -> IntExpr {
    let step = program.cTypes.step(ofPointer: type)
    guard op == .add || op == .subtract, step > 1 else { return int(value) }
    return .binary(.mul, int(value), .constant(UInt64(step)), isSigned: true)
  }

  mutating func assignment(target: Expr, op: BinaryOperator?, value: Expr) -> IRStatement? {
    switch program.resolutions[target.id] {
    case .variable(let slot)?:
      if let op {
        guard let operation = updateOperation(op, type: program.variableTypes[slot], value: value, at: target.span) else { return nil }
        let operand = updateOperand(value, op: op, type: program.variableTypes[slot])
        return .evaluate(
          .variableUpdate(offset: variableOffsets[slot], operation: operation, operand: operand, returnsOld: false))
      }
      return storeVariable(slot: slot, value: value)
    case .map(let name)?:
      guard let map = mapIndices[name], let info = program.map(named: name) else { return missingResolution(target.span) }
      let key = mapKey(target, info: info)
      if case .aggregate(let kind) = info.valueType {
        guard case .call(_, _, let args) = value.kind, program.function(of: value)?.isAggregation == true else {
          return unsupported(value.span, "only an aggregation such as 'count()' can be assigned to '\(name)'")
        }
        // lhist's bounds are part of the kind: the operand is the first argument (none for count()).
        return .aggregate(map: map, key: key, kind: kind, operand: args.first.map { int($0) })
      }
      if let op {
        guard let operation = updateOperation(op, type: info.valueType, value: value, at: target.span) else { return nil }
        let operand = updateOperand(value, op: op, type: info.valueType)
        return .evaluate(.mapUpdate(map: map, key: key, operation: operation, operand: operand, returnsOld: false))
      }
      if Self.isIntLike(info.valueType) { return .mapStore(map: map, key: key, int(value)) }
      return .mapStoreBytes(map: map, key: key, bytes(value, as: info.valueType))
    default:
      return unsupported(target.span, "this assignment target cannot be evaluated")
    }
  }

  mutating func updateOperation(_ op: BinaryOperator, type: ScryType, value: Expr, at span: SourceSpan) -> UpdateOperation? {
    guard let intOp = IntOperator(op) else {
      unsupported(span, "'\(op.rawValue)=' is not an update operator")
      return nil
    }
    return UpdateOperation(op: intOp, isSigned: program.program.integerSigns.updateIsSigned(op, type, program.type(of: value)))
  }

  mutating func expressionStatement(_ e: Expr) -> IRStatement? {
    if case .block(let body, let value) = e.kind {
      return .block(statements(body) + (value.flatMap { expressionStatement($0) }.map { [$0] } ?? []))
    }
    // An `if` expression (a macro's body, say) used for its effects: the branch taken runs.
    if case .ternary(let condition, let a, let b) = e.kind, !Self.isIntLike(program.type(of: e)) {
      return .ifElse(
        int(condition), then: expressionStatement(a).map { [$0] } ?? [], otherwise: expressionStatement(b).map { [$0] } ?? [])
    }
    if let function = program.function(of: e), case .call(_, _, let args) = e.kind,
      let effect = effectCall(function, args, e)
    {
      return effect
    }
    let type = program.type(of: e)
    if Self.isIntLike(type) { return .evaluate(int(e)) }
    // A byte value on its own has no effect, but it must still be something the runtime can compute.
    _ = bytes(e, as: nil)
    return nil
  }

  // MARK: Maps

  func mapIndex(_ e: Expr) -> Int? {
    if case .map(let name)? = program.resolutions[e.id] { return mapIndices[name] }
    return nil
  }

  mutating func mapKey(_ target: Expr, info: MapInfo) -> [BytesExpr] {
    guard case .map(_, let keys, _) = target.kind else { return [] }
    return keyComponents(keys, info: info)
  }

  /// Key expressions laid out as the map's key types. A single tuple key spreads over the components.
  mutating func keyComponents(_ keys: [Expr], info: MapInfo) -> [BytesExpr] {
    if keys.count == info.keyTypes.count {
      return zip(keys, info.keyTypes).map { bytes($0, as: $1) }
    }
    if keys.count == 1, info.keyTypes.count > 1 {
      return [bytes(keys[0], as: .tuple(info.keyTypes))]
    }
    return keys.map { value($0) }
  }

  // MARK: Diagnostics

  @discardableResult
  mutating func unsupported(_ span: SourceSpan, _ message: String) -> IRStatement? {
    diagnostics.append(.error(span, message, hint: "see docs/language.md for what this build evaluates"))
    return nil
  }

  /// A name the checker should have resolved but did not: a bug in Scry, reported, not hidden.
  @discardableResult
  mutating func missingResolution(_ span: SourceSpan) -> IRStatement? {
    diagnostics.append(.error(span, "internal error: this name was not resolved by the checker (a bug in Scry)"))
    return nil
  }

  // MARK: Types

  static func isIntLike(_ type: ScryType) -> Bool {
    switch type {
    case .integer, .boolean, .pointer: return true
    case .symbol(let isKernel): return isKernel
    default: return false
    }
  }

  static func isSigned(_ type: ScryType) -> Bool { IntegerSigns.isSigned(type) }
}
