/// The functions a script may call, and how each is checked.
enum Functions {
  static let aggregates: Set<String> = ["count", "sum", "avg", "min", "max", "stats", "hist", "lhist"]
  static let mapFunctions: Set<String> = ["delete", "clear", "zero", "has_key", "len", "print"]
  static let known: Set<String> = aggregates.union(mapFunctions).union([
    "printf", "time", "strftime", "str", "strncmp", "strcontains", "join", "exit", "cat", "system", "signal", "sizeof",
    "ksym", "usym", "kaddr", "uaddr", "ntop", "buf", "kstack", "ustack", "reg", "cgroup_path", "uptr", "kptr", "macaddr",
  ])
}

extension Checker {
  mutating func checkCall(_ name: String, nameSpan: SourceSpan, args: [Expr], call: Expr, isStatement: Bool) -> ScryType {
    func arity(_ range: ClosedRange<Int>, _ usage: String) -> Bool {
      if range.contains(args.count) { return true }
      let expected = range.count == 1 ? "\(range.lowerBound)" : range.upperBound == Int.max ? "at least \(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
      error(call.span, "'\(name)' takes \(expected) argument\(range.upperBound == 1 && range.count == 1 ? "" : "s"), not \(args.count)", hint: "usage: \(usage)")
      for arg in args { _ = checkExpression(arg) }
      return false
    }
    func statementOnly() {
      if !isStatement { error(call.span, "'\(name)()' gives no value; call it as a statement") }
    }
    switch name {
    case "printf", "cat", "system":
      statementOnly()
      guard arity(1...Int.max, "\(name)(\"format\", args…)") else { return .none }
      if name == "system" && !options.allowsUnsafe {
        error(call.span, "system() runs commands, so it needs --unsafe", hint: "run 'scry --unsafe …' if you mean it")
      }
      checkFormat(name, args)
      return .none
    case "print":
      statementOnly()
      guard arity(1...3, "print(@map[, top[, divisor]]) or print(value)") else { return .none }
      if case .map(let mapName, let keys, _) = args[0].kind, keys.isEmpty {
        result.resolutions[args[0].id] = .map(mapName)
        if mapTypes[mapName]?.valueType == nil && reporting {
          error(args[0].span, "unknown map '\(mapName)'", hint: mapHint(mapName))
        }
        result.types[Int(args[0].id.raw)] = mapTypes[mapName]?.valueType ?? .none
      } else if case .identifier(let mapName) = args[0].kind, Builtin(name: mapName) == nil, mapTypes[mapName] != nil {
        result.resolutions[args[0].id] = .map(mapName)
        result.types[Int(args[0].id.raw)] = mapTypes[mapName]?.valueType ?? .none
      } else {
        let type = checkExpression(args[0])
        if args.count > 1 { error(args[1].span, "'top' and 'divisor' apply only to a whole map: print(@map, top, divisor)") }
        if case .record = type {} else if case .aggregate = type {
          error(args[0].span, "print one aggregation by printing its map: print(@map)")
        }
        return .none
      }
      for arg in args.dropFirst() { checkInteger(arg, checkExpression(arg), "'print' top and divisor") }
      return .none
    case "time":
      statementOnly()
      guard arity(0...1, "time([\"%H:%M:%S\\n\"])") else { return .none }
      if let format = args.first { requireStringLiteral(format, "time's format") }
      return .none
    case "strftime":
      guard arity(2...2, "strftime(\"%H:%M:%S\", nsecs)") else { return .none }
      requireStringLiteral(args[0], "strftime's format")
      checkInteger(args[1], checkExpression(args[1]), "strftime's time")
      return .timestamp
    case "str":
      guard arity(1...2, "str(value[, length])") else { return .none }
      let type = checkExpression(args[0])
      var capacity = ScryType.defaultStringCapacity
      if args.count == 2 {
        let lengthType = checkExpression(args[1])
        if case .integer(let n) = args[1].kind {
          guard n > 0 && n <= 1024 else {
            error(args[1].span, "str() length must be between 1 and 1024, not \(n)")
            return .none
          }
          capacity = Int(n) + 1
        } else {
          checkInteger(args[1], lengthType, "str()'s length")
        }
      }
      switch type {
      case .none: return .none
      case .string(let c): return .string(capacity: args.count == 2 ? min(c, capacity) : c)
      case _ where type.isInteger: return .string(capacity: capacity)
      default:
        error(args[0].span, "str() reads a string from an address or a string, not \(type)")
        return .none
      }
    case "buf":
      guard arity(1...2, "buf(address, length)") else { return .none }
      checkExpression(args[0])
      var capacity = 64
      if args.count == 2 {
        if case .integer(let n) = args[1].kind, n > 0, n <= 1024 { capacity = Int(n) } else {
          error(args[1].span, "buf() needs a literal length between 1 and 1024")
        }
      }
      return .buffer(capacity: capacity)
    case "strncmp":
      guard arity(3...3, "strncmp(a, b, n)") else { return .none }
      for arg in args.prefix(2) {
        let t = checkExpression(arg)
        if t != .none && !t.isString { error(arg.span, "strncmp() compares strings, not \(t)") }
      }
      checkInteger(args[2], checkExpression(args[2]), "strncmp()'s length")
      return .int64
    case "strcontains":
      guard arity(2...2, "strcontains(haystack, needle)") else { return .none }
      for arg in args {
        let t = checkExpression(arg)
        if t != .none && !t.isString { error(arg.span, "strcontains() takes strings, not \(t)") }
      }
      return .int64
    case "join":
      statementOnly()
      guard arity(1...2, "join(args.argv[, separator])") else { return .none }
      let t = checkExpression(args[0])
      if t != .none && !t.isInteger { error(args[0].span, "join() takes an array of string pointers such as args.argv, not \(t)") }
      if args.count == 2 { requireStringLiteral(args[1], "join's separator") }
      return .none
    case "exit":
      statementOnly()
      guard arity(0...1, "exit([code])") else { return .none }
      if let code = args.first { checkInteger(code, checkExpression(code), "exit()'s code") }
      return .none
    case "signal":
      statementOnly()
      guard arity(1...1, "signal(\"SIGKILL\") or signal(9)") else { return .none }
      let t = checkExpression(args[0])
      if t != .none && !t.isInteger && !t.isString { error(args[0].span, "signal() takes a signal name or number") }
      if case .string(let bytes) = args[0].kind, signalNumber(String(decoding: bytes, as: UTF8.self)) == nil {
        error(args[0].span, "unknown signal '\(String(decoding: bytes, as: UTF8.self))'", hint: "for example \"SIGUSR1\" or \"SIGTERM\"")
      }
      if !options.allowsUnsafe {
        error(call.span, "signal() sends signals to traced processes, so it needs --unsafe", hint: "run 'scry --unsafe …' if you mean it")
      }
      if !probeKinds.contains(where: \.hasEventContext) {
        error(call.span, "signal() needs a probe with a task to signal; BEGIN, END and interval have none")
      }
      return .none
    case "sizeof":
      guard arity(1...1, "sizeof(type) or sizeof(expression)") else { return .none }
      let t = checkExpression(args[0])
      return t == .none ? .none : .uint64
    case "ksym", "usym":
      guard arity(1...1, "\(name)(address)") else { return .none }
      checkInteger(args[0], checkExpression(args[0]), "\(name)()'s address")
      return .symbol(isKernel: name == "ksym")
    case "kaddr", "uaddr":
      guard arity(1...1, "\(name)(\"symbol\")") else { return .none }
      requireStringLiteral(args[0], "\(name)'s symbol")
      return .uint64
    case "ntop":
      guard arity(1...2, "ntop([family, ]address)") else { return .none }
      for arg in args { checkExpression(arg) }
      return .inetAddress
    case "kstack", "ustack":
      guard arity(0...2, "\(name)([mode, ][depth])") else { return .none }
      var depth = 127
      for arg in args {
        if case .integer(let n) = arg.kind {
          guard n >= 1 && n <= 1024 else {
            error(arg.span, "stack depth must be between 1 and 1024")
            continue
          }
          depth = Int(n)
        } else if case .identifier(let mode) = arg.kind, ["bpftrace", "perf", "raw"].contains(mode) {
          continue
        } else {
          error(arg.span, "\(name)() takes a mode (bpftrace, perf, raw) and a literal depth")
        }
      }
      return .stack(isKernel: name == "kstack", depth: depth)
    case "uptr", "kptr":
      guard arity(1...1, "\(name)(address)") else { return .none }
      return checkExpression(args[0])
    case "delete":
      statementOnly()
      guard arity(1...2, "delete(@map[key]) or delete(@map, key)") else { return .none }
      if args.count == 2 {
        guard case .map(let mapName, let keys, _) = args[0].kind, keys.isEmpty else {
          error(args[0].span, "delete(@map, key) needs a map as its first argument")
          return .none
        }
        result.resolutions[args[0].id] = .map(mapName)
        let keyTypes = checkKeys(mapName, [args[1]], at: args[1].span)
        requireKnownMap(mapName, at: args[0].span)
        settleMap(mapName, keyType: keyTypes, value: nil, isAggregate: false, at: args[0].span, keySpan: args[1].span)
        return .none
      }
      guard case .map(let mapName, let keys, _) = args[0].kind else {
        error(args[0].span, "delete() needs a map element such as '@m[key]'")
        return .none
      }
      result.resolutions[args[0].id] = .map(mapName)
      let keyTypes = checkKeys(mapName, keys, at: args[0].span)
      requireKnownMap(mapName, at: args[0].span)
      settleMap(mapName, keyType: keyTypes, value: nil, isAggregate: false, at: args[0].span, keySpan: args[0].span)
      return .none
    case "clear", "zero", "len":
      if name != "len" { statementOnly() }
      guard arity(1...1, "\(name)(@map)") else { return .none }
      guard let mapName = wholeMap(args[0]) else {
        error(args[0].span, "\(name)() takes a whole map such as '@m'")
        return .none
      }
      requireKnownMap(mapName, at: args[0].span)
      return name == "len" ? .int64 : .none
    case "has_key":
      guard arity(2...2, "has_key(@map, key)") else { return .none }
      guard let mapName = wholeMap(args[0]) else {
        error(args[0].span, "has_key() takes a whole map such as '@m' as its first argument")
        return .none
      }
      let keyTypes = checkKeys(mapName, [args[1]], at: args[1].span)
      requireKnownMap(mapName, at: args[0].span)
      settleMap(mapName, keyType: keyTypes, value: nil, isAggregate: false, at: args[0].span, keySpan: args[1].span)
      return .int64
    case "reg", "cgroup_path", "macaddr":
      for arg in args { checkExpression(arg) }
      error(nameSpan, "'\(name)()' is not supported by Scry yet")
      return .none
    default:
      if Functions.aggregates.contains(name) {
        for arg in args { checkExpression(arg) }
        error(call.span, "'\(name)()' can only be assigned to a map, as in '@x = \(name)(…)'")
        return .none
      }
      for arg in args { checkExpression(arg) }
      error(nameSpan, "unknown function '\(name)'", hint: Suggestions.hint(for: name, in: Functions.known))
      return .none
    }
  }

