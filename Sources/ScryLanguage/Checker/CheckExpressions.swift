/// Typing of expressions: builtins, maps, variables, operators and calls.
extension Checker {
  @discardableResult
  mutating func checkExpression(_ e: Expr, isStatement: Bool = false) -> ScryType {
    let type = typeOf(e, isStatement: isStatement)
    result.types[Int(e.id.raw)] = type
    return type
  }

  private mutating func typeOf(_ e: Expr, isStatement: Bool) -> ScryType {
    switch e.kind {
    case .missing:
      return .none
    case .wildcard:
      error(e.span, "'*' stands for any key component only in delete(@map[key, *])")
      return .none
    case .integer(let value):
      return value > UInt64(Int64.max) ? .uint64 : .int64
    case .string(let bytes):
      return .string(capacity: bytes.count + 1)
    case .boolean:
      return .boolean
    case .positional(let n):
      result.resolutions[e.id] = .positional(n)
      if n == 0 {
        error(e.span, "positional parameters start at $1")
        return .none
      }
      // A parameter that is not a number is a string; one not given is 0 (and "" to str()).
      if let text = PositionalParameter.text(n, in: result.positionals), PositionalParameter.integer(text) == nil {
        return .string(capacity: max(text.utf8.count + 1, options.stringCapacity))
      }
      return .int64
    case .positionalCount:
      return .int64
    case .identifier(let name):
      return typeOfIdentifier(name, e)
    case .variable(let name):
      guard let slot = lookupVariable(name) else {
        error(e.span, "undefined variable '\(name)'",
              hint: Suggestions.hint(for: name, in: scopes.flatMap(\.keys)) ?? "assign it before use: '\(name) = …'")
        return .none
      }
      result.resolutions[e.id] = .variable(slot: slot)
      return result.variableTypes[slot]
    case .map(let name, let keys, _):
      result.resolutions[e.id] = .map(name)
      let keyTypes = checkKeys(name, keys, at: e.span)
      guard let state = mapTypes[name], state.valueType != nil || !reporting else {
        error(e.span, "unknown map '\(name)': it is read but never assigned", hint: mapHint(name))
        return .none
      }
      if keyTypes != nil { settleMap(name, keyType: keyTypes, value: nil, isAggregate: false, at: e.span, keySpan: e.span) }
      // bpftrace 0.24+ reads count, sum, avg, min and max as integers: `if (@x > 10)`.
      if case .aggregate(let kind) = state.valueType, let integer = kind.integerValue { return integer }
      return state.valueType ?? .none
    case .call(let name, let nameSpan, let args):
      return checkCall(name, nameSpan: nameSpan, args: args, call: e, isStatement: isStatement)
    case .unary(let op, let operand):
      let type = checkExpression(operand)
      if type == .none { return .none }
      switch op {
      case .not:
        if !type.isInteger { error(operand.span, "'!' needs an integer, not \(type)") }
        // bpftrace types `!x` unsigned, so `!x - 2` is a huge number there.
        return result.program.integerSigns == .systemTap ? .int64 : .uint64
      case .bitNot, .negate:
        if !type.isInteger { error(operand.span, "'\(op.rawValue)' needs an integer, not \(type)") }
        // bpftrace keeps the operand's type: `-(uint32)3` is 4294967293.
        guard result.program.integerSigns == .bpftrace else { return .int64 }
        if case .integer(let t) = type { return .integer(IntegerType(bits: t.bits, isSigned: t.isSigned)) }
        return .uint64
      case .deref:
        if case .pointer = type { return pointee(of: type, at: operand.span) ?? .none }
        if type.isInteger { return .int64 }
        error(operand.span, "cannot dereference a value of type \(type)")
        return .none
      case .addressOf:
        error(e.span, "'&' (address of) is not supported", hint: "Scry reads values, not their addresses")
        return .none
      }
    case .binary(let op, let left, let right):
      return typeOfBinary(op, left, right, e)
    case .ternary(let condition, let whenTrue, let whenFalse):
      let c = checkExpression(condition)
      if c != .none && !c.isInteger { error(condition.span, "the condition of '?:' must be a number or a comparison, not \(c)") }
      // As a statement, `c ? print(1) : print(2)` (or an `if` expression) runs a branch for its effects.
      let a = checkExpression(whenTrue, isStatement: isStatement)
      let b = checkExpression(whenFalse, isStatement: isStatement)
      if a == .none || b == .none { return .none }
      guard let merged = unify(a, b) else {
        error(e.span, "the branches of '?:' have different types: \(a) and \(b)")
        return .none
      }
      // bpftrace types `c ? x : y` as x, so `0 ? -5 : (uint64)3 - 10` is -7.
      if result.program.integerSigns == .bpftrace, case .integer(let x) = a, case .integer(var m) = merged {
        m.isSigned = x.isSigned
        return .integer(m)
      }
      return merged
    case .block(let block, let value):
      return typeOfBlock(block, value: value, e, isStatement: isStatement)
    case .field(let base, let name, let isArrow):
      let baseType = checkExpression(base)
      return typeOfField(e, base: base, baseType: baseType, name: name, isArrow: isArrow)
    case .tupleIndex(let base, let index):
      let baseType = checkExpression(base)
      guard case .tuple(let elements) = baseType else {
        if baseType != .none { error(e.span, "'.\(index)' needs a tuple, not \(baseType)") }
        return .none
      }
      guard index < elements.count else {
        error(e.span, "tuple index \(index) is out of range: the tuple has \(elements.count) elements")
        return .none
      }
      return elements[index]
    case .index(let base, let index):
      let baseType = checkExpression(base)
      let indexType = checkExpression(index)
      checkInteger(index, indexType, "an index")
      switch baseType {
      case .none: return .none
      case .array(let element, let count):
        if let i = result.constantIndex(index), i >= UInt64(count) {
          error(index.span, "the index \(i) is out of bounds for array of size \(count)")
        }
        return element
      case .pointer:
        return pointee(of: baseType, at: base.span) ?? .none
      case .tuple(let elements):
        // bpftrace 0.22+: `$t[0]` is `$t.0`; the index must be a literal.
        guard case .integer(let i) = index.kind else {
          error(index.span, "a tuple's index must be a literal number", hint: "write '$t[0]' or '$t.0'")
          return .none
        }
        guard i < UInt64(elements.count) else {
          error(index.span, "index \(i) is out of range for a tuple of \(elements.count)")
          return .none
        }
        return elements[Int(i)]
      default:
        error(e.span, "a value of type \(baseType) cannot be indexed")
        return .none
      }
    case .tuple(let elements):
      var types: [ScryType] = []
      for element in elements {
        let type = checkExpression(element)
        if type == .none { return .none }
        if isTracepointArgs(element) {
          error(element.span, "a whole record cannot be a tuple element")
          return .none
        }
        if case .aggregate = type {
          error(element.span, "an aggregation cannot be a tuple element")
          return .none
        }
        types.append(storable(type, at: element.span) ?? type)
      }
      return .tuple(types)
    case .cast(let typeName, let operand):
      let type = checkExpression(operand)
      guard let target = resolveType(typeName) else { return .none }
      if type == .none { return .none }
      switch target {
      case .boolean where type.isString:
        // bpftrace: a string is true when it is not empty.
        return target
      case .string(let capacity) where type.isString:
        // `(string[1024])"hi"`: a string resized, as bpftrace 0.24 casts; never shortened.
        if case .string(let own) = type, own > capacity {
          error(e.span, "cannot cast \(type) to the shorter \(target)", hint: "str(s, n) keeps the first n characters")
          return .none
        }
        return target
      case .integer, .pointer, .boolean:
        if !type.isInteger {
          error(e.span, "cannot cast \(type) to \(target)", hint: type.isString ? "strings cannot be converted to numbers" : nil)
          return .none
        }
        return target
      default:
        error(typeName.span, "cannot cast to \(target): only integer and pointer casts exist")
        return .none
      }
    case .update(let target, let isIncrement, _):
      let word = isIncrement ? "++" : "--"
      switch target.kind {
      case .variable(let name):
        guard let slot = lookupVariable(name) else {
          error(target.span, "undefined variable '\(name)'", hint: "assign it first: '\(name) = 0'")
          return .none
        }
        result.resolutions[target.id] = .variable(slot: slot)
        let type = result.variableTypes[slot]
        result.types[Int(target.id.raw)] = type
        if type != .none && !type.isInteger { error(target.span, "'\(word)' needs an integer; '\(name)' is \(type)") }
        if result.program.integerSigns == .bpftrace, case .integer = type { return type }
        // A pointer stays one, as in C: `($c++)->b` reads through the old value.
        if case .pointer = type { return type }
        return .int64
      case .map(let name, let keys, _):
        let keyTypes = checkKeys(name, keys, at: target.span)
        result.resolutions[target.id] = .map(name)
        let valueType = updatedMapValue(name)
        settleMap(name, keyType: keyTypes, value: valueType, isAggregate: false, at: target.span, keySpan: target.span)
        result.types[Int(target.id.raw)] = valueType
        return valueType
      case .identifier(let name) where Builtin(name: name) == nil:
        result.resolutions[target.id] = .map(name)
        settleMap(name, keyType: [], value: .int64, isAggregate: false, at: target.span, keySpan: target.span)
        result.types[Int(target.id.raw)] = .int64
        return .int64
      default:
        _ = checkExpression(target)
        error(target.span, "'\(word)' needs a map or a variable")
        return .none
      }
    case .sizeofType(let typeName):
      guard let type = resolveType(typeName) else { return .none }
      if type == .none { return .none }
      result.constants[e.id] = UInt64(type.memorySize)
      return .uint64
    case .offsetof(let typeName, let path):
      guard let type = resolveType(typeName) else { return .none }
      guard var record = cTypes.record(of: type) else {
        error(typeName.span, "offsetof needs a struct or union, not \(type)")
        return .none
      }
      var offset = 0
      for (index, name) in path.enumerated() {
        guard let field = record.field(named: name) else {
          error(e.span, "\(record.cName) has no field '\(name)'", hint: Suggestions.hint(for: name, in: record.fields.map(\.name)))
          return .none
        }
        offset += field.offset
        if index + 1 < path.count {
          guard case .record(let inner) = field.type else {
            error(e.span, "field '\(name)' of \(record.cName) is not a struct")
            return .none
          }
          record = inner
        }
      }
      result.constants[e.id] = UInt64(offset)
      return .uint64
    }
  }

