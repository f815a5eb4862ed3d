import ScryLanguage

/// Lowering of expressions: integers and byte values.
extension ActionLowering {
  // MARK: Integers

  mutating func int(_ e: Expr) -> IntExpr {
    let type = program.type(of: e)
    // `uaddr()`'s fetched value is the probe point's address, which `userDataAddress` moves.
    if let value = fetched[e.id], case .integer(let byteCount, let isSigned) = value.layout, program.function(of: e) != .uaddr {
      return bitfield(e, .record(offset: value.offset, byteCount: byteCount, isSigned: isSigned))
    }
    if let constant = program.constants[e.id], Self.isConstantName(e) { return .constant(constant) }
    switch e.kind {
    case .integer(let v): return .constant(v)
    case .boolean(let b): return .constant(b ? 1 : 0)
    case .positional(let n): return positionalInteger(n)
    case .positionalCount: return .constant(UInt64(program.positionals.count))
    case .identifier, .variable, .map:
      return nameAsInt(e)
    case .unary(let op, let operand):
      switch op {
      case .not: return .unary(.not, int(operand))
      case .bitNot, .negate:
        let value = IntExpr.unary(op == .negate ? .negate : .bitNot, int(operand))
        // A narrower operand's type is the result's (bpftrace's `-(uint32)3` is 4294967293).
        if case .integer(let t) = type, t.bits < 64 { return .convert(value, bits: t.bits, isSigned: t.isSigned) }
        return value
      case .deref, .addressOf:
        return unsupportedInt(e.span, unreachableMemory(e))
      }
    case .binary(let op, let a, let b):
      return binary(op, a, b)
    case .ternary(let c, let a, let b):
      return .ternary(int(c), int(a), int(b))
    case .block(let body, let value?):
      return .sequence(statements(body), int(value))
    case .field(let base, let name, _):
      if let member = structValueMember(e, base: base) {
        guard case .integer(let t) = type, let field = program.fields[e.id] else {
          return bitfield(e, .fromBytes(member, offset: 0))
        }
        // The member's own width out of the value's bytes, then the bitfield if it is one.
        let unit = IntExpr.convert(.fromBytes(member, offset: 0), bits: Swift.min(field.size, 8) * 8, isSigned: t.isSigned && field.bitWidth == 0)
        return bitfield(e, unit)
      }
      return recordField(base: base, name: name, span: e.span)
    case .tupleIndex(let base, let index):
      guard case .tuple(let elements) = program.type(of: base), index < elements.count else {
        return unsupportedInt(e.span, "this tuple element cannot be read")
      }
      let offset = elements[..<index].reduce(0) { $0 + $1.byteSize }
      return .fromBytes(bytes(base, as: nil), offset: offset)
    case .cast(_, let operand):
      if type == .boolean {
        // A bool is 1 or 0 whatever it was cast from, so it compares and prints as one.
        if program.type(of: operand).isString { return .binary(.ne, .stringLength(bytes(operand, as: nil)), .constant(0), isSigned: false) }
        return .binary(.ne, int(operand), .constant(0), isSigned: false)
      }
      guard case .integer(let t) = type else { return int(operand) }
      return .convert(int(operand), bits: t.bits, isSigned: t.isSigned)
    case .update(let target, let isIncrement, let isPrefix):
      return update(target, op: isIncrement ? .add : .sub, returnsOld: !isPrefix)
    case .sizeofType, .offsetof:
      return .constant(program.constants[e.id] ?? 0)
    case .call(_, _, let args):
      guard let function = program.function(of: e) else { return unsupportedInt(e.span, "unknown function") }
      return intCall(function, args, e)
    case .index(let base, let index):
      if case .array(let element, let count) = program.type(of: base) {
        return arrayElementInt(e, base: base, index: index, element: element, count: count)
      }
      guard case .tuple(let elements) = program.type(of: base), case .integer(let i) = index.kind, i < elements.count else {
        return unsupportedInt(e.span, "this expression cannot be used as an integer here")
      }
      let offset = elements[..<Int(i)].reduce(0) { $0 + $1.byteSize }
      return .fromBytes(bytes(base, as: nil), offset: offset)
    case .tuple, .string, .wildcard, .missing, .block(_, nil):
      return unsupportedInt(e.span, "this expression cannot be used as an integer here")
    }
  }

