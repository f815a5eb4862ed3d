/// Checking of calls: the name is resolved once to a `Function` (recorded in `calls`), then each
/// group of functions is checked by its own method.
extension Checker {
  mutating func checkCall(_ name: String, nameSpan: SourceSpan, args: [Expr], call: Expr, isStatement: Bool) -> ScryType {
    guard let function = Function(name: name) else {
      if let reason = UnsupportedFunction.reasons[name] {
        error(nameSpan, "'\(name)(…)' is not supported by Scry", hint: reason)
        return .none
      }
      for arg in args { checkExpression(arg) }
      error(nameSpan, "unknown function '\(name)'", hint: Suggestions.hint(for: name, in: Function.allCases.filter { !$0.isSystemTapOnly }.map(\.name)))
      return .none
    }
    if function.isSystemTapOnly && result.program.histogramStyle != .systemTap {
      for arg in args { checkExpression(arg) }
      error(nameSpan, "unknown function '\(name)'", hint: "'\(name)()' is SystemTap's; bpftrace has no such function")
      return .none
    }
    result.calls[call.id] = function
    let site = CallSite(function: function, nameSpan: nameSpan, args: args, call: call)
    if function.isAggregation {
      for arg in args { checkExpression(arg) }
      error(call.span, "'\(name)()' can only be assigned to a map, as in '@x = \(name)(…)'")
      return .none
    }
    if site.isStatementOnly && !isStatement { error(call.span, "'\(name)()' gives no value; call it as a statement") }
    guard arity(site) else { return .none }
    switch function {
    case .printf, .cat, .system, .time, .exit, .signal, .unwatch, .join, .print:
      checkEffectCall(site)
      return .none
    case .delete, .clear, .zero, .len, .hasKey:
      return checkMapCall(site)
    case .str, .strncmp, .strcontains, .strftime, .strerror, .buf:
      return checkStringCall(site)
    case .sizeof, .ksym, .usym, .kaddr, .uaddr, .ntop, .pton, .cgroupid, .bswap, .kstack, .ustack, .uptr, .kptr, .reg, .cgroupPath,
      .macaddr:
      return checkValueCall(site)
    case .getopt:
      return checkGetopt(site)
    case .count, .sum, .avg, .min, .max, .stats, .hist, .lhist:
      return .none  // reported above
    case .sprintf, .strlen, .substr, .strtol, .gettimeofdayNs, .ctime, .textStrn, .strReplace, .stringAt:
      return checkSystemTapCall(site)
    }
  }

  /// One call being checked: its function and where it is written.
  struct CallSite {
    let function: Function
    let nameSpan: SourceSpan
    let args: [Expr]
    let call: Expr

    var isStatementOnly: Bool {
      switch function {
      case .printf, .cat, .system, .print, .time, .exit, .signal, .unwatch, .join, .delete, .clear, .zero: return true
      default: return false
      }
    }

    /// The number of arguments the function takes.
    var arity: ClosedRange<Int> {
      switch function {
      case .printf, .cat, .system, .sprintf: return 1...Int.max
      case .gettimeofdayNs: return 0...0
      case .substr, .textStrn, .strReplace: return 3...3
      case .strtol, .stringAt: return 2...2
      case .print: return 1...3
      case .time, .exit: return 0...1
      case .strftime, .strcontains, .hasKey: return 2...2
      case .str, .buf, .join, .ntop, .delete: return 1...2
      case .strncmp: return 3...3
      case .kstack, .ustack: return 0...2
      case .count: return 0...0
      case .hist: return 1...2
      case .lhist: return 4...4
      case .cgroupPath, .getopt: return 1...2
      default: return 1...1
      }
    }
  }

  private mutating func arity(_ site: CallSite) -> Bool {
    let range = site.arity
    let args = site.args
    if range.contains(args.count) { return true }
    let expected =
      range.count == 1
      ? "\(range.lowerBound)"
      : range.upperBound == Int.max ? "at least \(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
    let plural = range.upperBound == 1 && range.count == 1 ? "" : "s"
    error(site.call.span, "'\(site.function.name)' takes \(expected) argument\(plural), not \(args.count)",
          hint: "usage: \(site.function.usage)")
    for arg in args { checkExpression(arg) }
    return false
  }

  // MARK: Output and effects

