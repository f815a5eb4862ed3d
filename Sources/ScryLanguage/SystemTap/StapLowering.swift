/// Turns SystemTap's syntax tree into Scry's `Program`, so the one checker, planner, IR and runtime
/// run both languages. Globals become maps (`count` is `@count`), locals scratch variables
/// (`n` is `$n`), statistics one map per extractor the script reads (`x <<< v` with `@avg(x)` is
/// `@x__avg = avg(v)`), functions are inlined, and `foreach` is a map loop with an order.
struct StapLowering {
  enum Kind { case integer, string, unknown }

  /// What the whole program does with one global.
  struct GlobalUse {
    var span: SourceSpan
    var isArray = false
    var isStatistic = false
    var extractors: Set<String> = []
    /// `@hist_linear(x, lo, hi, step)`'s bounds.
    var linear: [StapExpr]?
    /// `@variance(x, N)`'s bit shift: values are kept `<< N` for precision, the variance read `>> 2N`.
    var varianceShift: UInt64 = 0
    var isRead = false
    var isWritten = false
    /// `global x = 5`: set before the first probe (not a write SystemTap prints at exit).
    var isInitialized = false
    var kind = Kind.unknown
    var keyKinds: [Kind] = []
  }

  static let statisticExtractors: Set<String> = ["count", "sum", "min", "max", "avg", "variance", "hist_log", "hist_linear"]

  let source: SourceFile
  let catalog: any ProbeCatalog
  var nextID: UInt32 = 0
  var diagnostics: [Diagnostic] = []
  var globals: [String: GlobalUse] = [:]
  var globalOrder: [String] = []
  var functions: [String: StapFunction] = [:]
  var mapLoopOrders: [NodeID: MapLoopOrder] = [:]
  // The probe being lowered.
  var locals: [String: Kind] = [:]
  var mapping: StapProbeMapping?
  var record: RecordType?
  var inlining: [String] = []
  /// `@entry(e)` in the return probe being lowered: the map its entry probe saves `e` into, by tid.
  var entryMaps: [ObjectIdentifier: String] = [:]
  /// The map of a return probe's entries not yet returned from, by thread (see `entryBlock`).
  var entriesOpen: String?
  var temporaries = 0
  /// The `try` blocks being lowered, innermost last: the variables `error()` sets there.
  var tries: [(caught: String, message: String)] = []
  /// `-x PID`: what `target()` is; without it, `target()` is the `-c` child (`cpid`).
  var targetPid: Int32?
  /// Whether the script calls `error()`: then an uncaught one sets this map, `end` probes (and
  /// the printing of globals at exit) run only without it, and `error` probes only with it.
  var tracksErrors = false
  var isSession = false
  static let errorFlag = "__stap_error"
  /// `syscall.*` probes on raw_syscalls that read `name`: the names by number, in a map.
  var syscallNames: [(number: UInt64, name: String)]?
  var usesSyscallNames = false
  static let syscallNamesMap = "__syscall_names"
  static let maxInlineDepth = 8

  init(source: SourceFile, catalog: any ProbeCatalog) {
    self.source = source
    self.catalog = catalog
  }

  /// `isSession`: the REPL's program, which grows an entry at a time: every probe's blocks keep
  /// their place as entries are added (a global's initial value is a BEGIN block where the global
  /// is declared), nothing is printed at exit and the `error` probe is refused.
  static func lower(
    _ source: SourceFile, catalog: any ProbeCatalog, targetPid: Int32? = nil, positionals: [String] = [], isSession: Bool = false
  ) -> (Program, [Diagnostic]) {
    var parser = StapParser(source: source)
    parser.positionals = positionals
    parser.parseProgram()
    var lowering = StapLowering(source: source, catalog: catalog)
    lowering.isSession = isSession
    lowering.targetPid = targetPid
    lowering.diagnostics = parser.diagnostics
    var probes: [ProbeBlock] = []
    if !parser.diagnostics.hasErrors {
      probes = lowering.lowerProgram(parser)
    }
    let program = Program(
      source: source, probes: probes, nodeCount: Int(lowering.nextID), mapLoopOrders: lowering.mapLoopOrders,
      printsMapsAtExit: false, histogramStyle: .systemTap)
    return (program, lowering.diagnostics)
  }

