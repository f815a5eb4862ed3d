/// Options that change what the checker accepts.
public struct CheckOptions: Sendable {
  /// `--unsafe`: allows `system()` and other functions with side effects outside Scry.
  public var allowsUnsafe: Bool
  /// Bytes of a string `str()` reads, its NUL included (bpftrace's `BPFTRACE_STRLEN`, 64 by default).
  public var stringCapacity: Int
  /// `-I DIR`: where `#include` looks before the system's directories.
  public var includeDirectories: [String]
  /// `--include FILE`: headers read before the script's own declarations.
  public var forcedIncludes: [String]
  /// Settings the environment fixed: a script's config block does not change them (as in bpftrace).
  public var environmentSettings: Set<ConfigVariable.Setting> = []
  /// Named program parameters (`--name=value` after the program), which `getopt()` reads; a
  /// parameter given without `=value` maps to nil.
  public var namedParameters: [String: String?] = [:]
  /// The binary of the traced process: `-c`'s command resolved, or `/proc/PID/exe` with `-p`;
  /// watchpoints watch its memory (nil: a watchpoint's address is the kernel's).
  public var tracedBinary: String?
  public init(
    allowsUnsafe: Bool = false, stringCapacity: Int = ScryType.defaultStringCapacity, includeDirectories: [String] = [],
    forcedIncludes: [String] = [], environmentSettings: Set<ConfigVariable.Setting> = [],
    namedParameters: [String: String?] = [:], tracedBinary: String? = nil
  ) {
    self.tracedBinary = tracedBinary
    self.namedParameters = namedParameters
    self.environmentSettings = environmentSettings
    self.allowsUnsafe = allowsUnsafe
    self.stringCapacity = stringCapacity
    self.includeDirectories = includeDirectories
    self.forcedIncludes = forcedIncludes
  }
}

/// Settles every type and name in a parsed program and reports every error it can find.
///
/// Maps are global and may be read (in an END probe, say) before the text that assigns them, so the
/// checker walks the program twice: the first walk only settles map types from every use, the second
/// checks each use against them and reports. Scratch variables live in their probe (or, with `let`,
/// their block) and are settled in order.
public struct Checker {
  public static func check(
    _ program: Program, catalog: any ProbeCatalog, positionals: [String] = [], options: CheckOptions = CheckOptions(),
    declarations: CDeclarations = CDeclarations()
  ) -> CheckedProgram {
    var checker = Checker(program: program, catalog: catalog, positionals: positionals, options: options)
    checker.result.cTypes = CTypes(declarations: declarations, kernel: catalog)
    checker.reporting = true
    checker.checkConfig()
    checker.resolveProbes()
    checker.resolveUprobeArguments()
    checker.splitStaticProbeShapes()
    checker.reporting = false
    // A map read before the statement that types it (`@a = @b; @b = 1`) learns its type on a later
    // walk, as in bpftrace's repeated passes; walk until no map gains a type.
    for _ in 0..<4 {
      let settled = checker.settledMapCount
      checker.resetWalk(nodeCount: checker.result.program.nodeCount)
      checker.walkProgram()
      if checker.settledMapCount == settled { break }
    }
    checker.reporting = true
    checker.resetWalk(nodeCount: checker.result.program.nodeCount)
    checker.walkProgram()
    checker.reportUnusedAggregates()
    checker.applyMapDeclarations()
    return checker.result
  }

  var result: CheckedProgram

  private var settledMapCount: Int { mapTypes.values.filter { $0.valueType != nil }.count }

  private mutating func resetWalk(nodeCount: Int) {
    result.types = Array(repeating: .none, count: nodeCount)
    result.resolutions = [:]
    result.variableTypes = []
  }
  let catalog: any ProbeCatalog
  /// The C types the program can name: its own declarations, then the kernel's.
  var cTypes: CTypes { result.cTypes }
  var options: CheckOptions
  /// How `kstack`/`ustack` print without a mode: the config block's `stack_mode`, else bpftrace's.
  var stackMode: StackType.Mode = .bpftrace
  /// `missing_probes` from the config block: error (the default), warn or ignore.
  var missingProbes = "error"
  /// False during the first walk: types are gathered, nothing is reported.
  var reporting = false
  /// Settled type of each map, by name (`@x`, `@`, or a bare global's name), with where it was settled.
  var mapTypes: [String: MapState] = [:]
  var mapOrder: [String] = []