  private mutating func checkEffectCall(_ site: CallSite) {
    let args = site.args
    switch site.function {
    case .printf, .cat, .system:
      if site.function == .system && !options.allowsUnsafe {
        error(site.call.span, "system() runs commands, so it needs --unsafe", hint: "run 'scry --unsafe …' if you mean it")
      }
      checkFormat(site.function, args, call: site.call)
    case .print:
      checkPrint(args)
    case .time:
      if let format = args.first { requireStringLiteral(format, "time's format") }
    case .exit:
      if let code = args.first { checkInteger(code, checkExpression(code), "exit()'s code") }
    case .join:
      let t = checkExpression(args[0])
      if t != .none && !t.isInteger { error(args[0].span, "join() takes an array of string pointers such as args.argv, not \(t)") }
      if args.count == 2 { requireStringLiteral(args[1], "join's separator") }
    case .signal:
      checkSignal(site)
    case .unwatch:
      // bpftrace 0.17: any integer; an address no watchpoint watches is no error.
      checkInteger(args[0], checkExpression(args[0]), "unwatch()'s address")
    default:
      preconditionFailure("\(site.function) is not an effect")
    }
  }

  private mutating func checkPrint(_ args: [Expr]) {
    if let mapName = wholeMapName(args[0]), mapTypes[mapName] != nil || args[0].isMapSyntax {
      result.resolutions[args[0].id] = .map(mapName)
      if mapTypes[mapName]?.valueType == nil && reporting {
        error(args[0].span, "unknown map '\(mapName)'", hint: mapHint(mapName))
      }
      result.types[Int(args[0].id.raw)] = mapTypes[mapName]?.valueType ?? .none
      for arg in args.dropFirst() { checkInteger(arg, checkExpression(arg), "'print' top and divisor") }
      return
    }
    let type = checkExpression(args[0])
    if args.count > 1 { error(args[1].span, "'top' and 'divisor' apply only to a whole map: print(@map, top, divisor)") }
    // SystemTap prints one key's histogram (`print(@hist_log(x[k]))`); bpftrace prints whole maps.
    if case .aggregate(let kind) = type, !(result.program.histogramStyle == .systemTap && isBucketed(kind)) {
      error(args[0].span, "print one aggregation by printing its map: print(@map)")
    }
  }

  private func isBucketed(_ kind: AggregateKind) -> Bool {
    switch kind {
    case .hist, .lhist: return true
    default: return false
    }
  }

  private mutating func checkSignal(_ site: CallSite) {
    let argument = site.args[0]
    let t = checkExpression(argument)
    if t != .none && !t.isInteger && !t.isString { error(argument.span, "signal() takes a signal name or number") }
    if case .string(let bytes) = argument.kind {
      let name = String(decoding: bytes, as: UTF8.self)
      if let number = Signal.number(named: name) {
        result.constants[site.call.id] = UInt64(number)
      } else {
        error(argument.span, "unknown signal '\(name)'", hint: "for example \"SIGUSR1\" or \"SIGTERM\"")
      }
    } else if t.isString {
      error(argument.span, "signal() takes a literal signal name such as \"SIGUSR1\", or a number")
    }
    if !options.allowsUnsafe {
      error(site.call.span, "signal() sends signals to traced processes, so it needs --unsafe",
            hint: "run 'scry --unsafe …' if you mean it")
    }
    if !probeKinds.contains(where: \.hasEventContext) {
      error(site.call.span, "signal() needs a probe with a task to signal; BEGIN, END and interval have none")
    }
  }

  // MARK: Maps

  private mutating func checkMapCall(_ site: CallSite) -> ScryType {
    let args = site.args
    let name = site.function.name
    switch site.function {
    case .delete:
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
      if keys.contains(where: \.isWildcard) { return checkWildcardDelete(args[0], mapName, keys) }
      result.resolutions[args[0].id] = .map(mapName)
      let keyTypes = checkKeys(mapName, keys, at: args[0].span)
      requireKnownMap(mapName, at: args[0].span)
      settleMap(mapName, keyType: keyTypes, value: nil, isAggregate: false, at: args[0].span, keySpan: args[0].span)
      return .none
    case .clear, .zero, .len:
      guard let mapName = wholeMap(args[0]) else {
        error(args[0].span, "\(name)() takes a whole map such as '@m'")
        return .none
      }
      requireKnownMap(mapName, at: args[0].span)
      return site.function == .len ? .int64 : .none
    case .hasKey:
      guard let mapName = wholeMap(args[0]) else {
        error(args[0].span, "has_key() takes a whole map such as '@m' as its first argument")
        return .none
      }
      let keyTypes = checkKeys(mapName, [args[1]], at: args[1].span)
      requireKnownMap(mapName, at: args[0].span)
      settleMap(mapName, keyType: keyTypes, value: nil, isAggregate: false, at: args[0].span, keySpan: args[1].span)
      return .int64
    default:
      preconditionFailure("\(site.function) is not a map function")
    }
  }