  /// `{ statements; value }`: a scope of its own. `break`, `continue` and `return` cannot leave it
  /// (the runtime evaluates it as a value), so loops around it do not count.
  private mutating func typeOfBlock(_ block: Block, value: Expr?, _ e: Expr, isStatement: Bool) -> ScryType {
    let savedLoopDepth = loopDepth
    loopDepth = 0
    blockExpressionDepth += 1
    scopes.append([:])
    checkBlock(block, newScope: false)
    let type = value.map { checkExpression($0, isStatement: isStatement) } ?? .none
    scopes.removeLast()
    blockExpressionDepth -= 1
    loopDepth = savedLoopDepth
    if value == nil && !isStatement {
      error(e.span, "this block has no value", hint: "end it with an expression and no ';', as '{ let $a = 1; $a + 1 }'")
    }
    return type
  }

  /// bpftrace's `ctx`, the BPF program's own context pointer. Scry's actions run in user space on
  /// what a capture program copied, and the blocks it runs itself have no program at all: there is
  /// nothing honest for `ctx` to point at, so it is refused with what to read instead.
  private mutating func refuseContextPointer(at span: SourceSpan) {
    if let own = probeKinds.first(where: { !$0.hasEventContext }) {
      error(
        span, "'ctx' is a BPF program's context, and \(own.rawValue) blocks run in Scry's own process, with none",
        hint: "bpftrace's interval ctx is the registers of whichever task its timer interrupted: for what a task was "
          + "running, use a profile probe and kstack or ustack")
    } else {
      error(
        span, "'ctx', the raw context of a BPF program, is not given to scripts: Scry's blocks run on what its capture program copied at the event",
        hint: "read the context through argN, sargN, retval and reg(\"name\") at uprobes, args at tracepoints")
    }
  }

