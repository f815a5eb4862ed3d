import ScryLanguage
import ScryPlan

/// Compiles each probe block of a checked program into an `Action`: a tree of nodes bound to
/// the session's maps and variable area. Types are settled by the checker; this only lowers.
/// Features the runtime cannot run yet become diagnostics, never silent no-ops.
public struct ActionCompiler {
  let program: CheckedProgram
  let maps: [String: MapStorage]
  /// Values the kernel copied into the record (dynamic probes' fetch arguments), by expression.
  let fetched: [NodeID: FetchedValue]
  /// BPF is not allowed: data behind tracepoint pointers is read from the process instead.
  let readsPointersInProcess: Bool
  /// Byte offset of each variable slot in the machine's variable area.
  public let variableOffsets: [Int]
  public let variablesSize: Int
  public private(set) var diagnostics: [Diagnostic] = []

  public init(
    program: CheckedProgram, maps: [MapStorage], fetched: [NodeID: FetchedValue] = [:], readsPointersInProcess: Bool = false
  ) {
    self.program = program
    self.fetched = fetched
    self.readsPointersInProcess = readsPointersInProcess
    var byName: [String: MapStorage] = [:]
    for map in maps { byName[map.info.name] = map }
    self.maps = byName
    var offsets: [Int] = []
    var size = 0
    for type in program.variableTypes {
      offsets.append(size)
      size += (max(type.byteSize, 8) + 7) & ~7
    }
    self.variableOffsets = offsets
    self.variablesSize = size
  }

  /// One action per probe block, parallel to the program's blocks.
  public mutating func compileAll() -> [Action] {
    program.program.probes.map { compile($0) }
  }

  mutating func compile(_ block: ProbeBlock) -> Action {
    let predicate = block.predicate.map { compileInt($0) }
    let body = compileBlock(block.body)
    return Action(predicate: predicate, body: body.statements, variablesSize: variablesSize)
  }

  // MARK: Statements

  mutating func compileBlock(_ block: Block) -> Sequence {
    Sequence(block.statements.compactMap { compileStatement($0) })
  }

  mutating func compileStatement(_ stmt: Stmt) -> StmtNode? {
    switch stmt.kind {
    case .expression(let e):
      return compileExpressionStatement(e)
    case .assign(let target, let op, let value):
      return compileAssignment(target: target, op: op, value: value, span: stmt.span)
    case .letDecl(_, _, _, let value):
      guard let value, let slot = variableSlot(ofDeclaration: stmt) else { return nil }
      return storeVariable(slot: slot, value: value)
    case .ifElse(let condition, let then, let elseBranch):
      return IfStatement(compileInt(condition), then: compileBlock(then), otherwise: elseBranch.map { compileBlock($0) })
    case .unroll(let count, let body):
      return LoopStatement(condition: nil, count: compileInt(count), body: compileBlock(body))
    case .whileLoop(let condition, let body):
      return LoopStatement(condition: compileInt(condition), count: nil, body: compileBlock(body))
    case .forRange(_, _, let start, let end, let body):
      guard let slot = variableSlot(ofDeclaration: stmt) else { return nil }
      return RangeLoop(offset: variableOffsets[slot], start: compileInt(start), end: compileInt(end), body: compileBlock(body))
    case .forMap(_, _, let mapExpr, let body):
      guard let slot = variableSlot(ofDeclaration: stmt), let map = mapStorage(mapExpr) else { return nil }
      return MapLoop(map: map, offset: variableOffsets[slot], body: compileBlock(body))
    case .breakLoop: return FlowStatement(.breakLoop)
    case .continueLoop: return FlowStatement(.continueLoop)
    case .returnProbe: return FlowStatement(.returnProbe)
    case .block(let b): return compileBlock(b)
    }
  }

  /// The variable a `let` or `for` declares: the checker records it on the statement's id.
  func variableSlot(ofDeclaration stmt: Stmt) -> Int? {
    if case .variable(let slot)? = program.resolutions[stmt.id] { return slot }
    return nil
  }