  /// The name of a whole map written as `@m` or a bare global `m`, without resolving it.
  private func wholeMapName(_ e: Expr) -> String? {
    switch e.kind {
    case .map(let name, let keys, _) where keys.isEmpty: return name
    case .identifier(let name) where Builtin(name: name) == nil: return name
    default: return nil
    }
  }

  private mutating func wholeMap(_ e: Expr) -> String? {
    guard let name = wholeMapName(e) else { return nil }
    result.resolutions[e.id] = .map(name)
    return name
  }

  /// `delete(@m[k, *])`: every element whose other components equal the given ones. The map's own
  /// assignments settle its key; here each given component must fit its place.
  private mutating func checkWildcardDelete(_ element: Expr, _ mapName: String, _ keys: [Expr]) -> ScryType {
    result.resolutions[element.id] = .map(mapName)
    requireKnownMap(mapName, at: element.span)
    let known = mapTypes[mapName]?.keyTypes
    if reporting, let known, known.count != keys.count {
      error(element.span, "'\(mapName)' has \(known.count) key component\(known.count == 1 ? "" : "s"), this delete gives \(keys.count)")
    }
    for (index, key) in keys.enumerated() where !key.isWildcard {
      let type = checkExpression(key)
      if reporting, let known, index < known.count, type != .none, unify(known[index], type) == nil {
        error(key.span, "this key component is \(type), but '\(mapName)' has \(known[index]) here")
      }
    }
    return .none
  }

  private mutating func requireKnownMap(_ name: String, at span: SourceSpan) {
    if reporting && mapTypes[name]?.valueType == nil { error(span, "unknown map '\(name)'", hint: mapHint(name)) }
  }

  // MARK: Strings and buffers

  private mutating func checkStringCall(_ site: CallSite) -> ScryType {
    let args = site.args
    switch site.function {
    case .str:
      return checkStr(args)
    case .buf:
      let source = checkExpression(args[0])
      // An array (a char array too) without a length: all of it, as bpftrace takes its size.
      var capacity = 64
      switch source {
      case .array, .string: capacity = Swift.min(Swift.max(source.byteSize, 1), 1024)
      default: break
      }
      if args.count == 2 {
        checkExpression(args[1])
        if let n = literalInteger(args[1]), n > 0, n <= 1024 { capacity = Int(n) } else {
          error(args[1].span, "buf() needs a literal length between 1 and 1024")
        }
      }
      return .buffer(capacity: capacity)
    case .strncmp:
      for arg in args.prefix(2) {
        let t = checkExpression(arg)
        if t != .none && !t.isString { error(arg.span, "strncmp() compares strings, not \(t)") }
      }
      checkInteger(args[2], checkExpression(args[2]), "strncmp()'s length")
      return .int64
    case .strcontains:
      for arg in args {
        let t = checkExpression(arg)
        if t != .none && !t.isString { error(arg.span, "strcontains() takes strings, not \(t)") }
      }
      return .int64
    case .strftime:
      // Formatted when the event runs, into a string of bpftrace's default size.
      requireStringLiteral(args[0], "strftime's format")
      checkInteger(args[1], checkExpression(args[1]), "strftime's time")
      return .defaultString
    case .strerror:
      checkInteger(args[0], checkExpression(args[0]), "strerror()'s errno")
      return .defaultString
    default:
      preconditionFailure("\(site.function) is not a string function")
    }
  }