  private mutating func typeOfIdentifier(_ name: String, _ e: Expr) -> ScryType {
    if let builtin = Builtin(name: name) {
      result.resolutions[e.id] = .builtin(builtin)
      switch builtin {
      case .probetype: return typeOfProbeType(e)
      case .usermode: return typeOfUserMode(e)
      default: return typeOfBuiltin(builtin, name: name, at: e.span)
      }
    }
    // A SystemTap-style global read: `total`, `count` (a bare map without keys).
    if let state = mapTypes[name], state.valueType != nil || !reporting {
      result.resolutions[e.id] = .map(name)
      if let keys = state.keyTypes, !keys.isEmpty {
        error(e.span, "'\(name)' is a map with keys; read one element as '\(name)[key]'")
      }
      return state.valueType ?? .none
    }
    if Function(name: name) != nil {
      error(e.span, "'\(name)' is a function: call it as '\(name)(…)'")
      return .none
    }
    // A `#define` constant or an enumerator, the script's or the kernel's.
    if let value = cTypes.constant(named: name) {
      result.constants[e.id] = UInt64(bitPattern: value)
      if let enumeration = cTypes.declarations.enumerators[name] {
        return .integer(IntegerType(bits: 64, isSigned: true, enumeration: enumeration))
      }
      return .int64
    }
    if name == "ctx" {
      refuseContextPointer(at: e.span)
      return .none
    }
    error(e.span, "unknown identifier '\(name)'",
          hint: Suggestions.hint(for: name, in: Builtin.names + mapOrder.filter { !$0.hasPrefix("@") })
            ?? "variables start with '$', maps with '@'")
    return .none
  }

