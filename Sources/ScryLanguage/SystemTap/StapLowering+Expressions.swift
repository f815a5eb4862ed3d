extension StapLowering {
  static let binaryOperators: [String: BinaryOperator] = Dictionary(
    uniqueKeysWithValues: BinaryOperator.allCases.map { ($0.rawValue, $0) })

  /// An initializer: no function calls with statements.
  mutating func lowerValue(_ e: StapExpr) -> Expr {
    var prelude: [Stmt] = []
    let value = lowerExpr(e, prelude: &prelude)
    if !prelude.isEmpty { error(e.span, "a global's initial value cannot call a function with statements") }
    return value
  }

  /// The Scry name of a local: function bodies get their own prefix, so inlining keeps scopes apart.
  func localName(_ name: String) -> String { "$" + (inlining.last.map { "__\($0)_" } ?? "") + name }

  /// The kind of a value, with the locals known so far.
  func kind(_ e: StapExpr) -> Kind {
    switch e.kind {
    case .name(let n) where locals[n] != nil: return locals[n]!
    case .name("name") where mapping?.syscall != nil: return .string
    case .name("argstr") where mapping?.syscall != nil: return .string
    case .name(let n) where globals[n] == nil:
      if let field = record?.fields.first(where: { $0.name == n }) { return field.type.isInteger && !isCharPointer(field.type) ? .integer : .string }
      return .unknown
    case .target(let n):
      if let field = record?.fields.first(where: { $0.name == n }) { return field.type.isInteger ? .integer : field.type.isString ? .string : .unknown }
      return n == "return" ? .integer : .unknown
    case .call(let name, _, _) where functions[name] != nil:
      return returnsString(functions[name]!.body) ? .string : .integer
    case .ternary(_, let a, let b): return kind(a) == .unknown ? kind(b) : kind(a)
    default: return staticKind(e)
    }
  }

  func returnsString(_ s: StapStmt) -> Bool {
    contains(s) { stmt in
      if case .returnValue(let v?) = stmt.kind { return staticKind(v) == .string }
      return false
    }
  }

  func isCharPointer(_ type: ScryType) -> Bool {
    if case .pointer(let inner) = type, case .integer(let t) = inner, t.bits == 8 { return true }
    return false
  }

  /// A statement-level expression: assignments, `++`, calls with effects.
  mutating func lowerEffect(_ e: StapExpr, prelude: inout [Stmt]) -> [Stmt] {
    switch e.kind {
    case .assign(let op, let target, let value): return lowerAssign(op, target, value, span: e.span, prelude: &prelude)
    case .call(let name, let nameSpan, let args):
      if let f = TapsetFunction(rawValue: name) {
        switch f {
        case .printf, .print, .println, .printd, .printdln:
          return [stmt(.expression(lowerPrint(f, args: args, span: e.span, prelude: &prelude)), e.span)]
        case .printBacktrace, .printUbacktrace, .printStack, .printUstack:
          let value: Expr
          if f == .printStack || f == .printUstack {
            guard args.count == 1 else { return [stmt(.expression(missing(e.span, "'\(name)()' takes the stack to print")), e.span)] }
            value = lowerExpr(args[0], prelude: &prelude)
          } else {
            guard args.isEmpty else { return [stmt(.expression(missing(e.span, "'\(name)()' takes no arguments")), e.span)] }
            value = stack(f, span: e.span)
          }
          let format = expr(.string(Array("%s".utf8)), e.span)
          return [stmt(.expression(expr(.call(name: "printf", nameSpan: nameSpan, args: [format, value]), e.span)), e.span)]
        case .error where !tries.isEmpty:
          let current = tries.last!
          let message = args.first.map { buildString(valuePieces($0, prelude: &prelude), span: $0.span) } ?? expr(.string([]), e.span)
          return [
            stmt(.assign(target: expr(.variable(current.message), e.span), op: nil, value: message), e.span),
            stmt(.assign(target: expr(.variable(current.caught), e.span), op: nil, value: expr(.integer(1), e.span)), e.span),
            stmt(.breakLoop, e.span),
          ]
        case .error:
          var stmts: [Stmt] = []
          if let message = args.first {
            let call = lowerPrint(.printf, args: [StapExpr(.string(Array("ERROR: %s\n".utf8)), nameSpan), message], span: e.span, prelude: &prelude)
            stmts.append(stmt(.expression(call), e.span))
          }
          // The run ends in error: `error` probes run at the end, `end` probes do not.
          let flag = globalRef(Self.errorFlag, keys: [], span: e.span)
          stmts.append(stmt(.assign(target: flag, op: nil, value: expr(.integer(1), e.span)), e.span))
          stmts.append(stmt(.expression(expr(.call(name: "exit", nameSpan: nameSpan, args: []), e.span)), e.span))
          return stmts
        default: break
        }
      }
      if let function = functions[name] {
        _ = inline(function, args: args, span: e.span, prelude: &prelude)
        return []
      }
    default: break
    }
    return [stmt(.expression(lowerExpr(e, prelude: &prelude)), e.span)]
  }

  mutating func lowerAssign(_ op: String, _ target: StapExpr, _ value: StapExpr, span: SourceSpan, prelude: inout [Stmt]) -> [Stmt] {
    if op == "<<<" { return lowerStatisticUpdate(target, value, span: span, prelude: &prelude) }
    if op == ".=" { return lowerAssign("=", target, StapExpr(.binary(".", target, value), span), span: span, prelude: &prelude) }
    let lowered = lowerExpr(value, prelude: &prelude)
    let binary: BinaryOperator? = op == "=" ? nil : Self.binaryOperators[String(op.dropLast())]
    if case .name(let n) = target.kind, globals[n] == nil {
      if op == "=" { locals[n] = kind(value) } else if locals[n] == nil {
        error(target.span, "'\(n)' is updated before it is assigned", hint: "assign it first: \(n) = 0")
      }
      return [stmt(.assign(target: expr(.variable(localName(n)), target.span), op: binary, value: lowered), span)]
    }
    if let g = globalName(target) { learnKinds(g, target: target, value: op == "=" ? value : nil) }
    let t = lowerLValue(target, prelude: &prelude)
    return [stmt(.assign(target: t, op: binary, value: lowered), span)]
  }

  /// A global's value and key kinds that its form alone did not tell (`s = "x"; g[s] = s`): the
  /// kinds of the locals known here. The exit printer, made after every probe, reads them.
  mutating func learnKinds(_ g: String, target: StapExpr, value: StapExpr?) {
    if let value, globals[g]?.kind == .unknown {
      let learned = kind(value)
      globals[g]?.kind = learned
    }
    guard case .index(_, _, let keys) = target.kind, var known = globals[g]?.keyKinds, known.count == keys.count else { return }
    for (i, key) in keys.enumerated() where known[i] == .unknown {
      let learned = kind(key)
      known[i] = learned
    }
    globals[g]?.keyKinds = known
  }

  /// The map (or variable) an assignment or `++` writes.
  mutating func lowerLValue(_ target: StapExpr, prelude: inout [Stmt]) -> Expr {
    switch target.kind {
    case .name(let n) where globals[n] != nil:
      if globals[n]!.isStatistic { return missing(target.span, "'\(n)' is a statistic: add to it with '<<<'") }
      return globalRef(n, keys: [], span: target.span)
    case .name(let n):
      if locals[n] == nil { locals[n] = .integer }
      return expr(.variable(localName(n)), target.span)
    case .index(let n, _, let keys) where globals[n] != nil:
      return globalRef(n, keys: keys.map { lowerExpr($0, prelude: &prelude) }, span: target.span)
    case .index(let n, let nameSpan, _):
      return missing(nameSpan, "'\(n)' is not a global array", hint: "declare it with 'global \(n)'")
    default:
      return missing(target.span, "this cannot be assigned to")
    }
  }

  /// `x[k] <<< v`: one aggregation per map the statistic keeps.
  mutating func lowerStatisticUpdate(_ target: StapExpr, _ value: StapExpr, span: SourceSpan, prelude: inout [Stmt]) -> [Stmt] {
    guard let g = globalName(target) else {
      error(target.span, "'<<<' adds to a global statistic", hint: "declare it with 'global'")
      return []
    }
    var keys: [StapExpr] = []
    if case .index(_, _, let list) = target.kind { keys = list }
    learnKinds(g, target: target, value: nil)
    temporaries += 1
    let temp = "$__stat\(temporaries)"
    var out = [stmt(.assign(target: expr(.variable(temp), value.span), op: nil, value: lowerExpr(value, prelude: &prelude)), span)]
    // count, sum, min and max are plain integers (so they can be read, sorted and printed); the
    // histograms are Scry's aggregations. The count goes last: min and max see whether it is 0.
    func map(_ extractor: String, _ prelude: inout [Stmt]) -> Expr {
      globalRef(g, extractor: extractor, keys: keys.map { lowerExpr($0, prelude: &prelude) }, span: target.span)
    }
    func v() -> Expr { expr(.variable(temp), value.span) }
    for extractor in statisticMaps(g).filter({ $0 != "count" }) + ["count"] {
      switch extractor {
      case "count": out.append(stmt(.expression(expr(.update(map("count", &prelude), isIncrement: true, isPrefix: false), span)), span))
      case "sum": out.append(stmt(.assign(target: map("sum", &prelude), op: .add, value: v()), span))
      case "min", "max":
        let first = expr(.binary(.equal, map("count", &prelude), expr(.integer(0), span)), span)
        let better = expr(.binary(extractor == "min" ? .less : .greater, v(), map(extractor, &prelude)), span)
        let condition = expr(.binary(.logicalOr, first, better), span)
        let set = stmt(.assign(target: map(extractor, &prelude), op: nil, value: v()), span)
        out.append(stmt(.ifElse(condition: condition, then: Block(span: span, statements: [set]), elseBranch: nil), span))
      case "variance":
        // With a bit shift the running mean and sum of squares are of `value << shift`.
        let shift = globals[g]?.varianceShift ?? 0
        let shifted = shift == 0 ? v() : expr(.binary(.shiftLeft, v(), expr(.integer(shift), span)), span)
        out += varianceUpdate(g, value: shifted, keys: keys, span: span, prelude: &prelude)
      case "hist_log", "hist_linear":
        var args = [v()]
        if extractor == "hist_linear" {
          let bounds = globals[g]?.linear ?? []
          if bounds.count != 3 { error(target.span, "@hist_linear needs its bounds: @hist_linear(\(g), low, high, width)") }
          args += bounds.map { lowerValue($0) }
          // SystemTap's last row holds [high, high + width) and its overflow starts past it
          // (runtime/stat-common.c): Scry's lhist gets one more bucket, drawn with the label `>high`.
          if bounds.count == 3, case .integer(let high) = bounds[1].kind, case .integer(let width) = bounds[2].kind {
            args[2] = expr(.integer(high &+ width), bounds[1].span)
          }
        }
        let call = expr(.call(name: extractor == "hist_log" ? "hist" : "lhist", nameSpan: span, args: args), span)
        out.append(stmt(.assign(target: map(extractor, &prelude), op: nil, value: call), span))
      default: break
      }
    }
    return out
  }

  /// SystemTap's running variance (runtime/stat-common.c, Welford's algorithm over integers, of
  /// the value already shifted by the statistic's bit shift): the mean and the sum of squares kept per key, the variance `M2 / (n - 1)`
  /// set from the second value on. Runs before the count is incremented, so the count is n - 1.
  mutating func varianceUpdate(_ g: String, value: Expr, keys: [StapExpr], span: SourceSpan, prelude: inout [Stmt]) -> [Stmt] {
    func map(_ name: String) -> Expr { globalRef(g, extractor: name, keys: keys.map { lowerExpr($0, prelude: &prelude) }, span: span) }
    func int(_ n: UInt64) -> Expr { expr(.integer(n), span) }
    func assign(_ target: Expr, _ op: BinaryOperator?, _ value: Expr) -> Stmt { stmt(.assign(target: target, op: op, value: value), span) }
    temporaries += 1
    let shifted = "$__shifted\(temporaries)"
    // Each use reads its own node of the value, kept first in a variable of this block.
    func v() -> Expr { expr(.variable(shifted), span) }
    func delta() -> Expr { expr(.binary(.subtract, v(), map("variance_mean")), span) }
    // The first value sets all three (the variance 0 below two values, as Scry reads it).
    let first = Block(span: span, statements: [
      assign(map("variance_mean"), nil, v()), assign(map("variance_m2"), nil, int(0)), assign(map("variance"), nil, int(0)),
    ])
    func n() -> Expr { expr(.binary(.add, map("count"), int(1)), span) }
    // M2 += delta * (value - (mean + delta / n)), then mean += delta / n: the new mean written out
    // in M2's update keeps delta a value of the old mean without a variable of its own.
    let newMean = expr(.binary(.add, map("variance_mean"), expr(.binary(.divide, delta(), n()), span)), span)
    let later = Block(span: span, statements: [
      assign(map("variance_m2"), .add, expr(.binary(.multiply, delta(), expr(.binary(.subtract, v(), newMean), span)), span)),
      assign(map("variance_mean"), .add, expr(.binary(.divide, delta(), n()), span)),
      assign(map("variance"), nil, expr(.binary(.divide, map("variance_m2"), map("count")), span)),
    ])
    let isFirst = expr(.binary(.equal, map("count"), int(0)), span)
    return [assign(v(), nil, value), stmt(.ifElse(condition: isFirst, then: first, elseBranch: later), span)]
  }

  mutating func lowerExpr(_ e: StapExpr, prelude: inout [Stmt]) -> Expr {
    switch e.kind {
    case .integer(let n): return expr(.integer(n), e.span)
    case .string(let bytes): return expr(.string(bytes), e.span)
    case .missing: return expr(.missing, e.span)
    case .name(let n): return lowerName(n, span: e.span)
    case .target(let n): return lowerTarget(n, span: e.span)
    case .field(let base, let name):
      return expr(.field(lowerExpr(base, prelude: &prelude), name: name, isArrow: true), e.span)
    case .index(let n, let nameSpan, let keys):
      guard let use = globals[n] else { return missing(nameSpan, "'\(n)' is not a global array", hint: "declare it with 'global \(n)'") }
      if isNeverWritten(n) { return unsetValue(n, span: e.span) }
      if use.isStatistic {
        return missing(e.span, "'\(n)' is a statistic: read it through an extractor", hint: "@count(\(n)[…]), @sum, @min, @max, @avg")
      }
      return globalRef(n, keys: keys.map { lowerExpr($0, prelude: &prelude) }, span: e.span)
    case .call(let name, let nameSpan, let args): return lowerCall(name, nameSpan: nameSpan, args: args, span: e.span, prelude: &prelude)
    case .extractor("entry", _, _) where entryMaps[ObjectIdentifier(e)] != nil:
      return globalRef(entryMaps[ObjectIdentifier(e)]!, keys: [expr(.identifier("tid"), e.span)], span: e.span)
    case .extractor(let name, let nameSpan, let args): return lowerExtractor(name, nameSpan: nameSpan, args: args, span: e.span, prelude: &prelude)
    case .unary(let op, let operand):
      let inner = lowerExpr(operand, prelude: &prelude)
      let unary: UnaryOperator = op == "!" ? .not : op == "~" ? .bitNot : .negate
      return expr(.unary(unary, inner), e.span)
    case .binary(".", _, _):
      return buildString(valuePieces(e, prelude: &prelude), span: e.span)
    case .binary(let op, let a, let b):
      let left = lowerExpr(a, prelude: &prelude)
      let right = lowerExpr(b, prelude: &prelude)
      guard let binary = Self.binaryOperators[op] else { return missing(e.span, "unknown operator '\(op)'") }
      return expr(.binary(binary, left, right), e.span)
    case .ternary(let c, let a, let b):
      return expr(.ternary(lowerExpr(c, prelude: &prelude), lowerExpr(a, prelude: &prelude), lowerExpr(b, prelude: &prelude)), e.span)
    case .assign:
      return missing(e.span, "an assignment inside an expression is not supported", hint: "assign in a statement of its own")
    case .update(let target, let isIncrement, let isPrefix):
      if case .name(let n) = target.kind, globals[n] == nil, locals[n] == nil { locals[n] = .integer }
      if let g = globalName(target) { learnKinds(g, target: target, value: nil) }
      return expr(.update(lowerLValue(target, prelude: &prelude), isIncrement: isIncrement, isPrefix: isPrefix), e.span)
    case .membership(let keys, let array, let arraySpan):
      guard let use = globals[array] else { return missing(arraySpan, "'\(array)' is not a global array") }
      if isNeverWritten(array) { return expr(.integer(0), e.span) }
      let map = globalRef(array, extractor: use.isStatistic ? "count" : nil, keys: [], span: arraySpan)
      let lowered = keys.map { lowerExpr($0, prelude: &prelude) }
      let key = lowered.count == 1 ? lowered[0] : expr(.tuple(lowered), e.span)
      return expr(.call(name: "has_key", nameSpan: e.span, args: [map, key]), e.span)
    }
  }

  mutating func lowerName(_ n: String, span: SourceSpan) -> Expr {
    if locals[n] != nil { return expr(.variable(localName(n)), span) }
    if let use = globals[n] {
      if isNeverWritten(n) { return unsetValue(n, span: span) }
      if use.isStatistic { return missing(span, "'\(n)' is a statistic: read it through an extractor", hint: "@count(\(n)), @sum, @min, @max, @avg") }
      return globalRef(n, keys: [], span: span)
    }
    if mapping?.namesByNumber == true, n == "name" {
      usesSyscallNames = true
      let number = expr(.field(expr(.identifier("args"), span), name: "id", isArrow: false), span)
      return globalRef(Self.syscallNamesMap, keys: [number], span: span)
    }
    if let syscall = mapping?.syscall, n == "name" { return expr(.string(Array(syscall.utf8)), span) }
    if mapping?.syscall != nil && (n == "retstr" || n == "retval") && mapping?.isReturn == true {
      return expr(.field(expr(.identifier("args"), span), name: "ret", isArrow: false), span)
    }
    if n == "argstr" {
      guard mapping?.syscall != nil, mapping?.isReturn == false, record != nil else {
        return missing(span, "'argstr' is read in a syscall's entry probe: 'syscall.NAME'", hint: "print the arguments by name, such as 'filename' or '$fd'")
      }
      return buildString(argumentPieces(span: span), span: span)
    }
    if let field = record?.fields.first(where: { $0.name == n }) {
      let read = expr(.field(expr(.identifier("args"), span), name: n, isArrow: false), span)
      if isCharPointer(field.type) { return expr(.call(name: "str", nameSpan: span, args: [read]), span) }
      return read
    }
    return missing(span, "'\(n)' is read before it is assigned", hint: "SystemTap's locals start at 0 or \"\"; assign it first")
  }

  mutating func lowerTarget(_ n: String, span: SourceSpan) -> Expr {
    if n == "return" {
      if mapping?.syscall != nil || mapping?.parts.last?.hasPrefix("sys_exit") == true {
        return expr(.field(expr(.identifier("args"), span), name: "ret", isArrow: false), span)
      }
      return expr(.identifier("retval"), span)
    }
    if n.hasPrefix("$") {
      return missing(span, "'$\(n)' is supported only in what is printed", hint: "print it: println($\(n))")
    }
    // A mark's arguments are `$arg1`…`$argN` (SystemTap counts from 1, the USDT note from 0).
    if mapping?.provider == "usdt" {
      guard n.hasPrefix("arg"), let index = Int(n.dropFirst(3)), index >= 1 else {
        return missing(span, "a mark probe has only '$arg1', '$arg2'…", hint: "the arguments its STAP_PROBE passes, in order")
      }
      return expr(.identifier("arg\(index - 1)"), span)
    }
    if mapping?.provider == "uprobe" || mapping?.provider == "uretprobe" {
      return missing(span, "'$\(n)' needs the binary's debug information, which Scry does not read", hint: "use uint_arg(N) or pointer_arg(N)")
    }
    return expr(.field(expr(.identifier("args"), span), name: n, isArrow: false), span)
  }
}