  // State of the probe block being walked.
  var probeKinds: [ProbeKind] = []
  var probeRecords: [RecordType] = []
  /// The USDT probes of the block: their notes say how many arguments each has.
  var probeStatics: [UserStaticProbe] = []
  /// The block's probes as given to `uaddr()`: name, binary and file offset of each uprobe or USDT probe.
  var probeBinaries: [(name: String, path: String, fileOffset: UInt64)] = []
  var probeNameCapacity = 16
  var scopes: [[String: Int]] = []
  /// Each variable's first value as `sizeof` sizes it (see CheckSizeof.swift), by slot.
  var variableLayouts: [Int: ScryType] = [:]
  var loopDepth = 0
  /// Block expressions open around the statement being checked.
  var blockExpressionDepth = 0

  struct MapState {
    var keyTypes: [ScryType]?
    var valueType: ScryType?
    var declaration: SourceSpan
    var keySpan: SourceSpan
    /// The value came from an aggregation (`count()`…) rather than an assignment.
    var isAggregate = false
  }

  private init(program: Program, catalog: any ProbeCatalog, positionals: [String], options: CheckOptions) {
    self.result = CheckedProgram(program: program)
    self.result.positionals = positionals
    self.catalog = catalog
    self.options = options
  }

  mutating func error(_ span: SourceSpan, _ message: String, hint: String? = nil, notes: [Diagnostic.Note] = []) {
    guard reporting else { return }
    if result.diagnostics.contains(where: { $0.span == span && $0.message == message }) { return }
    result.diagnostics.append(.error(span, message, hint: hint, notes: notes))
  }

  mutating func warning(_ span: SourceSpan, _ message: String, hint: String? = nil) {
    guard reporting else { return }
    result.diagnostics.append(.warning(span, message, hint: hint))
  }

  // MARK: Probes

  private mutating func resolveProbes() {
    var resolver = ProbeResolver(
      catalog: catalog, positionals: result.positionals, allowsUnsafe: options.allowsUnsafe, tracedBinary: options.tracedBinary)
    var expanded: [ProbeResolver.MissingProbe] = []
    for block in result.program.probes {
      var probes: [ResolvedProbe] = []
      var seen = Set<String>()
      let missingBefore = resolver.missing.count
      for spec in block.specs {
        for probe in resolver.resolve(spec) where seen.insert(probe.identity).inserted { probes.append(probe) }
      }
      if Self.expandsKernelFunctions(block) {
        expanded += resolver.missing[missingBefore...].filter(\.isKernelFunction)
        resolver.missing.removeSubrange(missingBefore...)
      }
      result.probes.append(probes)
    }
    result.diagnostics += resolver.diagnostics
    for probe in expanded {
      result.diagnostics.append(.warning(
        probe.span, probe.message + ", skipped",
        hint: "a block that reads 'probe' is expanded over the kernel's traceable functions, as bpftrace 0.17 does; none matched"))
    }
    for probe in resolver.missing {
      switch missingProbes {
      case "warn": result.diagnostics.append(.warning(probe.span, probe.message + ", skipped", hint: probe.hint))
      case "ignore": continue
      default: result.diagnostics.append(.error(probe.span, probe.message, hint: probe.hint))
      }
    }
    // Skipping every probe leaves nothing to run: bpftrace's "No probes to attach".
    let skipped = missingProbes != "error" ? resolver.missing + expanded : expanded
    if let first = skipped.first, result.probes.allSatisfy(\.isEmpty) {
      result.diagnostics.append(.error(first.span, "no probe of this script exists: nothing to attach",
                                       hint: expanded.isEmpty ? "missing_probes = \(missingProbes) skipped every probe" : nil))
    }
  }

  /// Whether bpftrace 0.17 would build this block's kprobes once per traceable function its spec
  /// matches: so it does for a block that reads `probe`, and a kprobe that matches none (the
  /// function is missing, or the kernel has no kprobes) is dropped, not an error.
  static func expandsKernelFunctions(_ block: ProbeBlock) -> Bool {
    var readsProbe = false
    block.visitExpressions { e in
      if case .identifier(let name) = e.kind, Builtin(name: name) == .probe { readsProbe = true }
      return readsProbe
    }
    return readsProbe
  }