  /// `probetype`: one block's actions are shared by its probes, so they must be of one type.
  private mutating func typeOfProbeType(_ e: Expr) -> ScryType {
    let names = Set(probeKinds.map(\.bpftraceTypeName))
    guard names.count == 1, let name = names.first else {
      error(e.span, "'probetype' differs between this block's probes (\(names.sorted().joined(separator: ", ")))",
            hint: "write one block per probe type")
      return .none
    }
    result.texts[e.id] = name
    return .string(capacity: 16)
  }

  /// `usermode`: 1 where the event always interrupts user code (BEGIN and END run in Scry, as
  /// bpftrace's run in bpftrace; uprobes and USDT), 0 where it always runs in the kernel. Timers
  /// and perf events interrupt either, and the sample's mode is not read: refused there.
  private mutating func typeOfUserMode(_ e: Expr) -> ScryType {
    let modes = Set(probeKinds.map { kind -> UInt64? in
      switch kind {
      case .begin, .end, .uprobe, .uretprobe, .usdt: return 1
      case .tracepoint, .rawTracepoint, .kprobe, .kretprobe: return 0
      case .interval, .profile, .software, .hardware, .watchpoint, .asyncwatchpoint: return nil
      }
    })
    guard modes.count == 1, let mode = modes.first, let known = mode else {
      let kind = probeKinds.first { [.interval, .profile, .software, .hardware, .watchpoint, .asyncwatchpoint].contains($0) }
      error(e.span, kind.map { "'usermode' is not available in \($0.rawValue) probes: Scry does not read the sample's mode" }
              ?? "'usermode' differs between this block's probes",
            hint: "use it in BEGIN, END, uprobe, usdt, tracepoint and kprobe blocks")
      return .none
    }
    result.constants[e.id] = known
    return .integer(IntegerType(bits: 8, isSigned: false))
  }