  /// An element of an array held as a value (in a map or variable, or a member of one): its bytes
  /// out of the array's. The checker refused indexes past the end.
  mutating func arrayElementInt(_ e: Expr, base: Expr, index: Expr, element: ScryType, count: Int) -> IntExpr {
    guard let i = program.constantIndex(index), i < count, case .integer(let t) = element else {
      return unsupportedInt(e.span, "only a literal index into an array of integers can be read here")
    }
    let unit = IntExpr.fromBytes(bytes(base, as: nil), offset: Int(i) * element.memorySize)
    return .convert(unit, bits: t.bits, isSigned: t.isSigned)
  }

  /// `$N` as a number: its value, or 0 when it was not given (the checker refused non-numbers).
  func positionalInteger(_ n: Int) -> IntExpr {
    guard let text = PositionalParameter.text(n, in: program.positionals) else { return .constant(0) }
    return .constant(UInt64(bitPattern: PositionalParameter.integer(text) ?? 0))
  }

  mutating func unsupportedInt(_ span: SourceSpan, _ message: String) -> IntExpr {
    unsupported(span, message)
    return .constant(0)
  }

  mutating func binary(_ op: BinaryOperator, _ a: Expr, _ b: Expr) -> IntExpr {
    let ta = program.type(of: a)
    let tb = program.type(of: b)
    guard let intOp = IntOperator(op) else {
      return op == .logicalAnd ? .logicalAnd(int(a), int(b)) : .logicalOr(int(a), int(b))
    }
    if (intOp == .eq || intOp == .ne) && !Self.isIntLike(ta) && !Self.isIntLike(tb) {
      return .bytesEqual(bytes(a, as: nil), bytes(b, as: nil), isNegated: intOp == .ne)
    }
    // Pointer arithmetic moves by whole pointees, as in C: `(int32 *)p + 1` is p + 4.
    if intOp == .add || intOp == .sub, case .pointer = ta, !Self.isPointer(tb) {
      return .binary(intOp, int(a), scaled(int(b), by: program.cTypes.step(ofPointer: ta)), isSigned: false)
    }
    if intOp == .add, case .pointer = tb, !Self.isPointer(ta) {
      return .binary(.add, scaled(int(a), by: program.cTypes.step(ofPointer: tb)), int(b), isSigned: false)
    }
    return .binary(intOp, int(a), int(b), isSigned: program.program.integerSigns.operationIsSigned(op, ta, tb))
  }

  mutating func update(_ target: Expr, op: IntOperator, returnsOld: Bool) -> IntExpr {
    switch program.resolutions[target.id] {
    case .variable(let slot)?:
      let operation = UpdateOperation(op: op, isSigned: Self.isSigned(program.variableTypes[slot]))
      return .variableUpdate(offset: variableOffsets[slot], operation: operation, operand: step(of: program.variableTypes[slot]), returnsOld: returnsOld)
    case .map(let name)?:
      guard let map = mapIndices[name], let info = program.map(named: name) else {
        return unsupportedInt(target.span, "map '\(name)' has no value to update")
      }
      let operation = UpdateOperation(op: op, isSigned: Self.isSigned(info.valueType))
      return .mapUpdate(map: map, key: mapKey(target, info: info), operation: operation, operand: step(of: info.valueType), returnsOld: returnsOld)
    default:
      return unsupportedInt(target.span, "only maps and variables can be incremented")
    }
  }

  /// What `++` and `--` add: a whole pointee to a pointer, as in C (`(int16 *)32` steps to 34);
  /// nil, for 1, to an integer.
  private func step(of type: ScryType) -> IntExpr? {
    guard Self.isPointer(type) else { return nil }
    let step = program.cTypes.step(ofPointer: type)
    return step == 1 ? nil : .constant(UInt64(step))
  }