  mutating func storeVariable(slot: Int, value: Expr) -> StmtNode {
    let type = program.variableTypes[slot]
    let offset = variableOffsets[slot]
    if isIntLike(type) { return VariableStoreInt(offset: offset, value: compileInt(value)) }
    return VariableStoreBytes(offset: offset, value: compileBytes(value, as: type))
  }

  mutating func compileAssignment(target: Expr, op: BinaryOperator?, value: Expr, span: SourceSpan) -> StmtNode? {
    switch program.resolutions[target.id] {
    case .variable(let slot)?:
      if let op {
        let operation = UpdateOperation(op: intOp(op), isSigned: isSigned(program.variableTypes[slot]))
        return ExpressionStatement(
          VariableUpdateInt(offset: variableOffsets[slot], operation: operation, operand: compileInt(value), returnsOld: false))
      }
      return storeVariable(slot: slot, value: value)
    case .map?:
      guard let map = mapStorage(target), let info = program.map(named: map.info.name) else { return nil }
      let key = compileKey(target, info: info)
      if case .aggregate(let kind) = info.valueType, case .call(_, _, let args) = value.kind {
        return MapAggregate(map: map, key: key, kind: kind, operand: args.first.map { compileInt($0) })
      }
      if let op {
        let operation = UpdateOperation(op: intOp(op), isSigned: isSigned(info.valueType))
        return ExpressionStatement(
          MapUpdateInt(map: map, key: key, operation: operation, operand: compileInt(value), returnsOld: false))
      }
      if isIntLike(info.valueType) { return MapStoreInt(map: map, key: key, value: compileInt(value)) }
      return MapStoreBytes(map: map, key: key, value: compileBytes(value, as: info.valueType))
    default:
      unsupported(span, "this assignment target cannot be compiled")
      return nil
    }
  }

  mutating func compileExpressionStatement(_ e: Expr) -> StmtNode? {
    if case .call(let name, let nameSpan, let args) = e.kind, let node = compileCallStatement(name, nameSpan, args, e) {
      return node
    }
    if isIntLike(program.type(of: e)) { return ExpressionStatement(compileInt(e)) }
    // A bytes-valued expression on its own has no effect.
    return nil
  }

  // MARK: Calls with effects