  private mutating func walkProgram() {
    for (index, block) in result.program.probes.enumerated() {
      let probes = result.probes[index]
      probeKinds = probes.map(\.kind)
      probeRecords = probes.compactMap {
        if case .tracepoint(_, _, let record?) = $0.target { return record }
        return nil
      }
      probeStatics = probes.compactMap {
        if case .userStaticProbe(let probe) = $0.target { return probe }
        return nil
      }
      probeBinaries = probes.compactMap {
        switch $0.target {
        case .userFunction(let path, _, let offset): return ($0.name, path, offset)
        case .userStaticProbe(let probe): return ($0.name, probe.path, probe.fileOffset)
        default: return nil
        }
      }
      probeNameCapacity = max(16, (probes.map { $0.name.utf8.count }.max() ?? 0) + 1)
      scopes = [[:]]
      loopDepth = 0
      if let predicate = block.predicate {
        let type = checkExpression(predicate)
        if type != .none && !type.isInteger && !type.isString {
          error(predicate.span, "a predicate must be a number or a comparison, not \(type)")
        }
      }
      checkBlock(block.body, newScope: false)
    }
    if !reporting {
      result.maps = mapOrder.compactMap { name in
        guard let state = mapTypes[name], let value = state.valueType else { return nil }
        return MapInfo(
          name: name, keyTypes: state.keyTypes ?? [], valueType: value, declaration: state.declaration,
          isInternal: result.program.internalMaps.contains(name))
      }
    }
  }

  private mutating func reportUnusedAggregates() {
    for name in mapOrder where mapTypes[name]?.valueType == nil {
      if let state = mapTypes[name] {
        error(state.declaration, "map '\(name)' is used but never given a value",
              hint: "assign it ('\(name) = …') or aggregate into it ('\(name) = count()')")
      }
    }
  }

  // MARK: Statements

  mutating func checkBlock(_ block: Block, newScope: Bool = true) {
    if newScope { scopes.append([:]) }
    for statement in block.statements { checkStatement(statement) }
    if newScope { scopes.removeLast() }
  }

