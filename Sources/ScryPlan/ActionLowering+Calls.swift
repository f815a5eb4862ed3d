import ScryLanguage

/// Lowering of calls, by the function the checker resolved.
extension ActionLowering {
  /// Calls made for their effect; nil for functions that give a value.
  mutating func effectCall(_ function: Function, _ args: [Expr], _ call: Expr) -> IRStatement? {
    switch function {
    case .printf, .cat, .system:
      guard let format = program.formats[call.id] else { return missingResolution(call.span) }
      let arguments = args.dropFirst().map { value($0) }
      let effect: FormattedEffect = function == .printf ? .print : function == .cat ? .catFile : .runCommand
      return .formatted(format, arguments: arguments, effect: effect)
    case .print:
      return print(args)
    case .exit:
      return .exit(code: args.first.map { int($0) })
    case .time:
      var format = Array("%H:%M:%S\n".utf8)
      if let first = args.first, case .string(let text) = first.kind { format = text }
      return .time(format: format)
    case .clear, .zero:
      guard let map = mapIndex(args[0]) else { return missingResolution(args[0].span) }
      return .mapReset(map: map, keepsKeys: function == .zero)
    case .delete:
      guard let map = mapIndex(args[0]), let info = program.map(named: program.maps[map].name) else {
        return missingResolution(args[0].span)
      }
      if case .map(_, let keys, _) = args[0].kind, keys.contains(where: \.isWildcard) {
        guard keys.count == info.keyTypes.count else { return missingResolution(args[0].span) }
        // A wildcard's place holds a zero of its type; only the other components are compared.
        let key = zip(keys, info.keyTypes).map { key, type in
          key.isWildcard ? BytesExpr.constant([], type: type) : bytes(key, as: type)
        }
        return .mapDeleteMatching(map: map, key: key, matched: keys.map { !$0.isWildcard })
      }
      let key = args.count == 2 ? keyComponents([args[1]], info: info) : mapKey(args[0], info: info)
      return .mapDelete(map: map, key: key, site: site(call.span))
    case .signal:
      if let number = program.constants[call.id] { return .signal(.constant(number)) }
      return .signal(int(args[0]))
    case .unwatch:
      return .unwatch(int(args[0]))
    case .join:
      return join(args, call)
    case .count, .sum, .avg, .min, .max, .stats, .hist, .lhist, .hasKey, .len, .strftime, .str, .strncmp,
      .strcontains, .strerror, .sizeof, .buf, .ntop, .pton, .cgroupid, .bswap, .ksym, .usym, .kaddr, .uaddr, .kstack, .ustack, .uptr,
      .kptr, .reg, .cgroupPath, .macaddr, .getopt, .sprintf, .strlen, .substr, .strtol, .gettimeofdayNs, .ctime, .textStrn, .strReplace, .stringAt:
      return nil
    }
  }

  private mutating func print(_ args: [Expr]) -> IRStatement? {
    let first = args[0]
    // One key's histogram (SystemTap's `print(@hist_log(x[k]))`, which the checker allows only
    // there) prints as a value.
    if case .map(_, let keys, _) = first.kind, !keys.isEmpty, case .aggregate = program.type(of: first) {
      return .printValue(value(first))
    }
    // A whole map; `print(@m[k])` is one value (bpftrace 0.17 refuses it; printing the map was wrong).
    if case .map(let name)? = program.resolutions[first.id], let map = mapIndices[name], !first.isKeyedMapAccess {
      return .printMap(map: map, top: args.count > 1 ? int(args[1]) : nil, divisor: args.count > 2 ? int(args[2]) : nil)
    }
    if case .record(let record) = program.type(of: first), isEventRecord(first) { return .printRecord(record) }
    return .printValue(value(first))
  }

  private mutating func join(_ args: [Expr], _ call: Expr) -> IRStatement? {
    guard let fetchedValue = fetched[call.id], case .stringArray(let maxCount, let maxLength) = fetchedValue.layout else {
      return unsupported(
        call.span, "'join()' reads an array of string pointers that is a tracepoint field, such as args.argv")
    }
    var separator: [UInt8] = [UInt8(ascii: " ")]
    if args.count == 2, case .string(let text) = args[1].kind { separator = text }
    return .join(
      offset: fetchedValue.offset, maxCount: maxCount, maxLength: maxLength, separator: separator,
      pointerField: fetchedValue.pointerField)
  }