  private mutating func wholeMap(_ e: Expr) -> String? {
    switch e.kind {
    case .map(let name, let keys, _) where keys.isEmpty:
      result.resolutions[e.id] = .map(name)
      return name
    case .identifier(let name) where Builtin(name: name) == nil:
      result.resolutions[e.id] = .map(name)
      return name
    default:
      return nil
    }
  }

  private mutating func requireKnownMap(_ name: String, at span: SourceSpan) {
    if reporting && mapTypes[name]?.valueType == nil { error(span, "unknown map '\(name)'", hint: mapHint(name)) }
  }

  private mutating func requireStringLiteral(_ e: Expr, _ what: String) {
    checkExpression(e)
    if case .string = e.kind { return }
    error(e.span, "\(what) must be a string literal")
  }

  /// printf-style formats: the format is a literal; each conversion matches its argument.
  private mutating func checkFormat(_ name: String, _ args: [Expr]) {
    let formatExpr = args[0]
    let argumentTypes = args.dropFirst().map { checkExpression($0) }
    checkExpression(formatExpr)
    guard case .string(let bytes) = formatExpr.kind else {
      error(formatExpr.span, "\(name)()'s format must be a string literal", hint: "write \(name)(\"%d\\n\", value)")
      return
    }
    let format: PrintfFormat
    switch PrintfFormat.parse(bytes) {
    case .success(let parsed): format = parsed
    case .failure(let failure):
      error(formatExpr.span, "bad format: \(failure.message)", hint: "conversions: %d %i %u %x %X %o %s %c %p %r %%")
      return
    }
    let conversions = format.conversions
    if conversions.count != argumentTypes.count {
      let span = conversions.count < argumentTypes.count ? args[conversions.count + 1].span : formatExpr.span
      error(span, "\(name)() format has \(conversions.count) conversion\(conversions.count == 1 ? "" : "s") but \(argumentTypes.count) argument\(argumentTypes.count == 1 ? "" : "s") follow",
            hint: "give one argument per '%' conversion (write '%%' for a literal '%')")
      return
    }
    for (conversion, (type, arg)) in zip(conversions, zip(argumentTypes, args.dropFirst())) where type != .none {
      let verb = Character(Unicode.Scalar(conversion.verb))
      if conversion.verb == UInt8(ascii: "s") {
        switch type {
        case .record, .aggregate:
          error(arg.span, "'%s' cannot print a value of type \(type)")
        default: break  // bpftrace prints any value with %s
        }
      } else if conversion.verb == UInt8(ascii: "r") {
        if case .buffer = type {} else if !type.isString { error(arg.span, "'%r' prints a buffer from buf(), not \(type)") }
      } else if !type.isInteger {
        var hint: String? = nil
        if type.isString { hint = "print strings with '%s'" }
        if case .symbol = type { hint = "print symbols with '%s'" }
        error(arg.span, "'%\(verb)' needs an integer, but this argument is \(type)", hint: hint)
      }
    }
  }