  private mutating func checkStatement(_ statement: Stmt) {
    switch statement.kind {
    case .expression(let e):
      if case .call(let name, _, _) = e.kind, Function(name: name)?.isAggregation == true {
        error(e.span, "'\(name)()' must be assigned to a map", hint: "write '@\(name == "count" ? "" : name) = \(name)(…)'")
      }
      _ = checkExpression(e, isStatement: true)
    case .assign(let target, let op, let value):
      checkAssignment(statement, target: target, op: op, value: value)
    case .letDecl(let name, let nameSpan, let typeName, let value):
      var declared: ScryType?
      if let typeName { declared = resolveType(typeName) }
      var type = declared
      if let value {
        let valueType = checkExpression(value)
        if let declared, valueType != .none, unify(declared, valueType) == nil {
          error(value.span, "cannot initialise '\(name)' of type \(declared) with a value of type \(valueType)")
        }
        if type == nil { type = storable(valueType, at: value.span) }
      }
      if scopes[scopes.count - 1][name] != nil {
        error(nameSpan, "'\(name)' is already declared in this block", hint: "assign it without 'let', or use another name")
      }
      let slot = newSlot(type ?? .none)
      scopes[scopes.count - 1][name] = slot
      result.resolutions[statement.id] = .variable(slot: slot)
    case .ifElse(let condition, let then, let elseBranch):
      checkCondition(condition, "if")
      checkBlock(then)
      if let elseBranch { checkBlock(elseBranch) }
    case .unroll(let count, let body):
      if let n = literalInteger(count) {
        // bpftrace's words, with the count it was given.
        if n > 100 { error(count.span, "unroll maximum value is 100", hint: "the count is \(n)") }
        if n < 1 { error(count.span, "unroll minimum value is 1", hint: "the count is \(n)") }
      } else {
        error(count.span, "unroll needs a literal count", hint: "write 'unroll (5) { … }'")
      }
      checkBlock(body)
    case .whileLoop(let condition, let body):
      checkCondition(condition, "while")
      loopDepth += 1
      checkBlock(body)
      loopDepth -= 1
    case .forMap(let variable, _, let map, let body):
      var elementType = ScryType.none
      if case .map(let name, let keys, _) = map.kind {
        if !keys.isEmpty {
          error(map.span, "'for' iterates over a whole map, not one element", hint: "write 'for ($kv : \(name)) { … }'")
        }
        result.resolutions[map.id] = .map(name)
        if let state = mapTypes[name] {
          let keyTypes = state.keyTypes ?? []
          let keyType: ScryType = keyTypes.count == 1 ? keyTypes[0] : .tuple(keyTypes)
          var valueType = state.valueType ?? .none
          if case .aggregate(let kind) = valueType {
            switch kind {
            case .count, .sum, .min, .max, .avg: valueType = .int64
            default:
              error(map.span, "cannot iterate over '\(name)': its values are \(kind.functionName) aggregates")
            }
          }
          elementType = .tuple([keyType, valueType])
          if keyTypes.isEmpty {
            error(map.span, "'for' needs a map with keys; '\(name)' has none")
          }
        } else {
          error(map.span, "unknown map '\(name)'", hint: mapHint(name))
        }
      } else {
        _ = checkExpression(map)
        error(map.span, "'for' iterates over a map such as '@m', or a range such as '0..10'")
      }
      scopes.append([:])
      let slot = newSlot(elementType)
      scopes[scopes.count - 1][variable] = slot
      result.resolutions[statement.id] = .variable(slot: slot)
      loopDepth += 1
      checkBlock(body, newScope: false)
      loopDepth -= 1
      scopes.removeLast()
    case .forRange(let variable, _, let start, let end, let body):
      for bound in [start, end] {
        let type = checkExpression(bound)
        if type != .none && !type.isInteger { error(bound.span, "a range bound must be an integer, not \(type)") }
      }
      scopes.append([:])
      let slot = newSlot(.int64)
      scopes[scopes.count - 1][variable] = slot
      result.resolutions[statement.id] = .variable(slot: slot)
      loopDepth += 1
      checkBlock(body, newScope: false)
      loopDepth -= 1
      scopes.removeLast()
    case .breakLoop, .continueLoop:
      if loopDepth == 0 {
        let word = statement.kind.isBreak ? "break" : "continue"
        error(statement.span, "'\(word)' outside a loop", hint: "'\(word)' may only appear inside 'while' or 'for'")
      }
    case .returnProbe:
      if blockExpressionDepth > 0 {
        error(statement.span, "'return' inside a block used as a value", hint: "return from the probe outside the block")
      }
    case .block(let block):
      checkBlock(block)
    }
  }

  private mutating func checkCondition(_ condition: Expr, _ keyword: String) {
    let type = checkExpression(condition)
    if type != .none && !type.isInteger {
      error(condition.span, "the condition of '\(keyword)' must be a number or a comparison, not \(type)",
            hint: type.isString ? "compare strings with '==' or strncmp()" : nil)
    }
  }

  func lookupVariable(_ name: String) -> Int? {
    for scope in scopes.reversed() { if let slot = scope[name] { return slot } }
    return nil
  }

  mutating func newSlot(_ type: ScryType) -> Int {
    result.variableTypes.append(type)
    return result.variableTypes.count - 1
  }

  /// Types a value can be kept in (a variable or map); nil after reporting why not.
  func storable(_ type: ScryType, at span: SourceSpan) -> ScryType? {
    switch type {
    case .none, .aggregate: return nil
    case .integer(let t): return .integer(IntegerType(bits: 64, isSigned: t.isSigned, enumeration: t.enumeration))
    default: return type
    }
  }