  mutating func lowerProgram(_ parsed: StapParser) -> [ProbeBlock] {
    for global in parsed.globals {
      if globals[global.name] != nil {
        error(global.span, "'\(global.name)' is declared global twice")
        continue
      }
      var use = GlobalUse(span: global.span)
      if let initializer = global.initializer {
        use.kind = staticKind(initializer)
        use.isInitialized = true
      }
      globals[global.name] = use
      globalOrder.append(global.name)
    }
    for function in parsed.functions {
      if functions[function.name] != nil { error(function.span, "function '\(function.name)' is defined twice") }
      functions[function.name] = function
    }
    for function in parsed.functions { analyse(function.body) }
    for probe in parsed.probes { analyse(probe.body) }
    if isSession { return lowerSession(parsed) }
    tracksErrors = (parsed.functions.map(\.body) + parsed.probes.map(\.body)).contains { body in
      var found = false
      visit(body) { e in if case .call("error", _, _) = e.kind { found = true } }
      return found
    }
    var probes: [ProbeBlock] = []
    // `global x = 5`: set as the run begins, before any `begin` probe of the script.
    let initializers = parsed.globals.compactMap { g in g.initializer.map { (g, $0) } }
    if !initializers.isEmpty || tracksErrors {
      locals = [:]
      var statements = initializers.map { g, value in
        stmt(.assign(target: globalRef(g.name, keys: [], span: g.span), op: nil, value: lowerValue(value)), g.span)
      }
      let span = parsed.globals.first?.span ?? parsed.probes.first?.span ?? SourceSpan(start: 0, end: 0)
      if tracksErrors {
        statements.append(stmt(.assign(target: globalRef(Self.errorFlag, keys: [], span: span), op: nil, value: expr(.integer(0), span)), span))
      }
      probes.append(block([ProbeSpec(span: span, provider: "BEGIN", parts: [], partSpans: [])], statements, span: span))
    }
    for probe in parsed.probes { probes += lowerProbe(probe) }
    if let names = syscallNamesBlock(span: parsed.probes.first?.span ?? .at(0)) { probes.insert(names, at: 0) }
    if let printer = exitPrinter() { probes.append(printer) }
    return probes
  }

  /// The REPL's program: blocks in the order of what declared them, so an entry's blocks come
  /// after every earlier entry's.
  mutating func lowerSession(_ parsed: StapParser) -> [ProbeBlock] {
    var placed: [(start: UInt32, blocks: [ProbeBlock])] = []
    for g in parsed.globals {
      guard let value = g.initializer else { continue }
      locals = [:]
      let set = stmt(.assign(target: globalRef(g.name, keys: [], span: g.span), op: nil, value: lowerValue(value)), g.span)
      placed.append((g.span.start, [block([ProbeSpec(span: g.span, provider: "BEGIN", parts: [], partSpans: [])], [set], span: g.span)]))
    }
    for probe in parsed.probes {
      if probe.points.contains(where: { $0.components.count == 1 && $0.components[0].name == "error" }) {
        error(probe.points[0].span, "the 'error' probe does not run at the prompt", hint: "an error() ends the session's run; write the probe in a script")
      }
      placed.append((probe.span.start, lowerProbe(probe)))
    }
    return placed.sorted { $0.start < $1.start }.flatMap(\.blocks)
  }

  /// An `end` or `error` probe's statements, run only when an `error()` did not (or did) end the run.
  mutating func guardedByErrors(_ statements: [Stmt], isErrorProbe: Bool, span: SourceSpan) -> [Stmt] {
    guard tracksErrors else { return statements }
    let flag = globalRef(Self.errorFlag, keys: [], span: span)
    let condition = expr(.binary(isErrorProbe ? .notEqual : .equal, flag, expr(.integer(0), span)), span)
    return [stmt(.ifElse(condition: condition, then: Block(span: span, statements: statements), elseBranch: nil), span)]
  }

  // MARK: Nodes

  mutating func makeID() -> NodeID {
    defer { nextID += 1 }
    return NodeID(nextID)
  }

  mutating func expr(_ kind: Expr.Kind, _ span: SourceSpan) -> Expr { Expr(id: makeID(), span: span, kind: kind) }
  mutating func stmt(_ kind: Stmt.Kind, _ span: SourceSpan) -> Stmt { Stmt(id: makeID(), span: span, kind: kind) }

  func block(_ specs: [ProbeSpec], _ statements: [Stmt], span: SourceSpan) -> ProbeBlock {
    ProbeBlock(span: span, specs: specs, predicate: nil, body: Block(span: span, statements: statements), isAngleBlock: false)
  }