  /// `count()`, `hist(v)`…: checks arguments and gives the aggregate kind.
  mutating func checkAggregate(_ name: String, args: [Expr], call: Expr) -> AggregateKind? {
    func operand(_ count: Int) -> Bool {
      guard args.count == count else {
        let usage = name == "count" ? "count()" : name == "lhist" ? "lhist(value, min, max, step)" : "\(name)(value)"
        error(call.span, "'\(name)' takes \(count) argument\(count == 1 ? "" : "s"), not \(args.count)", hint: "usage: \(usage)")
        for arg in args { checkExpression(arg) }
        return false
      }
      return true
    }
    var isSigned = true
    if let first = args.first {
      let t = checkExpression(first)
      if t != .none && !t.isInteger {
        error(first.span, "'\(name)' aggregates integers, not \(t)")
        return nil
      }
      if case .integer(let integer) = t { isSigned = integer.isSigned }
    }
    switch name {
    case "count":
      return operand(0) ? .count : nil
    case "sum": return operand(1) ? .sum(isSigned: isSigned) : nil
    case "avg": return operand(1) ? .avg(isSigned: isSigned) : nil
    case "min": return operand(1) ? .min(isSigned: isSigned) : nil
    case "max": return operand(1) ? .max(isSigned: isSigned) : nil
    case "stats": return operand(1) ? .stats(isSigned: isSigned) : nil
    case "hist":
      guard (1...2).contains(args.count) else { return operand(1) ? .hist : nil }
      for arg in args.dropFirst() { checkExpression(arg) }
      return .hist
    case "lhist":
      guard operand(4) else { return nil }
      var bounds: [Int64] = []
      for arg in args.dropFirst() {
        checkExpression(arg)
        if let value = constantInteger(arg) { bounds.append(value) } else {
          error(arg.span, "lhist's min, max and step must be integer constants")
          return nil
        }
      }
      let (low, high, step) = (bounds[0], bounds[1], bounds[2])
      if step <= 0 {
        error(args[3].span, "lhist step must be positive")
        return nil
      }
      if low >= high {
        error(args[1].span.merged(with: args[2].span), "lhist min must be below max")
        return nil
      }
      if (high - low) / step > 10_000 {
        error(args[3].span, "lhist would have \((high - low) / step) buckets; at most 10000 are allowed", hint: "use a larger step")
        return nil
      }
      return .lhist(min: low, max: high, step: step)
    default:
      return nil
    }
  }

  private func constantInteger(_ e: Expr) -> Int64? {
    switch e.kind {
    case .integer(let v): return Int64(bitPattern: v)
    case .unary(.negate, let inner): return constantInteger(inner).map { -$0 }
    case .positional(let n):
      guard n >= 1, n <= result.positionals.count else { return nil }
      return parseSignedInteger(result.positionals[n - 1])
    default: return nil
    }
  }
}

/// Signal numbers by name (`SIGTERM`, `TERM`, `15`), for `signal()`.
public func signalNumber(_ name: String) -> Int32? {
  let names: [String: Int32] = [
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10,
    "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19,
    "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "PWR": 30, "SYS": 31,
  ]
  if let n = Int32(name), n > 0, n < 65 { return n }
  return names[name.hasPrefix("SIG") ? String(name.dropFirst(3)) : name]
}