  private mutating func checkAssignment(_ statement: Stmt, target: Expr, op: BinaryOperator?, value: Expr) {
    switch target.kind {
    case .variable(let name):
      let valueType = checkExpression(value)
      if let slot = lookupVariable(name) {
        result.resolutions[target.id] = .variable(slot: slot)
        let current = result.variableTypes[slot]
        result.types[Int(target.id.raw)] = current
        if op != nil {
          if current != .none && !current.isInteger { error(target.span, "'\(op!.rawValue)=' needs an integer variable; '\(name)' is \(current)") }
          checkInteger(value, valueType, "the right side of '\(op!.rawValue)='")
          warnAboutSigns(op!, target, value, current, valueType, at: statement.span)
          return
        }
        if valueType == .none { return }
        if current == .none {
          result.variableTypes[slot] = storable(valueType, at: value.span) ?? .none
        } else if let merged = unifyStored(current, valueType) {
          // A longer string in a later assignment widens the variable only if it was declared without a type.
          result.variableTypes[slot] = merged
        } else {
          error(value.span, "type mismatch: '\(name)' holds \(current), but this value is \(valueType)",
                hint: "use another variable for a value of another type")
        }
      } else {
        if op != nil {
          error(target.span, "'\(name)' is used before it is assigned", hint: "assign it first: '\(name) = 0'")
        }
        if case .aggregate = valueType { return }
        let stored = storable(valueType, at: value.span)
        if stored == nil && valueType != .none {
          error(value.span, "a value of type \(valueType) cannot be kept in a variable")
        }
        let slot = newSlot(stored ?? .none)
        scopes[0][name] = slot
        variableLayouts[slot] = sizeofLayout(value)
        result.resolutions[target.id] = .variable(slot: slot)
        result.types[Int(target.id.raw)] = stored ?? .none
      }
    case .map(let name, let keys, _):
      assignMap(name, keys: keys, target: target, op: op, value: value)
    case .identifier(let name):
      if Builtin(name: name) != nil {
        error(target.span, "cannot assign to the builtin '\(name)'", hint: "use a variable ('$\(name)') or a map ('@\(name)')")
        _ = checkExpression(value)
        return
      }
      assignMap(name, keys: [], target: target, op: op, value: value)
    default:
      _ = checkExpression(target)
      _ = checkExpression(value)
      error(target.span, "cannot assign to this expression", hint: "assign to a map ('@x = …'), a variable ('$x = …') or a global ('x = …')")
    }
  }

  private mutating func assignMap(_ name: String, keys: [Expr], target: Expr, op: BinaryOperator?, value: Expr) {
    let keyType = checkKeys(name, keys, at: target.span)
    result.resolutions[target.id] = .map(name)
    if case .call(let functionName, _, let args) = value.kind, let function = Function(name: functionName),
      function.isAggregation
    {
      if op != nil {
        error(value.span, "'\(functionName)()' cannot be combined with '\(op!.rawValue)='",
              hint: "write '\(name) = \(functionName)(…)'")
      }
      guard let kind = checkAggregate(function, args: args, call: value) else { return }
      settleMap(name, keyType: keyType, value: .aggregate(kind), isAggregate: true, at: value.span, keySpan: target.span)
      result.types[Int(value.id.raw)] = .aggregate(kind)
      result.types[Int(target.id.raw)] = .aggregate(kind)
      return
    }
    let valueType = checkExpression(value)
    if let op {
      checkInteger(value, valueType, "the right side of '\(op.rawValue)='")
      if let current = mapTypes[name]?.valueType { warnAboutSigns(op, target, value, current, valueType, at: target.span) }
      settleMap(name, keyType: keyType, value: updatedMapValue(name), isAggregate: false, at: target.span, keySpan: target.span)
    } else if valueType != .none {
      if isTracepointArgs(value) {
        error(value.span, "a whole tracepoint record cannot be stored in a map", hint: "store one field: 'args.FIELD'")
        return
      }
      if case .aggregate = valueType {
        error(value.span, "aggregations cannot be copied into another map")
        return
      }
      settleMap(name, keyType: keyType, value: storable(valueType, at: value.span) ?? valueType, isAggregate: false, at: value.span, keySpan: target.span)
    }
    result.types[Int(target.id.raw)] = mapTypes[name]?.valueType ?? .none
  }

  /// Checks a map's key expressions; returns the key types (empty without keys), nil if unknown.
  mutating func checkKeys(_ name: String, _ keys: [Expr], at span: SourceSpan) -> [ScryType]? {
    var types: [ScryType] = []
    for key in keys {
      let type = checkExpression(key)
      if type == .none { return nil }
      switch type {
      case .record where isTracepointArgs(key), .aggregate:
        error(key.span, "a value of type \(type) cannot be a map key")
        return nil
      default:
        // A tuple written as one key (`@m[(a, b)]`) is the same as two keys.
        if keys.count == 1, case .tuple(let elements) = type {
          types += elements.map { storable($0, at: key.span) ?? $0 }
        } else {
          types.append(storable(type, at: key.span) ?? type)
        }
      }
    }
    return types
  }

