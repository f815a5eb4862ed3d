import Glibc

extension StapLowering {
  mutating func lowerCall(_ name: String, nameSpan: SourceSpan, args: [StapExpr], span: SourceSpan, prelude: inout [Stmt]) -> Expr {
    if let function = functions[name] { return inline(function, args: args, span: span, prelude: &prelude) }
    // `sprint_stack(backtrace())`, the tapset's own spelling of sprint_backtrace(): the stack is
    // captured here, so its brief text is formatted as sprint_backtrace's. A stack kept in a
    // variable has no text to give (Scry keeps it by number), and stays refused below.
    if name == "sprint_stack" || name == "sprint_ustack", args.count == 1, case .call(let inner, _, let innerArgs) = args[0].kind,
      innerArgs.isEmpty, inner == (name == "sprint_stack" ? "backtrace" : "ubacktrace")
    {
      return stack(name == "sprint_stack" ? .sprintBacktrace : .sprintUbacktrace, span: span)
    }
    guard let f = TapsetFunction(rawValue: name) else {
      if let reason = TapsetFunction.unsupported[name] { return missing(nameSpan, "'\(name)()' is not supported", hint: reason) }
      let candidates = TapsetFunction.allCases.map(\.rawValue) + Array(functions.keys)
      return missing(nameSpan, "unknown function '\(name)'", hint: Suggestions.hint(for: name, in: candidates) ?? "see docs/systemtap.md for the tapset functions Scry runs")
    }
    let lowered = args.map { lowerExpr($0, prelude: &prelude) }
    func call(_ scry: String, _ a: [Expr]) -> Expr { expr(.call(name: scry, nameSpan: nameSpan, args: a), span) }
    if f == .target, let targetPid { return expr(.integer(UInt64(targetPid)), span) }
    if let builtin = f.builtin {
      if !args.isEmpty { return missing(span, "'\(name)()' takes no arguments") }
      return expr(.identifier(builtin), span)
    }
    switch f {
    case .localClockUs, .localClockMs, .localClockS:
      let divisor: UInt64 = f == .localClockUs ? 1000 : f == .localClockMs ? 1_000_000 : 1_000_000_000
      return expr(.binary(.divide, expr(.identifier("nsecs"), span), expr(.integer(divisor), span)), span)
    case .ppid:
      let parent = expr(.field(expr(.identifier("curtask"), span), name: "real_parent", isArrow: true), span)
      return expr(.field(parent, name: "tgid", isArrow: true), span)
    case .euid:
      let cred = expr(.field(expr(.identifier("curtask"), span), name: "cred", isArrow: true), span)
      return expr(.field(expr(.field(cred, name: "euid", isArrow: true), span), name: "val", isArrow: false), span)
    case .userString, .kernelString, .userStringN:
      let arity = f == .userStringN ? 2 : 1
      if lowered.count == arity + 1 && f != .kernelString {
        // The tapset's form that gives err_msg where the read faults: Scry's str() has no fault to
        // test, and a default given only for some faults would hide the others.
        return missing(args[arity].span, "'\(name)()' with a default for an unreadable address is not supported",
          hint: "drop the default: an unreadable string reads as \"\"")
      }
      guard lowered.count == arity else { return missing(span, "'\(name)()' takes \(arity) argument(s)") }
      return call("str", lowered)
    case .isinstr:
      guard lowered.count == 2 else { return missing(span, "'isinstr()' takes 2 arguments") }
      return call("strcontains", lowered)
    case .exit: return call("exit", [])
    case .uintArg, .intArg, .longArg, .ulongArg, .pointerArg:
      guard args.count == 1, case .integer(let n) = args[0].kind, n >= 1, n <= 10 else {
        return missing(span, "'\(name)()' takes the argument's number, 1 to 10, as a literal")
      }
      return expr(.identifier("arg\(n - 1)"), span)
    case .sprintf, .sprint:
      return buildString(valuePieces(StapExpr(.call(name, nameSpan: nameSpan, args), span), prelude: &prelude), span: span)
    case .textStr, .textStrn:
      let arity = f == .textStr ? 1 : 3
      guard lowered.count == arity else { return missing(span, "'\(name)()' takes \(arity) argument(s)") }
      if f == .textStrn {
        for arg in args.dropFirst() {
          guard case .integer = arg.kind else { return missing(arg.span, "text_strn()'s length and quoting are literal numbers here") }
        }
      }
      return call("text_strn", f == .textStr ? lowered + [expr(.integer(0), span), expr(.integer(0), span)] : lowered)
    case .ctime where args.isEmpty:
      // `ctime()` is the time now (SystemTap 4.0).
      return call("ctime", [expr(.binary(.divide, call("gettimeofday_ns", []), expr(.integer(1_000_000_000), span)), span)])
    case .strlen, .substr, .strtol, .ctime, .strReplace, .stringat:
      let arity = f == .strlen || f == .ctime ? 1 : f == .substr || f == .strReplace ? 3 : 2
      guard lowered.count == arity else { return missing(span, "'\(name)()' takes \(arity) argument(s)") }
      return call(name, lowered)
    case .isdigit:
      // Whether the first character is a digit: stringat(s, 0) in '0'…'9', once per event.
      guard lowered.count == 1 else { return missing(span, "'isdigit()' takes 1 argument") }
      temporaries += 1
      let first = "$__first\(temporaries)"
      prelude.append(stmt(.assign(target: expr(.variable(first), span), op: nil, value: call("stringat", [lowered[0], expr(.integer(0), span)])), span))
      let low = expr(.binary(.greaterEqual, expr(.variable(first), span), expr(.integer(UInt64(UInt8(ascii: "0"))), span)), span)
      let high = expr(.binary(.lessEqual, expr(.variable(first), span), expr(.integer(UInt64(UInt8(ascii: "9"))), span)), span)
      return expr(.binary(.logicalAnd, low, high), span)
    case .stringQuoted:
      guard lowered.count == 1 else { return missing(span, "'string_quoted()' takes 1 argument") }
      return call("text_strn", lowered + [expr(.integer(0), span), expr(.integer(1), span)])
    case .tzGmtoff, .tzName, .tzCtime:
      return timeZoneCall(f, lowered, span: span)
    case .returnval:
      // The return value of a return probe, as `$return` reads it.
      guard mapping?.isReturn == true else { return missing(span, "'returnval()' is read in return probes", hint: "probe syscall.NAME.return or process(…).function(…).return") }
      return lowerTarget("return", span: span)
    case .symname, .usymname:
      // The function holding an address, named when printed (Scry's ksym and usym).
      guard lowered.count == 1 else { return missing(span, "'\(name)()' takes 1 argument") }
      return call(f == .symname ? "ksym" : "usym", lowered)
    case .threadIndent:
      guard lowered.count == 1 else { return missing(span, "'thread_indent()' takes 1 argument") }
      return threadIndent(lowered[0], span: span, prelude: &prelude)
    case .pexecname:
      if !args.isEmpty { return missing(span, "'pexecname()' takes no arguments") }
      let parent = expr(.field(expr(.identifier("curtask"), span), name: "real_parent", isArrow: true), span)
      return expr(.field(parent, name: "comm", isArrow: true), span)
    case .backtrace, .ubacktrace, .sprintBacktrace, .sprintUbacktrace:
      if !args.isEmpty { return missing(span, "'\(name)()' takes no arguments") }
      return stack(f, span: span)
    case .printBacktrace, .printUbacktrace, .printStack, .printUstack:
      return missing(span, "'\(name)()' gives no value")
    case .gettimeofdayS, .gettimeofdayMs, .gettimeofdayUs, .gettimeofdayNs:
      if !args.isEmpty { return missing(span, "'\(name)()' takes no arguments") }
      let now = call("gettimeofday_ns", [])
      let divisor: UInt64 = f == .gettimeofdayS ? 1_000_000_000 : f == .gettimeofdayMs ? 1_000_000 : f == .gettimeofdayUs ? 1000 : 1
      return divisor == 1 ? now : expr(.binary(.divide, now, expr(.integer(divisor), span)), span)
    case .printf, .print, .println, .printd, .printdln, .error:
      return missing(span, "'\(name)()' gives no value")
    default:
      return missing(span, "'\(name)()' is not supported here")
    }
  }