  mutating func compileCallStatement(_ name: String, _ nameSpan: SourceSpan, _ args: [Expr], _ call: Expr) -> StmtNode? {
    switch name {
    case "printf", "cat", "system":
      guard let first = args.first, case .string(let text) = first.kind,
        case .success(let format) = PrintfFormat.parse(text)
      else { return nil }
      let values = args.dropFirst().map { compileValue($0) }
      let tuple = TupleValue(values, type: .tuple(values.map(\.type)))
      let compiled = CompiledPrintf(format: format, argumentTypes: values.map(\.type))
      let effect: PrintfStatement.Effect = name == "printf" ? .print : (name == "cat" ? .catFile : .runCommand)
      return PrintfStatement(printf: compiled, arguments: tuple, effect: effect)
    case "print":
      guard let first = args.first else { return nil }
      if case .map(let mapName)? = program.resolutions[first.id], case .map(_, let keys, _) = first.kind, keys.isEmpty,
        let map = maps[mapName]
      {
        return PrintMapStatement(
          map: map, top: args.count > 1 ? compileInt(args[1]) : nil, divisor: args.count > 2 ? compileInt(args[2]) : nil)
      }
      if case .record(let record) = program.type(of: first) { return PrintRecordStatement(record: record) }
      return PrintValueStatement(compileValue(first))
    case "exit":
      return ExitStatement(code: args.first.map { compileInt($0) })
    case "time":
      var format = Array("%H:%M:%S\n".utf8)
      if let first = args.first, case .string(let text) = first.kind { format = text }
      return TimeStatement(format: format)
    case "clear", "zero":
      guard let first = args.first, let map = mapStorage(first) else { return nil }
      return MapReset(map: map, keepsKeys: name == "zero")
    case "delete":
      guard let first = args.first, let map = mapStorage(first), let info = program.map(named: map.info.name) else {
        return nil
      }
      if args.count == 2 {
        return MapDelete(map: map, key: MapKey(compileKeyComponents([args[1]], info: info)))
      }
      return MapDelete(map: map, key: compileKey(first, info: info))
    case "signal":
      guard let first = args.first else { return nil }
      if case .string(let text) = first.kind {
        return SignalStatement(signal: IntConstant(UInt64(SignalNames.number(of: String(decoding: text, as: UTF8.self)))))
      }
      return SignalStatement(signal: compileInt(first))
    case "join":
      guard let value = fetched[call.id], case .stringArray(let maxCount, let maxLength) = value.layout else {
        unsupported(call.span, "'join()' reads an array of string pointers that is a tracepoint field, such as args.argv")
        return nil
      }
      var separator: [UInt8] = [UInt8(ascii: " ")]
      if args.count == 2, case .string(let text) = args[1].kind { separator = text }
      if readsPointersInProcess, let pointer = value.pointerField {
        return ProcessJoinStatement(pointerOffset: pointer, maxCount: maxCount, maxLength: maxLength, separator: separator)
      }
      return JoinStatement(offset: value.offset, maxCount: maxCount, maxLength: maxLength, separator: separator)
    default:
      return nil
    }
  }

  // MARK: Integer expressions

  mutating func compileInt(_ e: Expr) -> IntNode {
    let type = program.type(of: e)
    if let value = fetched[e.id], case .integer(let byteCount, let isSigned) = value.layout {
      return RecordInteger(offset: value.offset, byteCount: byteCount, isSigned: isSigned)
    }
    switch e.kind {
    case .integer(let v): return IntConstant(v)
    case .boolean(let b): return IntConstant(b ? 1 : 0)
    case .positional(let n):
      let text = n >= 1 && n <= program.positionals.count ? program.positionals[n - 1] : ""
      return IntConstant(parseInteger(text) ?? 0)
    case .positionalCount: return IntConstant(UInt64(program.positionals.count))
    case .identifier, .variable, .map:
      return compileNameAsInt(e)
    case .unary(let op, let operand):
      switch op {
      case .not: return IntUnary(.not, compileInt(operand))
      case .bitNot: return IntUnary(.bitNot, compileInt(operand))
      case .negate: return IntUnary(.negate, compileInt(operand))
      case .deref, .addressOf:
        unsupported(e.span, "memory can be read only in uprobes and kprobes, through arguments, retval and reads of them")
        return IntConstant(0)
      }
    case .binary(let op, let a, let b):
      return compileBinary(op, a, b, resultType: type)
    case .ternary(let c, let a, let b):
      return IntTernary(compileInt(c), compileInt(a), compileInt(b))
    case .field(let base, let name, _):
      return compileFieldInt(base: base, name: name, span: e.span)
    case .tupleIndex(let base, let index):
      guard case .tuple(let elements) = program.type(of: base), index < elements.count else { return IntConstant(0) }
      let offset = elements[..<index].reduce(0) { $0 + $1.byteSize }
      return IntFromBytes(compileBytes(base, as: nil), offset: offset)
    case .cast(_, let operand):
      guard case .integer(let t) = type else { return compileInt(operand) }
      return IntConvert(compileInt(operand), bits: t.bits, isSigned: t.isSigned)
    case .update(let target, let isIncrement, let isPrefix):
      return compileUpdate(target, op: isIncrement ? .add : .subtract, returnsOld: !isPrefix)
    case .sizeofType(let typeName):
      return IntConstant(UInt64(sizeOf(typeName)))
    case .call(let name, _, let args):
      return compileIntCall(name, args, e)
    case .index, .tuple, .string, .missing:
      unsupported(e.span, "this expression cannot be used as an integer here")
      return IntConstant(0)
    }
  }