  /// Records a use of a map with keys and value of the given types; reports conflicts with earlier uses.
  mutating func settleMap(
    _ name: String, keyType: [ScryType]?, value: ScryType?, isAggregate: Bool, at span: SourceSpan, keySpan: SourceSpan
  ) {
    guard var state = mapTypes[name] else {
      mapTypes[name] = MapState(keyTypes: keyType, valueType: value, declaration: span, keySpan: keySpan, isAggregate: isAggregate)
      mapOrder.append(name)
      return
    }
    if let keyType {
      if let existing = state.keyTypes {
        if existing.count != keyType.count {
          error(keySpan, "'\(name)' is used with \(keyCount(keyType.count)) here but with \(keyCount(existing.count)) elsewhere",
                notes: [.init(span: state.keySpan, message: "'\(name)' used with \(keyCount(existing.count)) here")])
        } else if let merged = unify(.tuple(existing), .tuple(keyType)), case .tuple(let elements) = merged {
          state.keyTypes = elements
        } else {
          error(keySpan, "key type mismatch for '\(name)': \(describeKey(keyType)) here, \(describeKey(existing)) elsewhere",
                notes: [.init(span: state.keySpan, message: "'\(name)' got its key type here")])
        }
      } else {
        state.keyTypes = keyType
        state.keySpan = keySpan
      }
    }
    if let value {
      if let existing = state.valueType {
        if isAggregate != state.isAggregate {
          error(span, "'\(name)' is an aggregation in one place and assigned a plain value in another",
                hint: "use separate maps for \(isAggregate ? "the aggregation" : "the assigned value")",
                notes: [.init(span: state.declaration, message: "'\(name)' got its type (\(existing)) here")])
        } else if let merged = unifyStored(existing, value) {
          state.valueType = merged
        } else {
          error(span, "type mismatch for '\(name)': assigning \(value), but '\(name)' holds \(existing)",
                notes: [.init(span: state.declaration, message: "'\(name)' got its type here")])
        }
      } else {
        state.valueType = value
        state.declaration = span
        state.isAggregate = isAggregate
      }
    }
    mapTypes[name] = state
  }

  private func keyCount(_ n: Int) -> String { n == 0 ? "no key" : n == 1 ? "1 key" : "\(n) keys" }
  private func describeKey(_ types: [ScryType]) -> String { "[" + types.map(\.description).joined(separator: ", ") + "]" }

  func mapHint(_ name: String) -> String? {
    Suggestions.hint(for: name, in: mapOrder.filter { mapTypes[$0]?.valueType != nil })
      ?? "a map exists once something assigns it, as in '\(name) = 1' or '\(name) = count()'"
  }

  mutating func checkInteger(_ e: Expr, _ type: ScryType, _ what: String) {
    guard type != .none && !type.isInteger else { return }
    if reportPositionalUsedAsNumber(e) { return }
    error(e.span, "\(what) must be an integer, not \(type)")
  }

  /// `$1` given as text that is not a number but used as one: bpftrace's error, with its hint.
  mutating func reportPositionalUsedAsNumber(_ e: Expr) -> Bool {
    guard case .positional(let n) = e.kind, let text = PositionalParameter.text(n, in: result.positionals) else {
      return false
    }
    error(e.span, "$\(n) is used as a number but given \"\(text)\"", hint: "use str($\(n)) to take it as a string")
    return true
  }

  /// What `@m op= v`, `@m++` or `@m--` leaves in the map: its integer type when it has one, since
  /// bpftrace keeps the first assignment's sign (`@p = (uint64)0; @p -= 3` is 18446744073709551613).
  func updatedMapValue(_ name: String) -> ScryType {
    if result.program.integerSigns == .bpftrace, let current = mapTypes[name]?.valueType, case .integer = current {
      return current
    }
    return .int64
  }

  /// The type a variable or map holding `current` has once `assigned` is stored in it too. bpftrace
  /// keeps the first assignment's sign (`@x = (uint64)0; @x = -1` prints 18446744073709551615).
  func unifyStored(_ current: ScryType, _ assigned: ScryType) -> ScryType? {
    guard let merged = unify(current, assigned) else { return nil }
    if result.program.integerSigns == .bpftrace, case .integer(let x) = current, case .integer(var m) = merged {
      m.isSigned = x.isSigned
      return .integer(m)
    }
    return merged
  }

