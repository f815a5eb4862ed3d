import ScryLanguage

/// Where the memory a block reads lives, as chains the capture can follow at the event: a root
/// (a register, a stack entry, the return value) and constant offsets, each `.memory` step one
/// pointer loaded. `$p->a->b[2].c` is `+c(+16(+a(%di)))` when `$p = (struct S *)arg0`.
///
/// Pointers are followed through casts, fields, `*`, constant indexes, `p + n` (scaled by the
/// pointee's size, as C and bpftrace do) and scratch variables assigned once in the block: the
/// chain of a variable is the chain of its one value; so is a map element's (keyless, or at constant
/// keys) assigned once, read after its assignment in the same block (`onceAssignedMaps`). A number known
/// before the event is a root of its own (`(struct foo *)0`, `*(uint64 *)0x1234`, `kaddr("jiffies")`): its
/// reads are made at the event like any other, and an unmapped address is a failed read, as bpftrace's are.
/// What leads elsewhere (another map's value, a variable assigned twice) has no chain, and the planner
/// refuses to read through it.
struct MemoryPaths {
  let program: CheckedProgram
  /// The operand a builtin stands for at this probe (`arg0` is `%di` at a uprobe).
  let root: (Expr) -> ProbeCapture.Operand?
  /// The uprobe or USDT probe the chains are for (its name and whether it is a return probe):
  /// where `uaddr()` points depends on it.
  var userProbe: (name: String, isReturn: Bool)?
  /// The one value of each scratch variable assigned exactly once in the block, by slot.
  private var definitions: [Int: Expr] = [:]

  init(program: CheckedProgram, block: ProbeBlock, root: @escaping (Expr) -> ProbeCapture.Operand?) {
    self.program = program
    self.root = root
    var values: [Int: [Expr]] = [:]
    var updated = Set<Int>()
    for stmt in block.body.allStatements() {
      guard case .assign(let target, let op, let value) = stmt.kind, case .variable(let slot)? = program.resolutions[target.id]
      else { continue }
      if op != nil { updated.insert(slot) }
      values[slot, default: []].append(value)
    }
    block.forEachExpression { e in
      if case .update(let target, _, _) = e.kind, case .variable(let slot)? = program.resolutions[target.id] {
        updated.insert(slot)
      }
    }
    for (slot, list) in values where list.count == 1 && !updated.contains(slot) { definitions[slot] = list[0] }
    mapDefinitions = Self.onceAssignedMaps(in: block, program: program)
  }

  /// Keyless maps assigned once in the whole program, by a top-level statement of this block that
  /// nothing before it in the block reads: after it, in the same firing, the map holds that one
  /// value, as a once-assigned variable does (bpftrace's `@s = *curtask; @j = @s->parent->pid`).
  /// A later call taking the map (`delete`, `clear`) drops it: its reads are refused instead.
  private var mapDefinitions: [MapElement: Expr] = [:]

  /// A map's one element: its name and constant keys (none for a keyless map).
  struct MapElement: Hashable {
    var name: String
    var keys: [UInt64]
  }

  static func onceAssignedMaps(in block: ProbeBlock, program: CheckedProgram) -> [MapElement: Expr] {
    var assignments: [String: Int] = [:]
    for probe in program.program.probes {
      for stmt in probe.body.allStatements() {
        if case .assign(let target, _, _) = stmt.kind, case .map(let name, _, _) = target.kind { assignments[name, default: 0] += 1 }
      }
      probe.forEachExpression { e in
        if case .update(let target, _, _) = e.kind, case .map(let name, _, _) = target.kind { assignments[name, default: 0] += 2 }
      }
    }
    func mapNames(_ roots: [Expr]) -> Set<String> {
      var names = Set<String>()
      forEachExpression(in: roots) { if case .map(let name, _, _) = $0.kind { names.insert(name) } }
      return names
    }
    func takenByCalls(_ roots: [Expr]) -> Set<String> {
      var names = Set<String>()
      forEachExpression(in: roots) { e in
        guard case .call(_, _, let args) = e.kind else { return }
        for arg in args { if case .map(let name, _, _) = arg.kind { names.insert(name) } }
      }
      return names
    }
    var found: [MapElement: Expr] = [:]
    var seen = block.predicate.map { mapNames([$0]) } ?? []
    for stmt in block.body.statements {
      let roots = Block(span: block.body.span, statements: [stmt]).allStatements().flatMap(\.expressions)
      let taken = takenByCalls(roots)
      found = found.filter { !taken.contains($0.key.name) }
      if case .assign(let target, nil, let value) = stmt.kind, case .map(let name, let keys, _) = target.kind,
        let element = element(name, keys, program: program), assignments[name] == 1, !seen.contains(name),
        !mapNames([value]).contains(name)
      {
        found[element] = value
      }
      seen.formUnion(mapNames(roots))
    }
    return found
  }

  /// The element `@name[keys]` names when its keys are constants (`@a[0] = (int32 *)arg0; @a[0][1]`);
  /// nil for keys known only at the event.
  static func element(_ name: String, _ keys: [Expr], program: CheckedProgram) -> MapElement? {
    var constants: [UInt64] = []
    for key in keys {
      guard let n = program.constantIndex(key) else { return nil }
      constants.append(n)
    }
    return MapElement(name: name, keys: constants)
  }

  private func mapValue(_ name: String, _ keys: [Expr]) -> Expr? {
    Self.element(name, keys, program: program).flatMap { mapDefinitions[$0] }
  }