  mutating func compileBinary(_ op: BinaryOperator, _ a: Expr, _ b: Expr, resultType: ScryType) -> IntNode {
    let ta = program.type(of: a)
    let tb = program.type(of: b)
    if op == .logicalAnd { return LogicalAnd(compileInt(a), compileInt(b)) }
    if op == .logicalOr { return LogicalOr(compileInt(a), compileInt(b)) }
    if (op == .equal || op == .notEqual) && !isIntLike(ta) && !isIntLike(tb) {
      return BytesEqual(compileBytes(a, as: nil), compileBytes(b, as: nil), isNegated: op == .notEqual)
    }
    // Signed unless both sides are unsigned, so `-1 < 0` holds as it does in bpftrace.
    let signed = isSigned(ta) || isSigned(tb)
    return IntBinary(intOp(op), compileInt(a), compileInt(b), isSigned: signed)
  }

  mutating func compileUpdate(_ target: Expr, op: BinaryOperator, returnsOld: Bool) -> IntNode {
    switch program.resolutions[target.id] {
    case .variable(let slot)?:
      let operation = UpdateOperation(op: intOp(op), isSigned: isSigned(program.variableTypes[slot]))
      return VariableUpdateInt(offset: variableOffsets[slot], operation: operation, operand: nil, returnsOld: returnsOld)
    case .map?:
      guard let map = mapStorage(target), let info = program.map(named: map.info.name) else { return IntConstant(0) }
      let operation = UpdateOperation(op: intOp(op), isSigned: isSigned(info.valueType))
      return MapUpdateInt(map: map, key: compileKey(target, info: info), operation: operation, operand: nil, returnsOld: returnsOld)
    default:
      unsupported(target.span, "only maps and variables can be incremented")
      return IntConstant(0)
    }
  }

  mutating func compileNameAsInt(_ e: Expr) -> IntNode {
    switch program.resolutions[e.id] {
    case .builtin(let b)?: return compileBuiltinInt(b, span: e.span)
    case .variable(let slot)?:
      let type = program.variableTypes[slot]
      if isIntLike(type) { return VariableInt(offset: variableOffsets[slot]) }
      return IntFromBytes(VariableBytes(offset: variableOffsets[slot], type: type), offset: 0)
    case .map(let name)?:
      guard let map = maps[name], let info = program.map(named: name) else { return IntConstant(0) }
      var aggregate: AggregateKind?
      if case .aggregate(let kind) = info.valueType { aggregate = kind }
      return MapReadInt(map: map, key: compileKey(e, info: info), aggregate: aggregate)
    case .positional(let n)?:
      let text = n >= 1 && n <= program.positionals.count ? program.positionals[n - 1] : ""
      return IntConstant(parseInteger(text) ?? 0)
    case nil:
      return IntConstant(0)
    }
  }

  mutating func compileBuiltinInt(_ b: Builtin, span: SourceSpan) -> IntNode {
    switch b {
    case .pid: return EventValue(.pid)
    case .tid: return EventValue(.tid)
    case .cpu: return EventValue(.cpu)
    case .nsecs: return EventValue(.nsecs)
    case .elapsed: return EventValue(.elapsed)
    case .cpid: return EventValue(.cpid)
    case .rand: return EventValue(.rand)
    case .uid: return EventValue(.uid)
    case .gid: return EventValue(.gid)
    case .function: return EventValue(.ip)
    case .numaid: return EventValue(.zero)
    case .cgroup: return EventValue(.cgroup)
    default:
      unsupported(span, "this builtin is not available in this build yet")
      return IntConstant(0)
    }
  }