  private mutating func checkStr(_ args: [Expr]) -> ScryType {
    // `str($1)` is the parameter's text, whatever it holds (empty when it was not given).
    if case .positional(let n) = args[0].kind, n >= 1, args.count == 1 {
      checkExpression(args[0])
      let text = PositionalParameter.text(n, in: result.positionals) ?? ""
      return .string(capacity: max(text.utf8.count + 1, options.stringCapacity))
    }
    if args.count == 1, case .binary(_, let base, let offset) = args[0].kind, case .positional(let n) = base.kind,
      let text = PositionalParameter.stringOperand(args[0], in: result.positionals)
    {
      checkExpression(base)
      let length = PositionalParameter.text(n, in: result.positionals)?.utf8.count ?? 0
      if case .integer(let k) = offset.kind, k > length {
        error(offset.span, "only addition of a single constant less or equal to the length of $\(n) (which is \(length)) is allowed inside str()")
      }
      return .string(capacity: max(text.count + 1, options.stringCapacity))
    }
    let type = checkExpression(args[0])
    var capacity = options.stringCapacity
    if args.count == 2 {
      let lengthType = checkExpression(args[1])
      if let n = literalInteger(args[1]) {
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
    case .string(let c): return .string(capacity: args.count == 2 ? Swift.min(c, capacity) : c)
    case _ where type.isInteger: return .string(capacity: capacity)
    default:
      error(args[0].span, "str() reads a string from an address or a string, not \(type)")
      return .none
    }
  }

  // MARK: Other values

  private mutating func checkValueCall(_ site: CallSite) -> ScryType {
    let args = site.args
    let name = site.function.name
    switch site.function {
    case .sizeof:
      let t = checkExpression(args[0])
      if t != .none { recordSizeofLayout(site.call, of: args[0]) }
      return t == .none ? .none : .uint64
    case .ksym, .usym:
      checkInteger(args[0], checkExpression(args[0]), "\(name)()'s address")
      return .symbol(isKernel: site.function == .ksym)
    case .kaddr:
      requireConstantString(args[0], "kaddr's symbol")
      if let bytes = constantString(args[0]) {
        let symbol = String(decoding: bytes, as: UTF8.self)
        if let address = catalog.kernelSymbolAddress(symbol) {
          result.constants[site.call.id] = address
        } else {
          // bpftrace's words.
          error(args[0].span, "Failed to resolve kernel symbol: \(symbol)",
                hint: "it is not in /proc/kallsyms (kernel addresses are readable as root; 'grep \(symbol) /proc/kallsyms' shows what the kernel names)")
        }
      }
      return .uint64
    case .cgroupid:
      requireConstantString(args[0], "cgroupid's path")
      if let bytes = constantString(args[0]) {
        let path = String(decoding: bytes, as: UTF8.self)
        if let id = catalog.cgroupID(path: path) {
          result.constants[site.call.id] = id
        } else {
          error(args[0].span, "'\(path)' is not a cgroup directory", hint: "cgroups are directories under /sys/fs/cgroup")
        }
      }
      return .uint64
    case .uaddr:
      requireStringLiteral(args[0], "uaddr's symbol")
      return checkUaddr(site)
    case .ntop:
      return checkNtop(args)
    case .bswap:
      let t = checkExpression(args[0])
      checkInteger(args[0], t, "bswap()'s operand")
      if case .integer = t { return t }
      return .uint64
    case .kstack, .ustack:
      return checkStack(site)
    case .uptr, .kptr:
      return checkExpression(args[0])
    case .reg:
      return checkRegister(site)
    case .pton:
      checkExpression(args[0])
      guard case .string(let literal) = args[0].kind,
        let bytes = Function.internetAddressBytes(String(decoding: literal, as: UTF8.self))
      else {
        error(args[0].span, "pton() takes an IPv4 or IPv6 address in quotes", hint: "as in pton(\"127.0.0.1\") or pton(\"::1\")")
        return .none
      }
      return .array(.integer(IntegerType(bits: 8, isSigned: false)), count: bytes.count)
    case .macaddr:
      // Six bytes of an array, a string or a buffer: `u8 addr[6]`, `unsigned char h_dest[6]`.
      let t = checkExpression(args[0])
      switch t {
      case .array(.integer(let element), let count) where element.bits == 8 && count >= 6: break
      case .string(let capacity) where capacity >= 6: break
      case .buffer(let capacity) where capacity >= 6: break
      case .none: return .none
      default:
        error(args[0].span, "macaddr() needs 6 bytes (an array such as 'u8 addr[6]' or a buffer), not \(t)")
        return .none
      }
      return Self.macAddressType
    case .cgroupPath:
      let t = checkExpression(args[0])
      checkInteger(args[0], t, "cgroup_path()'s cgroup id")
      if args.count == 2 {
        checkExpression(args[1])
        requireStringLiteral(args[1], "cgroup_path()'s hierarchy filter")
      }
      return Self.cgroupPathType
    default:
      preconditionFailure("\(site.function) is not a value function")
    }
  }

  /// `reg("ip")`: a register of the probed code, by its x86-64 name, where the probe has them.
  private mutating func checkRegister(_ site: CallSite) -> ScryType {
    let arg = site.args[0]
    checkExpression(arg)
    guard case .string(let bytes) = arg.kind, let name = String(validating: bytes, as: UTF8.self),
      Self.registerNames.contains(name)
    else {
      error(arg.span, "reg() takes a register name in quotes", hint: "one of " + Self.registerNames.joined(separator: ", "))
      return .none
    }
    if let bad = probeKinds.first(where: { ![.kprobe, .kretprobe, .uprobe, .uretprobe].contains($0) }) {
      error(site.nameSpan, "'reg()' is not available in \(bad.rawValue) probes", hint: "it reads the registers of kprobes and uprobes")
      return .none
    }
    return .uint64
  }

  /// `macaddr()`'s text, `XX:XX:XX:XX:XX:XX` and its NUL.
  static let macAddressType = ScryType.string(capacity: 18)
  /// Room for a path in each of a dozen hierarchies on a systemd machine.
  static let cgroupPathType = ScryType.string(capacity: 256)

  /// The x86-64 registers of `struct pt_regs`, as bpftrace and tracefs name them.
  static let registerNames = [
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "ip", "sp",
  ]

  /// `ntop(addr)` or `ntop(family, addr)`: an integer is an IPv4 address; 4 or 16 bytes are IPv4 or IPv6.
  private mutating func checkNtop(_ args: [Expr]) -> ScryType {
    if args.count == 2 { checkInteger(args[0], checkExpression(args[0]), "ntop()'s address family") }
    let address = args[args.count - 1]
    let type = checkExpression(address)
    switch type {
    case .none: return .none
    case .integer, .pointer: return .inetAddress
    case .string(let n) where n == 4 || n == 16: return .inetAddress
    case .array(let element, let count) where element.memorySize * count == 4 || element.memorySize * count == 16:
      return .inetAddress
    case .buffer(let n) where n == 4 || n == 16: return .inetAddress
    default:
      error(address.span, "ntop() takes an integer (IPv4) or 4 or 16 bytes of address, not \(type)")
      return .none
    }
  }

  /// `kstack([mode, ][depth])`: the mode is a bare word (`bpftrace`, `perf`, `raw`), the depth a literal.
  private mutating func checkStack(_ site: CallSite) -> ScryType {
    var stack = StackType(isKernel: site.function == .kstack)
    stack.mode = stackMode
    for arg in site.args {
      if let n = literalInteger(arg) {
        guard n >= 1 && n <= UInt64(StackType.defaultDepth) else {
          error(arg.span, "stack depth must be between 1 and \(StackType.defaultDepth)")
          continue
        }
        stack.depth = Int(n)
      } else if case .identifier(let word) = arg.kind, let mode = StackType.Mode(rawValue: word),
        !mode.isSystemTap || result.program.histogramStyle == .systemTap
      {
        stack.mode = mode
      } else {
        error(arg.span, "\(site.function.name)() takes a mode (bpftrace, perf, raw) and a literal depth")
      }
    }
    return .stack(stack)
  }

  /// An integer literal, or a positional parameter that is one (bpftrace takes `$1` wherever a
  /// literal count or length goes: `unroll($1)`, `buf(arg0, $1)`, `str(arg0, $2)`).
  func literalInteger(_ e: Expr) -> UInt64? {
    switch e.kind {
    case .integer(let n): return n
    case .positional(let n):
      guard let text = PositionalParameter.text(n, in: result.positionals), let value = PositionalParameter.integer(text),
        value >= 0
      else { return nil }
      return UInt64(value)
    default: return nil
    }
  }

  private mutating func requireStringLiteral(_ e: Expr, _ what: String) {
    checkExpression(e)
    if case .string = e.kind { return }
    error(e.span, "\(what) must be a string literal")
  }

  private mutating func requireConstantString(_ e: Expr, _ what: String) {
    checkExpression(e)
    if constantString(e) != nil { return }
    error(e.span, "\(what) must be a string literal or str($N)")
  }

  /// A string known before the run: a literal, or `str($N)` (the parameter's text, as bpftrace
  /// takes it wherever a literal goes: `kaddr(str($1))`).
  func constantString(_ e: Expr) -> [UInt8]? {
    switch e.kind {
    case .string(let bytes): return bytes
    case .call("str", _, let args) where args.count == 1:
      guard case .positional(let n) = args[0].kind, n >= 1 else { return nil }
      return Array((PositionalParameter.text(n, in: result.positionals) ?? "").utf8)
    default: return nil
    }
  }
}

extension Expr {
  /// Written as `@name` (rather than a bare global or another expression).
  var isMapSyntax: Bool {
    if case .map = kind { return true }
    return false
  }
}

extension Checker {
  /// `getopt("name"[, default])`: a named program parameter, settled before the run as `$1` is.
  /// The default's type is the value's: a number parses the parameter (or `true`/`false`), a
  /// string takes its text, a bool its truth; without one, 1 when the parameter is given.
  mutating func checkGetopt(_ site: CallSite) -> ScryType {
    let args = site.args
    for arg in args { checkExpression(arg) }
    guard case .string(let nameBytes) = args[0].kind else {
      error(args[0].span, "getopt()'s name must be a string literal")
      return .none
    }
    let name = String(decoding: nameBytes, as: UTF8.self)
    result.namedParametersRead.insert(name)
    let given = options.namedParameters[name]
    let call = site.call.id
    guard args.count == 2 else {
      result.constants[call] = given.map { Self.truth($0) ?? 1 } ?? 0
      return .int64
    }
    let fallback = args[1]
    switch fallback.kind {
    case .string(let bytes):
      let text = given.map { $0 ?? "" } ?? String(decoding: bytes, as: UTF8.self)
      result.texts[call] = text
      return .string(capacity: max(text.utf8.count + 1, options.stringCapacity))
    case .boolean(let value):
      result.constants[call] = given.map { Self.truth($0) ?? 1 } ?? (value ? 1 : 0)
      return .boolean
    default:
      var literal = literalInteger(fallback)
      if case .unary(.negate, let magnitude) = fallback.kind { literal = literalInteger(magnitude).map { 0 &- $0 } }
      guard let value = literal else {
        error(fallback.span, "getopt()'s default must be a literal: a number, a string or true/false")
        return .none
      }
      guard let given else {
        result.constants[call] = value
        return .int64
      }
      guard let text = given, let number = Self.truth(text) ?? PositionalParameter.integer(text).map({ UInt64(bitPattern: $0) }) else {
        error(site.call.span, "the named parameter --\(name) is not a number: '\(given ?? "")'", hint: "give it as --\(name)=N")
        return .none
      }
      result.constants[call] = number
      return .int64
    }
  }