  /// Calls that give an integer.
  mutating func intCall(_ function: Function, _ args: [Expr], _ e: Expr) -> IntExpr {
    switch function {
    case .hasKey:
      guard let map = mapIndex(args[0]), let info = program.map(named: program.maps[map].name) else {
        missingResolution(args[0].span)
        return .constant(0)
      }
      return .mapHasKey(map: map, key: keyComponents([args[1]], info: info))
    case .len:
      guard let map = mapIndex(args[0]) else {
        missingResolution(args[0].span)
        return .constant(0)
      }
      return .mapLength(map: map)
    case .strncmp:
      let limit: UInt64
      switch (args[2].kind, program.resolutions[args[2].id]) {
      case (.integer(let n), _): limit = n
      case (.positional(let n), _), (_, .positional(let n)?):
        guard case .constant(let value) = positionalInteger(n) else {
          return unsupportedInt(args[2].span, "strncmp()'s length must be a literal here")
        }
        limit = value
      default:
        return unsupportedInt(args[2].span, "strncmp()'s length must be a literal here")
      }
      return .stringCompare(bytes(args[0], as: nil), bytes(args[1], as: nil), limit: Int(clamping: limit))
    case .strcontains:
      return .stringContains(bytes(args[0], as: nil), bytes(args[1], as: nil))
    case .strlen:
      return .stringLength(bytes(args[0], as: nil))
    case .strtol:
      return .stringToInteger(bytes(args[0], as: nil), base: int(args[1]))
    case .stringAt:
      return .stringByte(bytes(args[0], as: nil), position: int(args[1]))
    case .gettimeofdayNs:
      return .event(.realtime)
    case .sizeof:
      // A builtin, a literal or a variable is a 64-bit integer to bpftrace; a cast, a field or
      // memory read through a pointer has its C width.
      // The checker sized a tuple or a variable by the widths its parts were written with.
      if let size = program.constants[e.id] { return .constant(size) }
      let type = program.type(of: args[0])
      switch (type, args[0].kind) {
      case (.integer, .cast), (.integer, .field), (.integer, .unary(.deref, _)), (.integer, .index), (.tuple, _),
        (.record, _), (.string, _), (.array, _):
        return .constant(UInt64(type.cLayoutSize))
      default:
        return .constant(UInt64(type.byteSize))
      }
    case .ksym, .usym, .uptr, .kptr:
      // The address itself; how it prints comes from the call's type.
      return int(args[0])
    case .getopt:
      // A named parameter's number, settled by the checker.
      return .constant(program.constants[e.id] ?? 0)
    case .kaddr, .cgroupid:
      guard let address = program.constants[e.id] else {
        missingResolution(e.span)
        return .constant(0)
      }
      return .constant(address)
    case .bswap:
      guard case .integer(let t) = program.type(of: e) else { return unsupportedInt(e.span, "bswap() of a non-integer") }
      return .byteSwap(int(args[0]), bits: t.bits)
    case .kstack, .ustack:
      return unsupportedInt(e.span, "'\(function.name)()' is a stack, not a number")
    case .uaddr:
      return userDataAddress(e)
    case .ntop, .pton, .reg, .cgroupPath, .macaddr, .buf, .str, .strftime, .strerror, .sprintf, .substr, .ctime, .textStrn, .strReplace:
      // Byte values: reached here only where a number is needed, e.g. `cgroup_path(x) + 1`.
      return unsupportedInt(e.span, "'\(function.name)()' is not supported by this build yet")
    case .printf, .cat, .system, .print, .exit, .time, .clear, .zero, .delete, .signal, .unwatch, .join:
      // The checker accepts these only as statements.
      return unsupportedInt(e.span, "'\(function.name)()' gives no value")
    case .count, .sum, .avg, .min, .max, .stats, .hist, .lhist:
      return unsupportedInt(e.span, "'\(function.name)()' can only be assigned to a map")
    }
  }

  /// Calls that give a byte value; nil when the function gives none (reported by the caller).
  mutating func bytesCall(_ function: Function, _ args: [Expr], _ e: Expr, type: ScryType) -> BytesExpr? {
    switch function {
    case .str:
      return str(args, e, type: type)
    case .getopt:
      return program.texts[e.id].map { .constant(Array($0.utf8), type: type) }
    case .strftime:
      guard case .string(let format) = args[0].kind else { return nil }
      return .strftime(format: format, nanoseconds: int(args[1]))
    case .strerror:
      return .errorText(int(args[0]), type: type)
    case .cgroupPath:
      var filter: String?
      if args.count == 2, case .string(let bytes) = args[1].kind { filter = String(decoding: bytes, as: UTF8.self) }
      return .cgroupPath(int(args[0]), filter: filter, type: type)
    case .pton:
      guard case .string(let literal) = args[0].kind,
        let address = Function.internetAddressBytes(String(decoding: literal, as: UTF8.self))
      else { return nil }
      return .constant(address, type: type)
    case .macaddr:
      // A char array's six bytes as they were in memory, not the string they would print as
      // (which ends at a NUL and keeps room for one).
      if let value = fetched[args[0].id], case .chars(let count) = value.layout {
        let raw = ScryType.array(.integer(IntegerType(bits: 8, isSigned: false)), count: count)
        return .macAddress(.recordBytes(offset: value.offset, type: raw), type: type)
      }
      return .macAddress(bytes(args[0], as: nil), type: type)
    case .sprintf:
      guard let format = program.formats[e.id] else { return nil }
      return .formatted(format, arguments: args.dropFirst().map { value($0) }, type: type)
    case .ctime:
      return .calendarTime(int(args[0]), type: type)
    case .textStrn:
      guard case .integer(let length) = args[1].kind, case .integer(let quoted) = args[2].kind else { return nil }
      return .escapedText(bytes(args[0], as: nil), length: Int(clamping: length), isQuoted: quoted != 0, type: type)
    case .strReplace:
      return .replaced(bytes(args[0], as: nil), target: bytes(args[1], as: nil), replacement: bytes(args[2], as: nil), type: type)
    case .substr:
      return .substring(bytes(args[0], as: nil), start: int(args[1]), length: int(args[2]), type: type)
    case .kstack, .ustack:
      guard case .stack(let stack) = type else { return nil }
      return .stack(stack)
    case .usym:
      return .userSymbol(int(args[0]))
    case .ntop:
      return ntop(args)
    case .buf:
      guard case .buffer(let capacity) = type else { return nil }
      // An array in a struct the kernel copied at the event: its bytes.
      if let value = fetched[args[0].id] {
        switch value.layout {
        case .chars(let count), .raw(let count): return .recordBuffer(offset: value.offset, count: Swift.min(count, capacity), type: type)
        default: break
        }
      }
      // A string literal's own bytes (with its NUL, zero-padded), not memory at an address.
      guard case .string(let text) = args[0].kind else { return nil }
      var layout = [UInt8](repeating: 0, count: 8 + capacity)
      withUnsafeBytes(of: UInt64(capacity).littleEndian) { layout.replaceSubrange(0..<8, with: $0) }
      for (i, byte) in text.prefix(capacity).enumerated() { layout[8 + i] = byte }
      return .constant(layout, type: type)
    default:
      return nil
    }
  }