  /// The type both values fit in, or nil when they cannot share a variable or map.
  func unify(_ a: ScryType, _ b: ScryType) -> ScryType? {
    switch (a, b) {
    case (.integer(let x), .integer(let y)):
      // Values of one enum stay it; mixed with other integers they print as numbers.
      let enumeration = x.enumeration == y.enumeration ? x.enumeration : nil
      return .integer(IntegerType(bits: 64, isSigned: x.isSigned || y.isSigned, enumeration: enumeration))
    case (.integer, .boolean), (.integer, .pointer), (.pointer, .integer): return a
    case (.boolean, .boolean): return a
    case (.string(let x), .string(let y)): return .string(capacity: max(x, y))
    case (.tuple(let x), .tuple(let y)):
      guard x.count == y.count else { return nil }
      var merged: [ScryType] = []
      for (p, q) in zip(x, y) {
        guard let m = unify(p, q) else { return nil }
        merged.append(m)
      }
      return .tuple(merged)
    case (.aggregate(let x), .aggregate(let y)):
      switch (x, y) {
      case (.sum(let s), .sum(let t)): return .aggregate(.sum(isSigned: s || t))
      case (.avg(let s), .avg(let t)): return .aggregate(.avg(isSigned: s || t))
      case (.min(let s), .min(let t)): return .aggregate(.min(isSigned: s || t))
      case (.max(let s), .max(let t)): return .aggregate(.max(isSigned: s || t))
      case (.stats(let s), .stats(let t)): return .aggregate(.stats(isSigned: s || t))
      default: return x == y ? a : nil
      }
    case (.buffer(let x), .buffer(let y)): return .buffer(capacity: max(x, y))
    case (.stack(let x), .stack(let y)) where x.isKernel == y.isKernel && x.mode == y.mode:
      return .stack(StackType(isKernel: x.isKernel, depth: max(x.depth, y.depth), mode: x.mode))
    default: return a == b ? a : nil
    }
  }

  /// The type a written type name denotes, reporting unknown names.
  mutating func resolveType(_ name: TypeName) -> ScryType? {
    guard var type = resolveBaseType(name) else { return nil }
    for _ in 0..<name.pointerDepth { type = .pointer(type) }
    if name.pointerDepth == 0, let count = name.arrayCount {
      switch type {
      case .integer(let integer) where integer.bits == 8: return .string(capacity: count)
      case .string: break
      default: return .array(type, count: count)
      }
    }
    return type
  }

  /// The type a name stands for before `*` and `[N]`: `void` is only a pointee (`none`), a struct
  /// behind a pointer stays a reference to its name so it is looked up only when dereferenced.
  private mutating func resolveBaseType(_ name: TypeName) -> ScryType? {
    let words = name.name.split(separator: " ")
    if words.count == 2, words[0] == "struct" || words[0] == "union" {
      if name.pointerDepth > 0 && cTypes.record(named: name.name) != nil { return .structReference(name.name) }
      if let record = cTypes.record(named: name.name) { return .record(record) }
      error(name.span, "unknown \(words[0]) '\(name.name)'",
            hint: Suggestions.hint(for: name.name, in: Array(cTypes.declarations.records.keys))
              ?? "declare it in the script ('\(name.name) { int m; }') or #include its header; kernel types come from BTF")
      return nil
    }
    if words.count == 2, words[0] == "enum" {
      return .integer(IntegerType(bits: 32, isSigned: false, enumeration: cTypes.declarations.enumerations[name.name]))
    }
    if name.name == "void" {
      if name.pointerDepth > 0 { return ScryType.none }
      error(name.span, "'void' is a type only behind a pointer ('void *')")
      return nil
    }
    if name.name == "string" {
      return .string(capacity: name.arrayCount ?? options.stringCapacity)
    }
    if name.name == "bool" { return .boolean }
    if let integer = IntegerType(name: name.name) { return .integer(integer) }
    if let typedef = cTypes.typedef(named: name.name) { return typedef }
    error(name.span, "unknown type '\(name.name)'",
          hint: Suggestions.hint(
            for: name.name,
            in: ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "string", "bool"]
              + cTypes.declarations.typedefs.keys))
    return nil
  }
}

extension Stmt.Kind {
  var isBreak: Bool {
    if case .breakLoop = self { return true }
    return false
  }
}