  /// The value of a pointer (or integer) expression as an operand plus a constant.
  func pointerValue(_ e: Expr) -> (base: ProbeCapture.Operand, offset: Int64)? {
    if let operand = root(e) { return (operand, 0) }
    if let address = constantAddress(e) { return (.constant(Int64(bitPattern: address)), 0) }
    if program.function(of: e) == .uaddr { return userDataAddress(e) }
    switch e.kind {
    case .cast(_, let inner):
      return pointerValue(inner)
    case .call(_, _, let args) where Self.markedSpace(e, program: program) != nil:
      return pointerValue(args[0])
    case .variable:
      guard case .variable(let slot)? = program.resolutions[e.id], let value = definitions[slot] else { return nil }
      return pointerValue(value)
    case .map(let name, let keys, _):
      guard let value = mapValue(name, keys) else { return nil }
      return pointerValue(value)
    case .binary(let op, let left, let right) where op == .add || op == .subtract:
      if case .integer(let n) = right.kind, n < 1 << 31, let inner = pointerValue(left) {
        let step = Int64(n) * Int64(scale(of: program.type(of: left)))
        return (inner.base, inner.offset + (op == .add ? step : -step))
      }
      if op == .add, case .integer(let n) = left.kind, n < 1 << 31, let inner = pointerValue(right) {
        return (inner.base, inner.offset + Int64(n) * Int64(scale(of: program.type(of: right))))
      }
      return nil
    default:
      // A pointer read from memory: a pointer field, `*pp`, `pp[1]`.
      guard Self.isPointerSized(program.type(of: e)), let location = location(e) else { return nil }
      return (.memory(location.base, offset: location.offset), 0)
    }
  }

  /// Where an expression's value sits in memory: a field reached through a pointer, `*p`, `p[n]`,
  /// an element of an array or a member of a struct that is itself in memory.
  func location(_ e: Expr) -> (base: ProbeCapture.Operand, offset: Int64)? {
    switch e.kind {
    case .unary(.deref, let pointer):
      return pointerValue(pointer)
    case .field(let base, _, _):
      guard let field = program.fields[e.id] else { return nil }
      let holder: (base: ProbeCapture.Operand, offset: Int64)?
      if case .pointer = program.type(of: base) { holder = pointerValue(base) } else { holder = location(base) }
      guard let holder else { return nil }
      return (holder.base, holder.offset + Int64(field.offset))
    case .index(let base, let index):
      guard let n = program.constantIndex(index), n < 1 << 31 else { return nil }
      let baseType = program.type(of: base)
      let holder: (base: ProbeCapture.Operand, offset: Int64)?
      if case .pointer = baseType { holder = pointerValue(base) } else { holder = location(base) }
      guard let holder else { return nil }
      return (holder.base, holder.offset + Int64(n) * Int64(elementSize(of: baseType)))
    case .variable:
      guard case .variable(let slot)? = program.resolutions[e.id], let value = definitions[slot] else { return nil }
      return location(value)
    case .map(let name, let keys, _):
      guard let value = mapValue(name, keys) else { return nil }
      return location(value)
    default:
      return nil
    }
  }

  func scale(of type: ScryType) -> Int { program.cTypes.step(ofPointer: type) }

  /// Where `uaddr("sym")` points at this probe: the symbol's address in an executable loaded where
  /// it was linked; in a PIE or a library, the probe point's address plus the distance between the
  /// two in the file (at a probe's entry, the instruction pointer is the probe point). A return
  /// probe's instruction pointer is its caller's, so there a PIE's variable has no chain.
  func userDataAddress(_ e: Expr) -> (base: ProbeCapture.Operand, offset: Int64)? {
    guard let userProbe, let symbol = program.userDataSymbols[e.id]?[userProbe.name] else { return nil }
    if !symbol.isPositionIndependent { return (.constant(Int64(bitPattern: symbol.address)), 0) }
    return userProbe.isReturn ? nil : (.register("ip"), symbol.offsetFromProbe)
  }

  /// An address known before the event: a literal, a `#define` constant or enumerator, or the
  /// address `kaddr()` resolved. Not a positional parameter: `str($1)` is the parameter's text.
  func constantAddress(_ e: Expr) -> UInt64? {
    if case .integer(let n) = e.kind { return n }
    if case .identifier = e.kind, program.resolutions[e.id] == nil, let value = program.constants[e.id] { return value }
    if program.function(of: e) == .kaddr { return program.constants[e.id] }
    return nil
  }

  /// Whether a pointer expression is marked as user memory (`uptr(p)`: true) or kernel memory
  /// (`kptr(p)`: false), through casts and once-assigned variables; nil when it is not marked.
  func markedSpace(_ e: Expr) -> Bool? {
    if let marked = Self.markedSpace(e, program: program) { return marked }
    switch e.kind {
    case .cast(_, let inner): return markedSpace(inner)
    case .variable:
      guard case .variable(let slot)? = program.resolutions[e.id], let value = definitions[slot] else { return nil }
      return markedSpace(value)
    case .map(let name, let keys, _):
      guard let value = mapValue(name, keys) else { return nil }
      return markedSpace(value)
    default: return nil
    }
  }

  static func markedSpace(_ e: Expr, program: CheckedProgram) -> Bool? {
    switch program.function(of: e) {
    case .uptr?: return true
    case .kptr?: return false
    default: return nil
    }
  }

  /// Bytes between elements of an array or of the memory a pointer indexes.
  private func elementSize(of type: ScryType) -> Int {
    switch type {
    case .array(let element, _): return element.memorySize
    case .string: return 1
    default: return scale(of: type)
    }
  }

  /// A value a chain can load as the next pointer: 8 bytes.
  static func isPointerSized(_ type: ScryType) -> Bool {
    switch type {
    case .pointer: return true
    case .integer(let t): return t.bits == 64
    default: return false
    }
  }
}