  mutating func nameAsInt(_ e: Expr) -> IntExpr {
    switch program.resolutions[e.id] {
    case .builtin(let builtin)?:
      return builtinInt(builtin, span: e.span)
    case .variable(let slot)?:
      let type = program.variableTypes[slot]
      if Self.isIntLike(type) { return .variable(offset: variableOffsets[slot]) }
      return .fromBytes(.variable(offset: variableOffsets[slot], type: type), offset: 0)
    case .map(let name)?:
      guard let map = mapIndices[name], let info = program.map(named: name) else {
        return unsupportedInt(e.span, "map '\(name)' is never given a value")
      }
      var aggregate: AggregateKind?
      if case .aggregate(let kind) = info.valueType { aggregate = kind }
      return .mapRead(map: map, key: mapKey(e, info: info), aggregate: aggregate, site: site(e.span))
    case .positional(let n)?:
      return positionalInteger(n)
    case nil:
      missingResolution(e.span)
      return .constant(0)
    }
  }

  mutating func builtinInt(_ builtin: Builtin, span: SourceSpan) -> IntExpr {
    switch builtin {
    case .pid: return .event(.pid)
    case .tid: return .event(.tid)
    case .cpu: return .event(.cpu)
    case .nsecs: return .event(.nsecs)
    case .elapsed: return .event(.elapsed)
    case .cpid: return .event(.cpid)
    case .rand: return .event(.rand)
    case .uid: return .event(.uid)
    case .gid: return .event(.gid)
    case .function: return .event(.ip)
    case .numaid: return .event(.zero)
    case .ncpus: return .event(.cpuCount)
    case .cgroup: return .event(.cgroup)
    case .retval, .arg, .stackArg:
      // Registers reach actions as fetch arguments of the dynamic probe; anything else has none.
      return unsupportedInt(span, "'\(builtin.name)' can be read only in uprobes and uretprobes here")
    case .comm, .probe, .probetype, .args, .username:
      return unsupportedInt(span, "'\(builtin.name)' is not a number")
    case .usermode:
      // The checker settles it from the probes (program.constants), read before this.
      return unsupportedInt(span, "'usermode' is not known for this block's probes")
    case .kstack, .ustack:
      return unsupportedInt(span, "'\(builtin.name)' is a stack, not a number")
    case .curtask, .jiffies:
      return unsupportedInt(span, "'\(builtin.name)' cannot be evaluated by this build yet")
    }
  }

  mutating func recordField(base: Expr, name: String, span: SourceSpan) -> IntExpr {
    guard isEventRecord(base) else { return unsupportedInt(span, unreachableMemory(base)) }
    guard case .record(let record) = program.type(of: base), let field = record.field(named: name) else {
      return unsupportedInt(span, "field '\(name)' cannot be read here")
    }
    switch field.type {
    case .integer(let t):
      return .record(offset: field.offset, byteCount: Swift.min(field.size, 8), isSigned: t.isSigned)
    case .boolean, .pointer:
      return .record(offset: field.offset, byteCount: Swift.min(field.size, 8), isSigned: false)
    default:
      return unsupportedInt(span, "field '\(name)' of type '\(field.type)' is not an integer")
    }
  }

  /// Why memory behind a pointer cannot be read: the capture reads it at the event, so the
  /// pointer must lead back to the probe's own values.
  static let unreachableMemory =
    "Scry reads memory at the event: this pointer must lead back to the probe's arguments (argN, retval), a"
    + " tracepoint's pointer field, curtask or a constant address, through casts, fields and constant offsets (not a"
    + " map's value, nor a variable assigned more than once)"

  /// Why the memory `e` reads has no chain: a PIE's `uaddr()` at a return probe has its own reason.
  func unreachableMemory(_ e: Expr) -> String {
    var viaUserSymbol = false
    forEachExpression(in: [e]) { if program.function(of: $0) == .uaddr { viaUserSymbol = true } }
    guard viaUserSymbol else { return Self.unreachableMemory }
    return "uaddr() of a position-independent binary is found from the probe point, which is known at a probe's entry"
      + " only: at a uretprobe the instruction pointer is the caller's"
  }