  private mutating func typeOfBuiltin(_ builtin: Builtin, name: String, at span: SourceSpan) -> ScryType {
    let kinds = probeKinds
    func only(_ allowed: [ProbeKind], _ what: String) -> Bool {
      if let bad = kinds.first(where: { !allowed.contains($0) }) {
        error(span, "'\(name)' is not available in \(bad.rawValue) probes", hint: "it exists in \(what) probes")
        return false
      }
      return true
    }
    switch builtin {
    case .pid, .tid, .cpid, .numaid: return .integer(.uint32)
    case .usermode: return .integer(IntegerType(bits: 8, isSigned: false))
    case .ncpus: return .uint64
    case .uid, .gid, .cgroup, .nsecs, .elapsed, .jiffies: return .uint64
    case .curtask:
      // A `struct task_struct *` where the kernel describes the type (BTF), as bpftrace types it.
      let task = "struct task_struct"
      return cTypes.record(named: task) != nil ? .pointer(.structReference(task)) : .uint64
    case .cpu: return .integer(.uint32)
    case .rand: return .integer(.uint32)
    case .comm: return .comm
    case .username: return .string(capacity: 32)
    case .probe: return .string(capacity: probeNameCapacity)
    case .function:
      // bpftrace 0.17: "The func builtin can not be used with 'usdt' probes".
      guard only([.kprobe, .kretprobe, .uprobe, .uretprobe, .profile], "kprobe, uprobe and profile") else { return .none }
      // In uprobes, the probed function's name (known from the probe, whatever the address);
      // elsewhere the kernel address, printed as its symbol.
      if kinds.allSatisfy({ $0 == .uprobe || $0 == .uretprobe }) { return .string(capacity: 64) }
      return kinds.contains(where: { $0 == .uprobe || $0 == .uretprobe }) ? .symbol(isKernel: false) : .symbol(isKernel: true)
    case .retval:
      guard only([.kretprobe, .uretprobe], "kretprobe and uretprobe") else { return .none }
      return .uint64
    case .arg(let n):
      guard only([.kprobe, .uprobe, .usdt], "kprobe, uprobe and usdt") else { return .none }
      return checkStaticArgument(n, name: name, at: span) ? .uint64 : .none
    case .stackArg:
      guard only([.kprobe, .uprobe], "kprobe and uprobe") else { return .none }
      return .uint64
    case .args:
      if let bad = kinds.first(where: { $0 != .tracepoint && $0 != .rawTracepoint }) {
        // A uprobe's `args->NAME` was rewritten to a register read before the walk (UprobeArguments).
        if bad == .uprobe {
          error(span, "in a uprobe, 'args' is read only as 'args->NAME', one parameter of the function",
                hint: "its parameters are listed by 'scry -lv uprobe:BINARY:FUNCTION'")
          return .none
        }
        if bad == .uretprobe {
          error(span, "'args' is not available in uretprobe probes",
                hint: "the parameters are gone when the function returns (bpftrace refuses them too): read them in a uprobe")
          return .none
        }
        error(span, "'args' is not available in \(bad.rawValue) probes", hint: "'args' holds a tracepoint's fields; use it in 'tracepoint:' probes")
        return .none
      }
      guard let record = probeRecords.first else {
        // Tracepoints that could not be read were reported where they were resolved.
        return .none
      }
      return .record(record)
    case .kstack, .ustack:
      var stack = StackType(isKernel: builtin == .kstack)
      stack.mode = stackMode
      return .stack(stack)
    case .probetype:
      return .none  // typed from the node, above
    }
  }

  /// At a USDT probe, `argN` is the note's Nth argument: every probe of the block must have it,
  /// in a form Scry can read. The value is the argument's size and sign, widened to 64 bits.
  /// One block's action reads every probe's record alike, so the probes of a block must agree on
  /// the argument's size and sign (a uprobe's or kprobe's `argN` is 8 bytes, unsigned).
  private mutating func checkStaticArgument(_ n: Int, name: String, at span: SourceSpan) -> Bool {
    guard !probeStatics.isEmpty else { return true }
    // Each shape (`signed 4-byte`) with the first probe that has it.
    var shapes: [(shape: String, probe: String)] = []
    func note(_ shape: String, _ probe: String) {
      if !shapes.contains(where: { $0.shape == shape }) { shapes.append((shape, probe)) }
    }
    for probe in probeStatics where n < probe.arguments.count {
      let argument = probe.arguments[n]
      note((argument.isSigned ? "signed " : "unsigned ") + "\(argument.byteCount)-byte", "usdt:\(probe.path):\(probe.provider):\(probe.name)")
    }
    if probeKinds.contains(where: { $0 != .usdt }) { note("unsigned 8-byte", "the uprobe or kprobe") }
    if shapes.count > 1 {
      let list = shapes.map { "\($0.shape) at \($0.probe)" }.joined(separator: ", ")
      error(span, "'\(name)' differs between the probes of this block: \(list)", hint: "give each kind of probe its own block")
      return false
    }
    for probe in probeStatics {
      let spec = "usdt:\(probe.path):\(probe.provider):\(probe.name)"
      guard n < probe.arguments.count else {
        let count = probe.arguments.count
        error(span, "usdt probe \(spec) has \(count) argument\(count == 1 ? "" : "s"): '\(name)' does not exist",
              hint: count == 0 ? "this probe passes no values" : count == 1 ? "its one argument is arg0" : "its arguments are arg0…arg\(count - 1)")
        return false
      }
      if case .unsupported(let why) = probe.arguments[n].location {
        error(span, "cannot read '\(name)' of usdt probe \(spec) ('\(probe.arguments[n].text)'): \(why)")
        return false
      }
    }
    return true
  }