  mutating func compileFieldInt(base: Expr, name: String, span: SourceSpan) -> IntNode {
    guard case .record(let record) = program.type(of: base), let field = record.field(named: name) else {
      unsupported(span, "field '\(name)' cannot be read here")
      return IntConstant(0)
    }
    switch field.type {
    case .integer(let t):
      return RecordInteger(offset: field.offset, byteCount: min(field.size, 8), isSigned: t.isSigned)
    case .boolean, .pointer:
      return RecordInteger(offset: field.offset, byteCount: min(field.size, 8), isSigned: false)
    default:
      unsupported(span, "field '\(name)' of type '\(field.type)' is not an integer")
      return IntConstant(0)
    }
  }

  mutating func compileIntCall(_ name: String, _ args: [Expr], _ e: Expr) -> IntNode {
    switch name {
    case "has_key":
      guard args.count == 2, let map = mapStorage(args[0]), let info = program.map(named: map.info.name) else {
        return IntConstant(0)
      }
      return MapHasKey(map: map, key: MapKey(compileKeyComponents([args[1]], info: info)))
    case "len":
      guard let first = args.first, let map = mapStorage(first) else { return IntConstant(0) }
      return MapLength(map: map)
    case "strncmp":
      guard args.count == 3 else { return IntConstant(0) }
      let limit = Int(clamping: constantInt(args[2]) ?? Int64.max)
      return StringCompare(compileBytes(args[0], as: nil), compileBytes(args[1], as: nil), limit: limit)
    case "strcontains":
      guard args.count == 2 else { return IntConstant(0) }
      return StringContains(compileBytes(args[0], as: nil), compileBytes(args[1], as: nil))
    case "sizeof":
      return IntConstant(UInt64(args.first.map { program.type(of: $0).byteSize } ?? 0))
    case "ksym", "usym":
      return args.first.map { compileInt($0) } ?? IntConstant(0)
    case "kaddr":
      // Resolved once, here: kernel symbols do not move while the session runs.
      guard case .string(let bytes)? = args.first?.kind else { return IntConstant(0) }
      let symbol = String(decoding: bytes, as: UTF8.self)
      guard let address = KernelSymbols.address(of: symbol) else {
        unsupported(e.span, "kernel symbol '\(symbol)' is not in /proc/kallsyms")
        return IntConstant(0)
      }
      return IntConstant(address)
    case "uptr", "kptr":
      return args.first.map { compileInt($0) } ?? IntConstant(0)
    default:
      if let node = compileCallStatement(name, e.span, args, e) {
        return StatementAsInt(node)
      }
      unsupported(e.span, "'\(name)()' is not supported by this build yet")
      return IntConstant(0)
    }
  }

  // MARK: Byte-valued expressions

  /// A value of any type as bytes: integers become 8-byte slots.
  mutating func compileValue(_ e: Expr) -> BytesNode {
    let type = program.type(of: e)
    if case .call("strftime", _, let args) = e.kind, args.count == 2, case .string(let format) = args[0].kind {
      return StrftimeValue(format: format, nanoseconds: compileInt(args[1]))
    }
    if isIntLike(type) { return IntAsBytes(compileInt(e), type: type) }
    return compileBytes(e, as: nil)
  }

  /// A bytes value laid out as `target` (or its own type when nil).
  mutating func compileBytes(_ e: Expr, as target: ScryType?) -> BytesNode {
    let node = compileBytesNatural(e)
    guard let target, target != node.type else { return node }
    if isIntLike(target) { return IntAsBytes(compileInt(e), type: target) }
    return BytesConvert(node, to: target)
  }