  /// The stack a backtrace function captures at the event: Scry's kstack or ustack, printed as
  /// SystemTap prints it (print_backtrace's lines, or sprint_backtrace's brief ones), with its
  /// MAXBACKTRACE frames.
  mutating func stack(_ f: TapsetFunction, span: SourceSpan) -> Expr {
    let isKernel = f == .backtrace || f == .sprintBacktrace || f == .printBacktrace
    let mode = f == .sprintBacktrace || f == .sprintUbacktrace ? StackType.Mode.systemTapBrief : .systemTap
    let args = [expr(.identifier(mode.rawValue), span), expr(.integer(TapsetFunction.stackDepth), span)]
    return expr(.call(name: isKernel ? "kstack" : "ustack", nameSpan: span, args: args), span)
  }

  /// `tz_gmtoff()`, `tz_name()` and `tz_ctime(s)`: the local time zone where the script is
  /// translated, as SystemTap's staprun passes it at startup (seconds west of UTC, and its name).
  mutating func timeZoneCall(_ f: TapsetFunction, _ args: [Expr], span: SourceSpan) -> Expr {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    let west = -Int64(parts.tm_gmtoff)
    let name = parts.tm_zone.map { String(cString: $0) } ?? "UTC"
    switch f {
    case .tzGmtoff:
      guard args.isEmpty else { return missing(span, "'tz_gmtoff()' takes no arguments") }
      return expr(.integer(UInt64(bitPattern: west)), span)
    case .tzName:
      guard args.isEmpty else { return missing(span, "'tz_name()' takes no arguments") }
      return expr(.string(Array(name.utf8)), span)
    default:
      guard args.count == 1 else { return missing(span, "'tz_ctime()' takes 1 argument") }
      // ctime(s - tz_gmtoff()) . " " . tz_name(), as the tapset writes it.
      let local = expr(.binary(.subtract, args[0], expr(.integer(UInt64(bitPattern: west)), span)), span)
      let text = expr(.call(name: "ctime", nameSpan: span, args: [local]), span)
      return buildString([.value(text, conversion: Array("%s".utf8)), .text(Array((" " + name).utf8))], span: span)
    }
  }