  /// A member of a struct value the block holds (`$s.m` after `$s = *$p`, a map's struct): its
  /// bytes sliced out of the value. nil for `args` and for structs reached through pointers.
  mutating func structValueMember(_ e: Expr, base: Expr) -> BytesExpr? {
    guard !isEventRecord(base), case .record = program.type(of: base), let field = program.fields[e.id] else { return nil }
    guard isHeldValue(base) else { return nil }
    let type = program.type(of: e)
    // Integers are sliced as 8 bytes and narrowed by the caller; other members as their own type.
    let sliceType: ScryType = type.isInteger ? .uint64 : type.isString ? field.type : type
    let slice = BytesExpr.slice(bytes(base, as: nil), offset: field.offset, type: sliceType)
    return sliceType == type || type.isInteger ? slice : .convert(slice, type: type)
  }

  /// A variable or map value, or an element or member of one: bytes Scry holds, not memory to read.
  func isHeldValue(_ e: Expr) -> Bool {
    switch e.kind {
    case .index(let base, _), .field(let base, _, _):
      if case .record = program.type(of: base) { return isHeldValue(base) }
      if case .array = program.type(of: base) { return isHeldValue(base) }
      return false
    default:
      switch program.resolutions[e.id] {
      case .variable?, .map?: return true
      default: return false
      }
    }
  }

  /// `args`: the fields of the event's own record, which the runtime reads in place.
  func isEventRecord(_ e: Expr) -> Bool {
    if case .builtin(.args)? = program.resolutions[e.id] { return true }
    return false
  }

  /// `#define` constants and enumerators the checker settled, and `sizeof`.
  static func isConstantName(_ e: Expr) -> Bool {
    if case .identifier = e.kind { return true }
    return false
  }

  static func isLiteral(_ e: Expr) -> Bool {
    if case .integer = e.kind { return true }
    return false
  }

  static func isPointer(_ type: ScryType) -> Bool {
    if case .pointer = type { return true }
    return false
  }

  private func scaled(_ value: IntExpr, by step: Int) -> IntExpr {
    step == 1 ? value : .binary(.mul, value, .constant(UInt64(step)), isSigned: true)
  }

  /// A bitfield out of the storage unit it was loaded with: shifted down and masked (unsigned,
  /// as bpftrace 0.17 reads signed bitfields too).
  func bitfield(_ e: Expr, _ unit: IntExpr) -> IntExpr {
    guard let field = program.fields[e.id], field.bitWidth > 0 else { return unit }
    let shifted = field.bitOffset == 0 ? unit : .binary(.shr, unit, .constant(UInt64(field.bitOffset)), isSigned: false)
    let mask: UInt64 = field.bitWidth >= 64 ? ~0 : (1 << UInt64(field.bitWidth)) - 1
    return .binary(.and, shifted, .constant(mask), isSigned: false)
  }

  // MARK: Byte values

  /// A value of any type as bytes: integers become 8-byte slots.
  mutating func value(_ e: Expr) -> BytesExpr {
    let type = program.type(of: e)
    if Self.isIntLike(type) { return .fromInt(int(e), type: type) }
    return bytes(e, as: nil)
  }

  /// A byte value laid out as `target` (or its own type when nil).
  mutating func bytes(_ e: Expr, as target: ScryType?) -> BytesExpr {
    let natural = naturalBytes(e)
    guard let target, target != natural.type else { return natural }
    if Self.isIntLike(target) { return .fromInt(int(e), type: target) }
    return .convert(natural, type: target)
  }