  mutating func compileBytesNatural(_ e: Expr) -> BytesNode {
    let type = program.type(of: e)
    if isIntLike(type) { return IntAsBytes(compileInt(e), type: type) }
    if let value = fetched[e.id] {
      switch value.layout {
      case .dataLocationString:
        return RecordDataLocationString(offset: value.offset, type: type)
      case .inlineString(let maxLength):
        if readsPointersInProcess, let pointer = value.pointerField { return ProcessString(pointerOffset: pointer, type: type) }
        return RecordCharArray(offset: value.offset, count: maxLength, type: type)
      case .bytes(let count):
        return RecordBuffer(offset: value.offset, count: count, type: type)
      default:
        break
      }
    }
    switch e.kind {
    case .string(let bytes):
      return BytesConstant(bytes, type: type.isString ? type : .string(capacity: bytes.count + 1))
    case .positional(let n):
      let text = n >= 1 && n <= program.positionals.count ? program.positionals[n - 1] : ""
      return BytesConstant(Array(text.utf8), type: type)
    case .identifier, .variable, .map:
      switch program.resolutions[e.id] {
      case .builtin(.comm)?: return CommValue()
      case .builtin(.probe)?: return ProbeNameValue(type: type)
      case .variable(let slot)?: return VariableBytes(offset: variableOffsets[slot], type: program.variableTypes[slot])
      case .map(let name)?:
        guard let map = maps[name], let info = program.map(named: name) else { break }
        return MapReadBytes(map: map, key: compileKey(e, info: info), type: info.valueType)
      case .positional(let n)?:
        let text = n >= 1 && n <= program.positionals.count ? program.positionals[n - 1] : ""
        return BytesConstant(Array(text.utf8), type: type)
      default: break
      }
    case .tuple(let elements):
      let nodes = elements.map { compileValue($0) }
      return TupleValue(nodes, type: .tuple(nodes.map(\.type)))
    case .tupleIndex(let base, let index):
      if case .tuple(let elements) = program.type(of: base), index < elements.count {
        let offset = elements[..<index].reduce(0) { $0 + $1.byteSize }
        return BytesSlice(compileBytes(base, as: nil), offset: offset, type: elements[index])
      }
    case .ternary(let c, let a, let b):
      return BytesTernary(compileInt(c), compileBytes(a, as: type), compileBytes(b, as: type), type: type)
    case .field(let base, let name, _):
      if case .record(let record) = program.type(of: base), let field = record.field(named: name), field.type.isString {
        switch field.storage {
        case .inline: return RecordCharArray(offset: field.offset, count: field.size, type: field.type)
        case .dataLocation: return RecordDataLocationString(offset: field.offset, type: type)
        }
      }
    case .call(let name, _, let args):
      if let node = compileBytesCall(name, args, e, type: type) { return node }
    default: break
    }
    unsupported(e.span, "this expression of type '\(type)' cannot be evaluated by this build yet")
    return BytesConstant([], type: type.byteSize > 0 ? type : .string(capacity: 1))
  }

  mutating func compileBytesCall(_ name: String, _ args: [Expr], _ e: Expr, type: ScryType) -> BytesNode? {
    switch name {
    case "str":
      guard let first = args.first else { return nil }
      let sourceType = program.type(of: first)
      if sourceType.isString {
        let source = compileBytes(first, as: nil)
        if args.count > 1 { return StringTruncate(source, length: compileInt(args[1]), type: type) }
        return source.type == type ? source : BytesConvert(source, to: type)
      }
      if case .integer(let t) = sourceType, !isPointerLike(first) {
        return IntAsString(compileInt(first), isSigned: t.isSigned, type: type)
      }
      unsupported(
        e.span, "'str()' can read memory only through a tracepoint's pointer field (args.filename) or, in uprobes and kprobes, through arguments, retval and reads of them")
      return nil
    case "strftime":
      guard args.count == 2, case .string(let format) = args[0].kind else { return nil }
      return StrftimeValue(format: format, nanoseconds: compileInt(args[1]))
    default:
      return nil
    }
  }

  /// Builtins and fields that hold addresses: `str()` of them reads memory rather than formatting digits.
  func isPointerLike(_ e: Expr) -> Bool {
    if case .builtin(let b)? = program.resolutions[e.id] {
      switch b {
      case .arg, .retval, .stackArg: return true
      default: return false
      }
    }
    if case .pointer = program.type(of: e) { return true }
    return false
  }

