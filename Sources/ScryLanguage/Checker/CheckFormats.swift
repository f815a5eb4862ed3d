/// Checking of printf-style formats and of aggregation calls.
extension Checker {
  /// printf-style formats: the format is a literal; each conversion matches its argument.
  mutating func checkFormat(_ function: Function, _ args: [Expr], call: Expr) {
    let name = function.name
    let formatExpr = args[0]
    let argumentTypes = args.dropFirst().map { checkExpression($0) }
    checkExpression(formatExpr)
    guard case .string(let bytes) = formatExpr.kind else {
      error(formatExpr.span, "\(name)()'s format must be a string literal", hint: "write \(name)(\"%d\\n\", value)")
      return
    }
    let format: PrintfFormat
    switch PrintfFormat.parse(bytes) {
    case .success(let parsed):
      format = parsed
      result.formats[call.id] = parsed
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
        // As bpftrace 0.17: text-like values only; a number or an address is a type error.
        switch type {
        case .string, .symbol, .stack, .inetAddress, .buffer: break
        case .integer(let integer) where integer.enumeration != nil: break
        case .pointer:
          error(arg.span, "'%s' needs a string, but this argument is an address (\(type))",
                hint: "read the string it points to with str(…), or print the address with '%p'")
        case .integer, .boolean:
          error(arg.span, "'%s' needs a string, but this argument is \(type)", hint: "print integers with '%d'")
        default:
          error(arg.span, "'%s' needs a string, but this argument is \(type)")
        }
      } else if conversion.verb == UInt8(ascii: "r") {
        if case .buffer = type {} else if !type.isString || conversion.bufferStyle != 0 {
          error(arg.span, "'%r' prints a buffer from buf(), not \(type)")
        }
      } else if !type.isInteger {
        if reportPositionalUsedAsNumber(arg) { continue }
        var hint: String? = nil
        if type.isString { hint = "print strings with '%s'" }
        if case .symbol = type { hint = "print symbols with '%s'" }
        error(arg.span, "'%\(verb)' needs an integer, but this argument is \(type)", hint: hint)
      }
    }
  }

  /// `count()`, `hist(v)`…: checks arguments and gives the aggregate kind.
  mutating func checkAggregate(_ function: Function, args: [Expr], call: Expr) -> AggregateKind? {
    let name = function.name
    result.calls[call.id] = function
    func operand(_ count: Int) -> Bool {
      guard args.count == count else {
        error(call.span, "'\(name)' takes \(count) argument\(count == 1 ? "" : "s"), not \(args.count)",
              hint: "usage: \(function.usage)")
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
    switch function {
    case .count:
      return operand(0) ? .count : nil
    case .sum: return operand(1) ? .sum(isSigned: isSigned) : nil
    // bpftrace 0.17 averages signed whatever it is given: avg((uint64)-1) prints -1.
    case .avg: return operand(1) ? .avg(isSigned: isSigned || result.program.integerSigns == .bpftrace) : nil
    case .min: return operand(1) ? .min(isSigned: isSigned) : nil
    case .max: return operand(1) ? .max(isSigned: isSigned) : nil
    case .stats: return operand(1) ? .stats(isSigned: isSigned || result.program.integerSigns == .bpftrace) : nil
    case .hist:
      guard (1...2).contains(args.count) else { return operand(1) ? .hist : nil }
      for arg in args.dropFirst() { checkExpression(arg) }
      return .hist
    case .lhist:
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
      return PositionalParameter.integer(result.positionals[n - 1])
    default: return nil
    }
  }
}