  /// `thread_indent(delta)`, as the tapset's `_generic_indent` writes it: microseconds since the
  /// thread's first indent, `execname(tid):`, then one space per level below the first. The
  /// levels and first times are kept per thread in two maps.
  mutating func threadIndent(_ delta: Expr, span: SourceSpan, prelude: inout [Stmt]) -> Expr {
    temporaries += 1
    let n = temporaries
    func variable(_ name: String) -> Expr { expr(.variable("$__indent_\(name)\(n)"), span) }
    func int(_ v: UInt64) -> Expr { expr(.integer(v), span) }
    func counter() -> Expr { globalRef("__indent_counters", keys: [expr(.identifier("tid"), span)], span: span) }
    func stamp() -> Expr { globalRef("__indent_timestamps", keys: [expr(.identifier("tid"), span)], span: span) }
    func assign(_ target: Expr, _ op: BinaryOperator?, _ value: Expr) -> Stmt { stmt(.assign(target: target, op: op, value: value), span) }
    let now = expr(.binary(.divide, expr(.call(name: "gettimeofday_ns", nameSpan: span, args: []), span), int(1000)), span)
    let positive = expr(.binary(.greater, variable("delta"), int(0)), span)
    let level = expr(.binary(.add, counter(), expr(.ternary(positive, variable("delta"), int(0)), span)), span)
    let first = expr(.binary(.equal, counter(), int(0)), span)
    let padding = expr(.ternary(expr(.binary(.greater, variable("level"), int(0)), span),
      expr(.binary(.subtract, variable("level"), int(1)), span), int(0)), span)
    prelude += [
      assign(variable("delta"), nil, delta),
      assign(variable("now"), nil, now),
      stmt(.ifElse(condition: first, then: Block(span: span, statements: [assign(stamp(), nil, variable("now"))]), elseBranch: nil), span),
      assign(variable("level"), nil, level),
      assign(counter(), .add, variable("delta")),
    ]
    // `%-*s` of "": the padding, cut from a string of spaces as long as a string can be.
    let spaces = expr(.string(Array(repeating: UInt8(ascii: " "), count: Function.systemTapStringCapacity - 1)), span)
    let indent = expr(.call(name: "substr", nameSpan: span, args: [spaces, int(0), padding]), span)
    return buildString([
      .value(expr(.binary(.subtract, variable("now"), stamp()), span), conversion: Array("%6ld".utf8)), .text([UInt8(ascii: " ")]),
      .value(expr(.identifier("comm"), span), conversion: Array("%s".utf8)), .text([UInt8(ascii: "(")]),
      .value(expr(.identifier("tid"), span), conversion: Array("%ld".utf8)), .text(Array("):".utf8)),
      .value(indent, conversion: Array("%s".utf8)),
    ], span: span)
  }