  mutating func error(_ span: SourceSpan, _ message: String, hint: String? = nil) {
    diagnostics.append(.error(span, message, hint: hint))
  }

  mutating func missing(_ span: SourceSpan, _ message: String, hint: String? = nil) -> Expr {
    error(span, message, hint: hint)
    return expr(.missing, span)
  }

  /// A global the script reads but never sets: SystemTap reads it as 0 or "", and its arrays as
  /// empty; Scry has no map to read, so the reads are those constants.
  func isNeverWritten(_ g: String) -> Bool {
    guard let use = globals[g] else { return false }
    return !use.isWritten && !use.isInitialized
  }

  mutating func unsetValue(_ g: String, span: SourceSpan) -> Expr {
    expr(globals[g]?.kind == .string ? .string([]) : .integer(0), span)
  }

  /// The map behind a global: `@name`, or `@name__count` for a statistic's extractor.
  mutating func globalRef(_ name: String, extractor: String? = nil, keys: [Expr], span: SourceSpan) -> Expr {
    expr(.map(name: "@" + name + (extractor.map { "__" + $0 } ?? ""), keys: keys, isBare: false), span)
  }

  // MARK: Probes

  mutating func lowerProbe(_ probe: StapProbe) -> [ProbeBlock] {
    // Points that map to the same context share a block; a syscall's `name` differs per point.
    var groups: [(mapping: StapProbeMapping?, specs: [ProbeSpec])] = []
    for point in probe.points {
      switch StapProbePoints.map(point, jiffy: point.components.first?.name == "timer" ? catalog.tickNanoseconds : nil) {
      case .failure(let failure):
        if !point.isOptional { error(point.span, failure.message, hint: failure.hint) }
      case .success(let mapping):
        if point.isOptional && !exists(mapping) { continue }
        let spans = point.components.map(\.span)
        let partSpans = Array(repeating: spans.last ?? point.span, count: mapping.parts.count)
        let spec = ProbeSpec(span: point.span, provider: mapping.provider, parts: mapping.parts, partSpans: partSpans)
        if let i = groups.firstIndex(where: {
          $0.mapping?.syscall == mapping.syscall && $0.mapping?.isReturn == mapping.isReturn && $0.mapping?.isErrorProbe == mapping.isErrorProbe
        }) {
          groups[i].specs.append(spec)
        } else {
          groups.append((mapping, [spec]))
        }
      }
    }
    var blocks: [ProbeBlock] = []
    for var group in groups {
      // `syscall.*` whose body reads nothing of the syscall's own (a count by execname()) is every
      // syscall: the one raw_syscalls tracepoint, not a tracepoint per syscall, each attached.
      if let mapping = group.mapping, mapping.syscall == "*", !readsSyscallContext(probe.body, besides: isSession ? [] : ["name"]),
        !mentionsName(probe.body) || syscallNameTable() != nil
      {
        let raw = ["raw_syscalls", mapping.isReturn ? "sys_exit" : "sys_enter"]
        group.mapping?.parts = raw
        group.mapping?.namesByNumber = mentionsName(probe.body)
        group.specs = [ProbeSpec(span: group.specs[0].span, provider: "tracepoint", parts: raw, partSpans: group.specs[0].partSpans)]
      }
      // `syscall.*` reads `name`: one block per syscall, each knowing its name.
      if let syscall = group.mapping?.syscall, syscall.contains("*"), group.mapping?.namesByNumber == false, mentionsName(probe.body) {
        let prefix = group.mapping!.isReturn ? "sys_exit_" : "sys_enter_"
        let found = catalog.tracepoints(category: "syscalls", name: prefix + syscall)
        for tracepoint in found {
          var mapping = group.mapping!
          mapping.syscall = String(tracepoint.name.dropFirst(prefix.count))
          mapping.parts = ["syscalls", tracepoint.name]
          let spec = ProbeSpec(span: group.specs[0].span, provider: "tracepoint", parts: mapping.parts, partSpans: group.specs[0].partSpans)
          blocks += lowerBody(probe, mapping: mapping, specs: [spec])
        }
        if !found.isEmpty { continue }
      }
      blocks += lowerBody(probe, mapping: group.mapping, specs: group.specs)
    }
    return blocks
  }