  private mutating func typeOfBinary(_ op: BinaryOperator, _ left: Expr, _ right: Expr, _ e: Expr) -> ScryType {
    let a = checkExpression(left)
    let b = checkExpression(right)
    if a == .none || b == .none {
      // `@n = @n + 1` as the map's only assignment: bpftrace types the sum as an integer.
      if !reporting, op.isArithmetic, (a == .none ? isUntypedMap(left) && b.isInteger : isUntypedMap(right) && a.isInteger) {
        return .int64
      }
      return .none
    }
    warnAboutSigns(op, left, right, a, b, at: e.span)
    switch op {
    case .equal, .notEqual:
      // bpftrace types a comparison of strings or tuples unsigned, of integers as it types arithmetic.
      if a.isString && b.isString { return integerComparison(of: .uint64) }
      if a.isInteger && b.isInteger { return integerComparison(of: integerResult(op, a, b)) }
      if case .tuple = a, unify(a, b) != nil { return integerComparison(of: .uint64) }
      // bpftrace compares arrays and buffers byte for byte.
      if case .buffer = a, case .buffer = b { return integerComparison(of: .uint64) }
      if case .array(let x, let n) = a, case .array(let y, let m) = b {
        if x.isInteger && y.isInteger && x.memorySize == y.memorySize && n == m { return integerComparison(of: .uint64) }
        error(e.span, "cannot compare \(a) with \(b): only arrays of integers of one size, with as many elements, compare",
              hint: "compare single elements: 'a[0] == b[0]'")
        return .none
      }
      error(e.span, "cannot compare \(a) with \(b)",
            hint: a.isString || b.isString ? "compare a string with a string: '\(a.isString ? "comm" : "str(…)") == \"name\"'" : nil)
      return .none
    case .less, .lessEqual, .greater, .greaterEqual:
      if a.isInteger && b.isInteger { return integerComparison(of: integerResult(op, a, b)) }
      error(e.span, "'\(op.rawValue)' compares integers, not \(a.isInteger ? b : a)",
            hint: a.isString || b.isString ? "order strings with strncmp()" : nil)
      return .none
    case .logicalAnd, .logicalOr:
      if !a.isInteger { error(left.span, "'\(op.rawValue)' needs integers or comparisons, not \(a)") }
      if !b.isInteger { error(right.span, "'\(op.rawValue)' needs integers or comparisons, not \(b)") }
      return .int64
    default:
      if !a.isInteger || !b.isInteger {
        let (bad, span) = a.isInteger ? (b, right.span) : (a, left.span)
        if reportPositionalUsedAsNumber(a.isInteger ? right : left) { return .none }
        error(span, "'\(op.rawValue)' needs integers, not \(bad)",
              hint: bad.isString && op == .add ? "strings cannot be added; format them with printf(\"%s%s\", a, b)" : nil)
        return .none
      }
      // Pointer arithmetic keeps the pointer's type; the planner scales the integer by the pointee's size.
      if case .pointer = a, op == .add || op == .subtract, !isPointer(b) { return a }
      if case .pointer = b, op == .add, !isPointer(a) { return b }
      return integerResult(op, a, b)
    }
  }

  /// The 64-bit integer `a op b` gives, signed as the front end's rules say.
  private func integerResult(_ op: BinaryOperator, _ a: ScryType, _ b: ScryType) -> ScryType {
    result.program.integerSigns.resultIsSigned(op, a, b) ? .int64 : .uint64
  }

  /// SystemTap's comparisons give a long; bpftrace's are typed `type`.
  private func integerComparison(of type: ScryType) -> ScryType {
    result.program.integerSigns == .systemTap ? .int64 : type
  }
}

extension Checker {
  /// A map read whose type no walk has settled yet.
  func isUntypedMap(_ e: Expr) -> Bool {
    if case .map(let name, _, _) = e.kind { return mapTypes[name]?.valueType == nil }
    return false
  }
}

extension ScryType {
  var isTuple: Bool {
    if case .tuple = self { return true }
    return false
  }
}