  mutating func lowerExtractor(_ name: String, nameSpan: SourceSpan, args: [StapExpr], span: SourceSpan, prelude: inout [Stmt]) -> Expr {
    if name == "entry" {
      return missing(nameSpan, "'@entry()' is read in return probes: 'process(…).function(…).return', 'syscall.NAME.return'",
        hint: "save the value in a global array keyed by tid() at the entry probe")
    }
    guard Self.statisticExtractors.contains(name) else {
      return missing(nameSpan, "unknown extractor '@\(name)'", hint: Suggestions.hint(for: name, in: Self.statisticExtractors) ?? "extractors: @count @sum @min @max @avg @variance @hist_log @hist_linear")
    }
    guard let first = args.first, let g = globalName(first), globals[g]?.isStatistic == true else {
      return missing(span, "'@\(name)' reads a global statistic, one that '<<<' adds to")
    }
    if name.hasPrefix("hist") {
      return missing(span, "a histogram is printed, not read", hint: "print(@\(name)(\(g)))")
    }
    var shift: UInt64 = 0
    if name == "variance" {
      // One shift per statistic, as SystemTap keeps it (stat.c's bit_shift), a literal 0…62.
      if args.count > 1 {
        guard args.count == 2, case .integer(let n) = args[1].kind, n <= 62 else {
          return missing(args[1].span, "@variance's bit shift is a literal number from 0 to 62")
        }
        shift = n
      }
      guard shift == globals[g]?.varianceShift ?? 0 else {
        return missing(args.count > 1 ? args[1].span : span, "'\(g)' is read with two different @variance shifts",
          hint: "use one shift for every @variance(\(g), N)")
      }
    }
    func read(_ extractor: String, _ prelude: inout [Stmt]) -> Expr {
      var keys: [Expr] = []
      if case .index(_, _, let list) = first.kind { keys = list.map { lowerExpr($0, prelude: &prelude) } }
      return globalRef(g, extractor: extractor, keys: keys, span: span)
    }
    if name == "avg" { return expr(.binary(.divide, read("sum", &prelude), read("count", &prelude)), span) }
    if name == "variance" {
      var keys: [StapExpr] = []
      if case .index(_, _, let list) = first.kind { keys = list }
      return varianceRead(g, keys: keys, shift: shift, span: span, prelude: &prelude)
    }
    return read(name, &prelude)
  }

  /// `@variance` as runtime/stat.c's `_stp_stat_get` reads it, for one CPU's data: the running
  /// variance corrected by the running mean's distance from the exact one (its total-variance
  /// step, S1 = n·(mean − (sum << shift) / n)², S2 = (n − 1)·variance), `(S1 + S2) / (n − 1)`, then
  /// `>> 2·shift`. Below two values it is 0 (a division by zero in Scry's actions).
  mutating func varianceRead(_ g: String, keys: [StapExpr], shift: UInt64, span: SourceSpan, prelude: inout [Stmt]) -> Expr {
    func read(_ extractor: String, _ prelude: inout [Stmt]) -> Expr {
      globalRef(g, extractor: extractor, keys: keys.map { lowerExpr($0, prelude: &prelude) }, span: span)
    }
    func int(_ n: UInt64) -> Expr { expr(.integer(n), span) }
    func binary(_ op: BinaryOperator, _ a: Expr, _ b: Expr) -> Expr { expr(.binary(op, a, b), span) }
    let exactMean = binary(.divide, binary(.shiftLeft, read("sum", &prelude), int(shift)), read("count", &prelude))
    let distance = binary(.subtract, read("variance_mean", &prelude), exactMean)
    let s1 = binary(.multiply, read("count", &prelude), binary(.multiply, distance, distance))
    let countLess1 = binary(.subtract, read("count", &prelude), int(1))
    let s2 = binary(.multiply, countLess1, read("variance", &prelude))
    let total = binary(.divide, binary(.add, s1, s2), binary(.subtract, read("count", &prelude), int(1)))
    return shift == 0 ? total : binary(.shiftRight, total, int(2 * shift))
  }