  /// The syscall names by number, read once, for `name` in `syscall.*` on raw_syscalls.
  mutating func syscallNameTable() -> [(number: UInt64, name: String)]? {
    if syscallNames == nil { syscallNames = catalog.syscallNames() ?? [] }
    return syscallNames!.isEmpty ? nil : syscallNames
  }

  /// The BEGIN block that fills `@__syscall_names` when a probe looks names up in it.
  mutating func syscallNamesBlock(span: SourceSpan) -> ProbeBlock? {
    guard usesSyscallNames, let names = syscallNames else { return nil }
    let statements = names.map { entry in
      stmt(.assign(target: globalRef(Self.syscallNamesMap, keys: [expr(.integer(entry.number), span)], span: span), op: nil,
        value: expr(.string(Array(entry.name.utf8)), span)), span)
    }
    return block([ProbeSpec(span: span, provider: "BEGIN", parts: [], partSpans: [])], statements, span: span)
  }

  /// SystemTap's locals start at 0 or "": one updated before anything assigns it (`n++`,
  /// `s .= "x"`, `total += v` with no `total = …` before) is set so at the probe's start.
  mutating func zeroedLocals(_ body: StapStmt) -> [Stmt] {
    var assigned = Set<String>()
    var zeroed: [(String, Kind, SourceSpan)] = []
    visit(body) { e in
      var name: String?
      var kind = Kind.integer
      switch e.kind {
      case .assign("=", let target, _):
        if case .name(let n) = target.kind { assigned.insert(n) }
      case .assign(let op, let target, _):
        if case .name(let n) = target.kind { name = n }
        if op == ".=" { kind = .string }
      case .update(let target, _, _):
        if case .name(let n) = target.kind { name = n }
      default: break
      }
      if let n = name, globals[n] == nil, !assigned.contains(n), !zeroed.contains(where: { $0.0 == n }), record?.fields.contains(where: { $0.name == n }) != true {
        zeroed.append((n, kind, e.span))
      }
    }
    return zeroed.map { name, kind, span in
      locals[name] = kind
      return stmt(.assign(target: expr(.variable(localName(name)), span), op: nil, value: expr(kind == .string ? .string([]) : .integer(0), span)), span)
    }
  }

  /// Whether an optional (`?`) point's tracepoint exists; other kinds are left to the checker.
  func exists(_ mapping: StapProbeMapping) -> Bool {
    guard mapping.provider == "tracepoint", mapping.parts.count == 2 else { return true }
    return !catalog.tracepoints(category: mapping.parts[0], name: mapping.parts[1]).isEmpty
  }

  /// Whether a syscall probe's body may read the syscall's name, arguments or fields: `name`,
  /// `argstr`, a `$field`, or a bare name nothing assigns (a field, when it is not a global).
  func readsSyscallContext(_ body: StapStmt, besides allowed: Set<String> = []) -> Bool {
    var assigned = Set<String>()
    visit(body) { e in
      if case .assign(_, let target, _) = e.kind, case .name(let n) = target.kind { assigned.insert(n) }
    }
    var found = false
    visit(body) { e in
      switch e.kind {
      case .target(let n) where n != "return": found = true
      case .name(let n) where globals[n] == nil && !assigned.contains(n) && n != "retstr" && n != "retval" && !allowed.contains(n):
        found = true
      default: break
      }
    }
    return found || containsForeachKeys(body)
  }

  /// `foreach` binds its keys as locals: a conservative answer treats such bodies as reading fields.
  func containsForeachKeys(_ body: StapStmt) -> Bool {
    var found = false
    visitForeach(body) { _ in found = true }
    return found
  }

  func mentionsName(_ body: StapStmt) -> Bool {
    var found = false
    visit(body) { e in if case .name("name") = e.kind { found = true } }
    return found
  }

  mutating func enter(_ mapping: StapProbeMapping?) {
    locals = [:]
    self.mapping = mapping
    record = nil
    if let mapping, mapping.provider == "tracepoint", mapping.parts.count == 2, !mapping.parts[1].contains("*"),
      mapping.parts[0] != "*"
    {
      record = catalog.record(category: mapping.parts[0], name: mapping.parts[1])
    }
  }