  private mutating func ntop(_ args: [Expr]) -> BytesExpr {
    let address = args[args.count - 1]
    let family = args.count == 2 ? int(args[0]) : nil
    if case .integer = program.type(of: address) {
      return .inetAddress(family: family, address: .fromInt(int(address), type: .uint64))
    }
    if case .pointer = program.type(of: address) {
      return .inetAddress(family: family, address: .fromInt(int(address), type: .uint64))
    }
    return .inetAddress(family: family, address: bytes(address, as: nil))
  }

  private mutating func str(_ args: [Expr], _ e: Expr, type: ScryType) -> BytesExpr? {
    let first = args[0]
    // `str($1)` is the parameter's text, empty when it was not given.
    if args.count == 1, let text = PositionalParameter.stringOperand(first, in: program.positionals) {
      return .constant(text, type: type)
    }
    let sourceType = program.type(of: first)
    if sourceType.isString {
      let source = bytes(first, as: nil)
      if args.count > 1 { return .truncate(source, length: int(args[1]), type: type) }
      return source.type == type ? source : .convert(source, type: type)
    }
    if case .integer(let t) = sourceType, !holdsAddress(first) {
      return .digits(int(first), isSigned: t.isSigned, type: type)
    }
    unsupported(
      e.span,
      "'str()' can read memory only through a tracepoint's pointer field (args.filename) or, in uprobes and kprobes, through arguments, retval and reads of them"
    )
    return .constant([], type: type)
  }

  /// Builtins and fields that hold addresses: `str()` of them reads memory rather than formatting digits.
  func holdsAddress(_ e: Expr) -> Bool {
    if case .builtin(let b)? = program.resolutions[e.id] {
      switch b {
      case .arg, .retval, .stackArg: return true
      default: return false
      }
    }
    if case .pointer = program.type(of: e) { return true }
    // `uptr(p)`, `kptr(p)`: an address, whatever its type.
    if let function = program.function(of: e), function == .uptr || function == .kptr { return true }
    return false
  }
}

extension Expr {
  /// `@m[k]` (or a bare global `m[k]`): one element of a map rather than the map.
  fileprivate var isKeyedMapAccess: Bool {
    if case .map(_, let keys, _) = kind { return !keys.isEmpty }
    return false
  }
}

extension ActionLowering {
  /// `uaddr("sym")` as a number: the symbol's address where every probe of the block has the same
  /// one (an executable loaded where it was linked), else the probe point's address the capture
  /// copied plus the distance to the variable, when that is one distance for the whole block.
  mutating func userDataAddress(_ e: Expr) -> IntExpr {
    let symbols = Array((program.userDataSymbols[e.id] ?? [:]).values)
    guard let first = symbols.first else { return unsupportedInt(e.span, "uaddr() resolved to nothing at this block's probes") }
    if !first.isPositionIndependent, symbols.allSatisfy({ !$0.isPositionIndependent && $0.address == first.address }) {
      return .constant(first.address)
    }
    guard symbols.allSatisfy({ $0.isPositionIndependent && $0.offsetFromProbe == first.offsetFromProbe }),
      let value = fetched[e.id], case .integer(let byteCount, let isSigned) = value.layout
    else {
      return unsupportedInt(
        e.span, "uaddr() of a position-independent binary is known only at a uprobe's entry, one distance from the probe point for the whole block")
    }
    let ip = IntExpr.record(offset: value.offset, byteCount: byteCount, isSigned: isSigned)
    return .binary(.add, ip, .constant(UInt64(bitPattern: first.offsetFromProbe)), isSigned: false)
  }
}