  /// A script function's body in place of its call: the parameters become locals of the inlined
  /// body (`$__f_x`), `return v` sets `$__f_return` and leaves. Recursion cannot be inlined.
  mutating func inline(_ function: StapFunction, args: [StapExpr], span: SourceSpan, prelude: inout [Stmt]) -> Expr {
    if inlining.contains(function.name) || inlining.count >= Self.maxInlineDepth {
      return missing(span, "'\(function.name)' calls itself: Scry inlines functions and does not run recursion",
        hint: "write the recursion as a loop")
    }
    guard args.count == function.parameters.count else {
      return missing(span, "'\(function.name)' takes \(function.parameters.count) argument(s), not \(args.count)")
    }
    let kinds = args.map(kind)
    let values = args.map { lowerExpr($0, prelude: &prelude) }
    let savedLocals = locals
    let savedTries = tries
    // A function's body runs in a loop of its own: an error() there cannot leave the caller's try.
    tries = []
    defer { tries = savedTries }
    inlining.append(function.name)
    locals = [:]
    for (i, parameter) in function.parameters.enumerated() {
      locals[parameter.name] = kinds[i]
      prelude.append(stmt(.assign(target: expr(.variable(localName(parameter.name)), parameter.span), op: nil, value: values[i]), span))
    }
    // One result per call site: two calls in one expression must not share it.
    temporaries += 1
    let result = localName("return\(temporaries)")
    let isString = returnsString(function.body)
    prelude.append(stmt(.assign(target: expr(.variable(result), span), op: nil,
      value: expr(isString ? .string([]) : .integer(0), span)), span))
    // `return` leaves the body: the body runs inside a loop that runs once, and `return` breaks it.
    var body = lowerFunctionBody(function.body, result: result)
    body.append(stmt(.breakLoop, span))
    prelude.append(stmt(.whileLoop(condition: expr(.integer(1), span), body: Block(span: function.body.span, statements: body)), span))
    inlining.removeLast()
    locals = savedLocals
    return expr(.variable(result), span)
  }

  mutating func lowerFunctionBody(_ s: StapStmt, result: String) -> [Stmt] {
    let list: [StapStmt]
    if case .block(let statements) = s.kind { list = statements } else { list = [s] }
    return list.flatMap { lowerFunctionStatement($0, result: result) }
  }

  mutating func lowerFunctionStatement(_ s: StapStmt, result: String) -> [Stmt] {
    switch s.kind {
    case .returnValue(let value):
      var prelude: [Stmt] = []
      var out: [Stmt] = []
      if let value {
        out.append(stmt(.assign(target: expr(.variable(result), s.span), op: nil, value: lowerExpr(value, prelude: &prelude)), s.span))
      }
      return prelude + out + [stmt(.breakLoop, s.span)]
    case .block:
      return [stmt(.block(Block(span: s.span, statements: lowerFunctionBody(s, result: result))), s.span)]
    case .ifElse(let condition, let then, let otherwise):
      var prelude: [Stmt] = []
      let c = lowerCondition(condition, prelude: &prelude)
      let t = Block(span: then.span, statements: lowerFunctionBody(then, result: result))
      let o = otherwise.map { Block(span: $0.span, statements: lowerFunctionBody($0, result: result)) }
      return prelude + [stmt(.ifElse(condition: c, then: t, elseBranch: o), s.span)]
    default:
      if contains(s, where: { if case .returnValue = $0.kind { return true } else { return false } })
        || containsReturnInLoop(s)
      {
        error(s.span, "'return' inside a loop of a function is not supported", hint: "set a variable, 'break', and return after the loop")
      }
      return lowerStatement(s)
    }
  }

  func containsReturnInLoop(_ s: StapStmt) -> Bool {
    switch s.kind {
    case .whileLoop(_, let b), .forLoop(_, _, _, let b), .foreach(_, _, _, _, _, _, let b):
      var found = false
      func walk(_ x: StapStmt) {
        if case .returnValue = x.kind { found = true }
        switch x.kind {
        case .block(let l): l.forEach(walk)
        case .ifElse(_, let t, let o):
          walk(t)
          if let o { walk(o) }
        case .whileLoop(_, let b), .forLoop(_, _, _, let b), .foreach(_, _, _, _, _, _, let b): walk(b)
        default: break
        }
      }
      walk(b)
      return found
    default: return false
    }
  }
}