  /// The block for a probe's body, after the entry block its `@entry(e)` values need, if any.
  mutating func lowerBody(_ probe: StapProbe, mapping: StapProbeMapping?, specs: [ProbeSpec]) -> [ProbeBlock] {
    var blocks: [ProbeBlock] = []
    entryMaps = [:]
    entriesOpen = nil
    if let mapping, mapping.isReturn, let entry = entryBlock(probe, mapping: mapping, specs: specs) { blocks.append(entry) }
    enter(mapping)
    var statements = zeroedLocals(probe.body) + lowerStatements(probe.body)
    if let open = entriesOpen { statements = [returnFromSeenEntry(open, statements, span: probe.body.span)] }
    if mapping?.provider == "END" {
      // Without an error() in the script, an error probe never runs.
      if mapping?.isErrorProbe == true && !tracksErrors { return blocks }
      statements = guardedByErrors(statements, isErrorProbe: mapping?.isErrorProbe == true, span: probe.span)
    }
    blocks.append(ProbeBlock(
      span: probe.span, specs: specs, predicate: nil, body: Block(span: probe.body.span, statements: statements),
      isAngleBlock: false))
    return blocks
  }

  /// A return probe's body run only for a return whose entry was seen: `if (@open[tid] > 0)`,
  /// the count taken down first (and the thread's key deleted at zero).
  mutating func returnFromSeenEntry(_ open: String, _ body: [Stmt], span: SourceSpan) -> Stmt {
    func count() -> Expr { globalRef(open, keys: [expr(.identifier("tid"), span)], span: span) }
    let last = expr(.binary(.lessEqual, count(), expr(.integer(1), span)), span)
    let delete = stmt(.expression(expr(.call(name: "delete", nameSpan: span, args: [count()]), span)), span)
    let decrement = stmt(.expression(expr(.update(count(), isIncrement: false, isPrefix: false), span)), span)
    let close = stmt(.ifElse(condition: last, then: Block(span: span, statements: [delete]), elseBranch: Block(span: span, statements: [decrement])), span)
    let seen = expr(.binary(.greater, count(), expr(.integer(0), span)), span)
    return stmt(.ifElse(condition: seen, then: Block(span: span, statements: [close] + body), elseBranch: nil), span)
  }

  /// `@entry(e)` in a return probe: a block at the function's entry saves `e` by thread, and the
  /// return probe reads it back.
  mutating func entryBlock(_ probe: StapProbe, mapping: StapProbeMapping, specs: [ProbeSpec]) -> ProbeBlock? {
    var uses: [StapExpr] = []
    visit(probe.body) { e in if case .extractor("entry", _, let args) = e.kind, args.count == 1 { uses.append(e) } }
    guard !uses.isEmpty else { return nil }
    var entry = mapping
    entry.isReturn = false
    switch mapping.provider {
    case "uretprobe": entry.provider = "uprobe"
    case "kretprobe": entry.provider = "kprobe"
    case "tracepoint" where mapping.parts.count == 2 && mapping.parts[1].hasPrefix("sys_exit_"):
      entry.parts[1] = "sys_enter_" + mapping.parts[1].dropFirst("sys_exit_".count)
    default: return nil
    }
    enter(entry)
    var statements: [Stmt] = []
    for use in uses {
      guard case .extractor(_, _, let args) = use.kind else { continue }
      temporaries += 1
      let name = "__entry\(temporaries)"
      entryMaps[ObjectIdentifier(use)] = name
      var prelude: [Stmt] = []
      let value = lowerExpr(args[0], prelude: &prelude)
      let key = expr(.identifier("tid"), use.span)
      statements += prelude
      statements.append(stmt(.assign(target: globalRef(name, keys: [key], span: use.span), op: nil, value: value), use.span))
    }
    // Count the thread's entries, so that a return whose entry came before the probes attached
    // does not read @entry as 0: SystemTap's return probes fire only for entries they saw.
    temporaries += 1
    let open = "__entries_open\(temporaries)"
    entriesOpen = open
    let openKey = [expr(.identifier("tid"), probe.span)]
    statements.append(stmt(.expression(expr(.update(globalRef(open, keys: openKey, span: probe.span), isIncrement: true, isPrefix: false), probe.span)), probe.span))
    let entrySpecs = specs.map { ProbeSpec(span: $0.span, provider: entry.provider, parts: entry.parts, partSpans: $0.partSpans) }
    return ProbeBlock(span: probe.span, specs: entrySpecs, predicate: nil, body: Block(span: probe.body.span, statements: statements),
      isAngleBlock: false)
  }
}