  mutating func naturalBytes(_ e: Expr) -> BytesExpr {
    let type = program.type(of: e)
    if Self.isIntLike(type) { return .fromInt(int(e), type: type) }
    if let captured = fetchedBytes(e, type: type) {
      // `str(p, $n)`: the string was copied at its full capacity; its first n characters are kept
      // here, as a literal length keeps them (bpftrace 0.17's count; `truncate` counts the NUL).
      if program.function(of: e) == .str, case .call(_, _, let args) = e.kind, args.count == 2, !Self.isLiteral(args[1]) {
        return .truncate(captured, length: .binary(.add, int(args[1]), .constant(1), isSigned: true), type: type)
      }
      return captured
    }
    switch e.kind {
    case .string(let text):
      return .constant(text, type: type.isString ? type : .string(capacity: text.count + 1))
    case .positional(let n):
      return .constant(Array((PositionalParameter.text(n, in: program.positionals) ?? "").utf8), type: type)
    case .identifier, .variable, .map:
      if let named = nameAsBytes(e, type: type) { return named }
    case .tuple(let elements):
      let values = elements.map { value($0) }
      return .tuple(values, type: .tuple(values.map(\.type)))
    case .index(let base, let indexExpr):
      if case .tuple(let elements) = program.type(of: base), case .integer(let i) = indexExpr.kind, i < elements.count {
        let offset = elements[..<Int(i)].reduce(0) { $0 + $1.byteSize }
        return .slice(bytes(base, as: nil), offset: offset, type: elements[Int(i)])
      }
      if case .array(let element, let count) = program.type(of: base), let i = program.constantIndex(indexExpr), i < count {
        return .slice(bytes(base, as: nil), offset: Int(i) * element.memorySize, type: element)
      }
    case .tupleIndex(let base, let index):
      if case .tuple(let elements) = program.type(of: base), index < elements.count {
        let offset = elements[..<index].reduce(0) { $0 + $1.byteSize }
        return .slice(bytes(base, as: nil), offset: offset, type: elements[index])
      }
    case .ternary(let c, let a, let b):
      return .ternary(int(c), bytes(a, as: type), bytes(b, as: type), type: type)
    case .cast(_, let operand) where type.isString:
      return bytes(operand, as: type)
    case .block(let body, let value?):
      return .sequence(statements(body), bytes(value, as: type))
    case .field(let base, let name, _):
      if let member = structValueMember(e, base: base) { return member }
      if !isEventRecord(base) {
        unsupported(e.span, unreachableMemory(e))
        return .constant([], type: type.byteSize > 0 ? type : .string(capacity: 1))
      }
      if case .record(let record) = program.type(of: base), let field = record.field(named: name), field.type.isString {
        switch field.storage {
        case .inline: return .recordChars(offset: field.offset, count: field.size, type: field.type)
        case .dataLocation: return .recordDataLocationString(offset: field.offset, type: type)
        }
      }
    case .call(_, _, let args):
      if let function = program.function(of: e), let call = bytesCall(function, args, e, type: type) { return call }
    default:
      break
    }
    unsupported(e.span, "this expression of type '\(type)' cannot be evaluated by this build yet")
    return .constant([], type: type.byteSize > 0 ? type : .string(capacity: 1))
  }

  /// A value the kernel copied into the record at the event.
  func fetchedBytes(_ e: Expr, type: ScryType) -> BytesExpr? {
    guard let value = fetched[e.id] else { return nil }
    switch value.layout {
    case .dataLocationString:
      return .recordDataLocationString(offset: value.offset, type: type)
    case .inlineString(let maxLength):
      return .capturedString(offset: value.offset, maxLength: maxLength, pointerField: value.pointerField, type: type)
    case .bytes(let count):
      return .recordBuffer(offset: value.offset, count: count, type: type)
    case .chars(let count):
      return .recordChars(offset: value.offset, count: count, type: type)
    case .raw:
      return .recordBytes(offset: value.offset, type: type)
    case .integer, .stringArray:
      return nil
    }
  }

  mutating func nameAsBytes(_ e: Expr, type: ScryType) -> BytesExpr? {
    switch program.resolutions[e.id] {
    case .builtin(.comm)?: return .comm
    case .builtin(.probe)?: return .probeName(type: type)
    case .builtin(.probetype)?: return program.texts[e.id].map { .constant(Array($0.utf8), type: type) }
    case .builtin(.function)? where type.isString: return .probeFunction(type: type)
    case .builtin(.username)?: return .username(type: type)
    case .builtin(.kstack)?, .builtin(.ustack)?:
      guard case .stack(let stack) = type else { return nil }
      return .stack(stack)
    case .variable(let slot)?: return .variable(offset: variableOffsets[slot], type: program.variableTypes[slot])
    case .map(let name)?:
      guard let map = mapIndices[name], let info = program.map(named: name) else { return nil }
      return .mapRead(map: map, key: mapKey(e, info: info), type: info.valueType, site: site(e.span))
    case .positional(let n)?:
      return .constant(Array((PositionalParameter.text(n, in: program.positionals) ?? "").utf8), type: type)
    default:
      return nil
    }
  }
}