  /// A parameter's text as a truth value: `true`/`false` in any case, else nil; no text is true.
  static func truth(_ text: String?) -> UInt64? {
    guard let text else { return 1 }
    switch text.lowercased() {
    case "true": return 1
    case "false": return 0
    default: return nil
    }
  }
}

extension Checker {
  /// `uaddr("sym")`: a variable of each uprobe's or USDT probe's binary, typed as bpftrace 0.17
  /// types it (a pointer to a signed integer of the symbol's size, 8 bytes unless it is 1, 2 or 4).
  mutating func checkUaddr(_ site: CallSite) -> ScryType {
    guard case .string(let bytes) = site.args[0].kind else { return .none }
    let name = String(decoding: bytes, as: UTF8.self)
    for kind in Set(probeKinds) where ![.uprobe, .uretprobe, .usdt].contains(kind) {
      // bpftrace's words.
      error(site.call.span, "uaddr can not be used with \"\(kind.rawValue)\" probes", hint: "it reads the traced program's variables: use it in uprobe, uretprobe and usdt probes")
      return .none
    }
    var symbols: [String: UserDataSymbol] = [:]
    for probe in probeBinaries {
      guard let symbol = catalog.userDataSymbol(binary: probe.path, name: name, probeFileOffset: probe.fileOffset) else {
        error(site.call.span, "Could not resolve symbol: \(probe.path):\(name)", hint: "uaddr() names a variable of the probed binary ('readelf -s' lists its OBJECT symbols)")
        return .none
      }
      if let first = symbols.values.first, first.size != symbol.size {
        error(site.call.span, "Symbol size mismatch between probes. Symbol \"\(name)\" has size \(first.size) in one probe's binary but size \(symbol.size) in '\(probe.path)'")
        return .none
      }
      symbols[probe.name] = symbol
    }
    result.userDataSymbols[site.call.id] = symbols
    let size = symbols.values.first?.size ?? 8
    let bits = [1, 2, 4].contains(size) ? Int(size) * 8 : 64
    return .pointer(.integer(IntegerType(bits: bits, isSigned: true)))
  }
}