  // MARK: Maps

  func mapStorage(_ e: Expr) -> MapStorage? {
    if case .map(let name)? = program.resolutions[e.id] { return maps[name] }
    return nil
  }

  mutating func compileKey(_ target: Expr, info: MapInfo) -> MapKey {
    guard case .map(_, let keys, _) = target.kind else { return MapKey([]) }
    return MapKey(compileKeyComponents(keys, info: info))
  }

  /// Key expressions laid out as the map's key types. A single tuple key spreads over the components.
  mutating func compileKeyComponents(_ keys: [Expr], info: MapInfo) -> [BytesNode] {
    if keys.count == info.keyTypes.count {
      return zip(keys, info.keyTypes).map { compileBytes($0, as: $1) }
    }
    if keys.count == 1, info.keyTypes.count > 1 {
      return [compileBytes(keys[0], as: .tuple(info.keyTypes))]
    }
    return keys.map { compileValue($0) }
  }

  // MARK: Helpers

  func isIntLike(_ type: ScryType) -> Bool {
    switch type {
    case .integer, .boolean, .pointer, .symbol, .timestamp: return true
    default: return false
    }
  }

  func isSigned(_ type: ScryType) -> Bool {
    if case .integer(let t) = type { return t.isSigned }
    if case .aggregate(let kind) = type {
      switch kind {
      case .sum(let s), .avg(let s), .min(let s), .max(let s), .stats(let s): return s
      default: return false
      }
    }
    return false
  }

  func intOp(_ op: BinaryOperator) -> IntBinary.Op {
    switch op {
    case .add: return .add
    case .subtract: return .sub
    case .multiply: return .mul
    case .divide: return .div
    case .modulo: return .mod
    case .bitAnd: return .and
    case .bitOr: return .or
    case .bitXor: return .xor
    case .shiftLeft: return .shl
    case .shiftRight: return .shr
    case .equal: return .eq
    case .notEqual: return .ne
    case .less: return .lt
    case .lessEqual: return .le
    case .greater: return .gt
    case .greaterEqual: return .ge
    case .logicalAnd, .logicalOr: return .and
    }
  }

  func constantInt(_ e: Expr) -> Int64? {
    if case .integer(let v) = e.kind, v <= UInt64(Int64.max) { return Int64(v) }
    return nil
  }

  func sizeOf(_ type: TypeName) -> Int {
    if type.pointerDepth > 0 { return 8 }
    let element = IntegerType(name: type.name).map { $0.bits / 8 } ?? (type.name == "string" ? 64 : 8)
    return element * (type.arrayCount ?? 1)
  }

  func parseInteger(_ text: String) -> UInt64? {
    if let v = Int64(text) { return UInt64(bitPattern: v) }
    if text.hasPrefix("0x"), let v = UInt64(text.dropFirst(2), radix: 16) { return v }
    return UInt64(text)
  }

  mutating func unsupported(_ span: SourceSpan, _ message: String) {
    diagnostics.append(.error(span, message, hint: "see README.md for what this build runs"))
  }
}

/// A call with an effect used where a value is expected (`$x = exit()`): runs it, gives 0.
final class StatementAsInt: IntNode {
  let statement: StmtNode
  init(_ statement: StmtNode) { self.statement = statement }
  override func eval(_ m: Machine) -> UInt64 {
    _ = statement.exec(m)
    return 0
  }
}

/// Signal names for `signal("SIGKILL")`.
enum SignalNames {
  static func number(of name: String) -> Int32 {
    let bare = name.hasPrefix("SIG") ? String(name.dropFirst(3)) : name
    let table: [String: Int32] = [
      "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10,
      "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
    ]
    return table[bare] ?? Int32(bare) ?? 0
  }
}
