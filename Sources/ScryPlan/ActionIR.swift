import ScryLanguage

/// The typed action IR: what each probe block does, lowered from the checked program with every
/// name resolved and every type settled. Values are of two sorts, as the runtime evaluates them:
/// integers (`IntExpr`, 64-bit patterns, signed types sign-extended) and fixed-layout byte values
/// (`BytesExpr`: strings, tuples, buffers, each with its `ScryType`). Maps are indices into
/// `Plan.maps`, variables byte offsets into the block's variable area, event fields offsets into
/// the record. The runtime binds each case to a node and looks nothing up by name.

/// Where in the script a map access is, rendered when the plan is made: `-k` and `-kk` print it
/// with bpftrace's helper-error warnings, so the run renders nothing.
public struct SourceSite: Sendable, Equatable {
  /// The access in the plan's source.
  public var span: SourceSpan
  public init(span: SourceSpan) {
    self.span = span
  }
}

/// One probe block's action: an optional predicate and its statements.
public struct ProbeAction: Sendable, Equatable {
  /// The block's probe specs as written (`tracepoint:sched:sched_switch`), for `--plan`.
  public var header: String
  public var predicate: IntExpr?
  public var body: [IRStatement]

  public init(header: String, predicate: IntExpr?, body: [IRStatement]) {
    self.header = header
    self.predicate = predicate
    self.body = body
  }
}

/// Values the event carries, read by the runtime from the record it decoded.
public enum EventProperty: String, Sendable, Hashable {
  case pid, tid, cpu, nsecs, elapsed, cpid, rand, uid, gid, ip, cgroup
  /// A builtin that is always 0 on this machine (`numaid` without NUMA).
  case zero
  /// `ncpus`: the CPUs online when the session starts.
  case cpuCount
  /// The event's time on CLOCK_REALTIME, in nanoseconds since the epoch (SystemTap's `gettimeofday_ns`).
  case realtime
}

/// Integer operators with both operands evaluated (`&&` and `||` are `IntExpr.and`/`.or`).
public enum IntOperator: String, Sendable, Hashable {
  case add, sub, mul, div, mod, and, or, xor, shl, shr, eq, ne, lt, le, gt, ge

  /// The operator for a binary operator of the language; nil for the short-circuit ones.
  public init?(_ op: BinaryOperator) {
    switch op {
    case .add: self = .add
    case .subtract: self = .sub
    case .multiply: self = .mul
    case .divide: self = .div
    case .modulo: self = .mod
    case .bitAnd: self = .and
    case .bitOr: self = .or
    case .bitXor: self = .xor
    case .shiftLeft: self = .shl
    case .shiftRight: self = .shr
    case .equal: self = .eq
    case .notEqual: self = .ne
    case .less: self = .lt
    case .lessEqual: self = .le
    case .greater: self = .gt
    case .greaterEqual: self = .ge
    case .logicalAnd, .logicalOr: return nil
    }
  }
}

/// `!x`, `~x`, `-x`.
public enum IntUnaryOperator: String, Sendable, Hashable {
  case not, bitNot, negate
}

/// `x op= v`, `x++`: the operator and whether it divides and shifts as signed.
public struct UpdateOperation: Sendable, Hashable {
  public var op: IntOperator
  public var isSigned: Bool
  public init(op: IntOperator, isSigned: Bool) {
    self.op = op
    self.isSigned = isSigned
  }
}

/// An integer-valued expression.
public indirect enum IntExpr: Sendable, Equatable {
  case constant(UInt64)
  case event(EventProperty)
  /// An integer field of the record (a tracepoint field, a fetched register or memory value).
  case record(offset: Int, byteCount: Int, isSigned: Bool)
  case variable(offset: Int)
  /// Eight bytes of a byte value at an offset (a tuple element, a non-integer variable).
  case fromBytes(BytesExpr, offset: Int)
  /// Truncation to `bits`, extended back by the target's signedness (casts).
  case convert(IntExpr, bits: Int, isSigned: Bool)
  case unary(IntUnaryOperator, IntExpr)
  case binary(IntOperator, IntExpr, IntExpr, isSigned: Bool)
  /// `a && b`, `a || b`: the right side runs only when it decides the result.
  case logicalAnd(IntExpr, IntExpr)
  case logicalOr(IntExpr, IntExpr)
  case ternary(IntExpr, IntExpr, IntExpr)
  case bytesEqual(BytesExpr, BytesExpr, isNegated: Bool)
  case stringCompare(BytesExpr, BytesExpr, limit: Int)
  case stringContains(BytesExpr, BytesExpr)
  /// A map's integer value (or an aggregation's value as bpftrace reads it: a count, a sum…).
  case mapRead(map: Int, key: [BytesExpr], aggregate: AggregateKind?, site: SourceSite)
  case mapUpdate(map: Int, key: [BytesExpr], operation: UpdateOperation, operand: IntExpr?, returnsOld: Bool)
  case variableUpdate(offset: Int, operation: UpdateOperation, operand: IntExpr?, returnsOld: Bool)
  case mapHasKey(map: Int, key: [BytesExpr])
  case mapLength(map: Int)
  /// The integer's low `bits` bits in reverse byte order (`bswap`).
  case byteSwap(IntExpr, bits: Int)
  /// The bytes of a string before its first NUL (SystemTap's `strlen`).
  case stringLength(BytesExpr)
  /// The number a string spells in a base, as C's strtoll reads it (SystemTap's `strtol`).
  case stringToInteger(BytesExpr, base: IntExpr)
  /// The byte at a 0-based position of a string, 0 past its end (SystemTap's `stringat`).
  case stringByte(BytesExpr, position: IntExpr)
  /// A block expression: the statements run, then the value.
  case sequence([IRStatement], IntExpr)
}

/// A byte-valued expression; `type` fixes its layout (`type.byteSize` bytes).
public indirect enum BytesExpr: Sendable, Equatable {
  case constant([UInt8], type: ScryType)
  /// The event task's name (16 bytes).
  case comm
  case probeName(type: ScryType)
  /// The function a uprobe is placed in (`func`).
  case probeFunction(type: ScryType)
  /// A char array inside the record.
  case recordChars(offset: Int, count: Int, type: ScryType)
  /// A `__data_loc` string of the record (a u32 of length << 16 | offset).
  case recordDataLocationString(offset: Int, type: ScryType)
  /// Raw bytes inside the record (`buf()` fetched by the kernel).
  case recordBuffer(offset: Int, count: Int, type: ScryType)
  /// A struct or array value the kernel copied into the record: `type.byteSize` bytes as they were.
  case recordBytes(offset: Int, type: ScryType)
  /// A string the kernel copied at the event from behind a pointer field, in a slot of the
  /// sample. Without BPF the runtime reads it from the process through the pointer at `pointerField`.
  case capturedString(offset: Int, maxLength: Int, pointerField: Int?, type: ScryType)
  case variable(offset: Int, type: ScryType)
  /// An integer as 8 bytes (or narrower, as `type` says).
  case fromInt(IntExpr, type: ScryType)
  case tuple([BytesExpr], type: ScryType)
  case slice(BytesExpr, offset: Int, type: ScryType)
  /// A value laid out again as a wider (or narrower) type: strings padded, tuples element-wise.
  case convert(BytesExpr, type: ScryType)
  case ternary(IntExpr, BytesExpr, BytesExpr, type: ScryType)
  case truncate(BytesExpr, length: IntExpr, type: ScryType)
  /// An integer's decimal digits (`str(42)`).
  case digits(IntExpr, isSigned: Bool, type: ScryType)
  case strftime(format: [UInt8], nanoseconds: IntExpr)
  case mapRead(map: Int, key: [BytesExpr], type: ScryType, site: SourceSite)
  /// `ntop`: an address family (AF_INET or AF_INET6; nil: by the address's size) and the address,
  /// whose first 4 or 16 bytes are the address in network order.
  case inetAddress(family: IntExpr?, address: BytesExpr)
  /// `macaddr(bytes)`: the first six bytes of a value (after a buffer's length) as `2A:00:…`.
  case macAddress(BytesExpr, type: ScryType)
  /// `strerror(errno)`: the C library's text for an error number.
  case errorText(IntExpr, type: ScryType)
  /// `cgroup_path(id[, filter])`: the cgroup's path in each mounted hierarchy whose name matches
  /// the filter (a shell pattern), as bpftrace prints it.
  case cgroupPath(IntExpr, filter: String?, type: ScryType)
  /// The name of the event task's user (`username`).
  case username(type: ScryType)
  /// The kernel or user stack the capture program copied at the event, as a stack value.
  case stack(StackType)
  /// `usym(addr)`: a user address with the event's process, named when printed.
  case userSymbol(IntExpr)
  /// printf's text as a string value, cut to the type's capacity (SystemTap's `sprintf` and `.`).
  case formatted(PrintfFormat, arguments: [BytesExpr], type: ScryType)
  /// A string with unprintable characters escaped as SystemTap's `_stp_text_str` does (`\n`,
  /// `\ooo`, `\uXXXX`), reading at most `length` bytes (0: all), optionally in double quotes.
  case escapedText(BytesExpr, length: Int, isQuoted: Bool, type: ScryType)
  /// Seconds since the epoch as C's asctime text in UTC, without its newline (SystemTap's `ctime`).
  case calendarTime(IntExpr, type: ScryType)
  /// `length` bytes of a string from `start` (SystemTap's `substr`).
  case substring(BytesExpr, start: IntExpr, length: IntExpr, type: ScryType)
  /// A string with every occurrence of `target` replaced, cut to the type (SystemTap's `str_replace`).
  case replaced(BytesExpr, target: BytesExpr, replacement: BytesExpr, type: ScryType)
  /// A block expression: the statements run, then the value.
  case sequence([IRStatement], BytesExpr)

  /// The layout of the value.
  public var type: ScryType {
    switch self {
    case .constant(_, let type), .probeName(let type), .probeFunction(let type), .recordChars(_, _, let type),
      .recordDataLocationString(_, let type), .recordBuffer(_, _, let type), .recordBytes(_, let type), .capturedString(_, _, _, let type),
      .variable(_, let type), .fromInt(_, let type), .tuple(_, let type), .slice(_, _, let type),
      .convert(_, let type), .ternary(_, _, _, let type), .truncate(_, _, let type), .digits(_, _, let type),
      .mapRead(_, _, let type, _), .errorText(_, let type), .cgroupPath(_, _, let type), .username(let type), .macAddress(_, let type),
      .formatted(_, _, let type), .substring(_, _, _, let type), .calendarTime(_, let type),
      .escapedText(_, _, _, let type), .replaced(_, _, _, let type):
      return type
    case .comm: return .comm
    // Formatted when the event runs, into a string of bpftrace's default size.
    case .strftime: return .defaultString
    case .inetAddress: return .inetAddress
    case .stack(let stack): return .stack(stack)
    case .userSymbol: return .symbol(isKernel: false)
    case .sequence(_, let value): return value.type
    }
  }
}

/// What `printf`, `cat` and `system` do with their formatted text.
public enum FormattedEffect: String, Sendable, Hashable {
  case print, catFile, runCommand
}

/// Loop exits.
public enum FlowControl: String, Sendable, Hashable {
  case breakLoop, continueLoop, returnProbe
}

/// A statement of the action IR.
public indirect enum IRStatement: Sendable, Equatable {
  case evaluate(IntExpr)
  case storeVariable(offset: Int, IntExpr)
  case storeVariableBytes(offset: Int, BytesExpr)
  case mapStore(map: Int, key: [BytesExpr], IntExpr)
  case mapStoreBytes(map: Int, key: [BytesExpr], BytesExpr)
  case aggregate(map: Int, key: [BytesExpr], kind: AggregateKind, operand: IntExpr?)
  case mapDelete(map: Int, key: [BytesExpr], site: SourceSite)
  /// `delete(@m[k, *])`: every element whose key equals `key` on the components `matched` marks
  /// (a wildcard's component is a placeholder, not compared).
  case mapDeleteMatching(map: Int, key: [BytesExpr], matched: [Bool])
  /// `clear(@m)` (`keepsKeys` false) or `zero(@m)`.
  case mapReset(map: Int, keepsKeys: Bool)
  case formatted(PrintfFormat, arguments: [BytesExpr], effect: FormattedEffect)
  case printMap(map: Int, top: IntExpr?, divisor: IntExpr?)
  case printValue(BytesExpr)
  /// `print(args)`: the whole record, as bpftrace prints a struct.
  case printRecord(RecordType)
  case exit(code: IntExpr?)
  case time(format: [UInt8])
  case signal(IntExpr)
  /// `unwatch(addr)`: the run closes every watchpoint breakpoint on the address before its next drain.
  case unwatch(IntExpr)
  /// `join(args.argv)`: strings the kernel copied at the event into a slot of the sample
  /// (without BPF, read from the process through the pointer array at `pointerField`).
  case join(offset: Int, maxCount: Int, maxLength: Int, separator: [UInt8], pointerField: Int?)
  case ifElse(IntExpr, then: [IRStatement], otherwise: [IRStatement]?)
  /// `while (condition)` or `unroll (count)`.
  case loop(condition: IntExpr?, count: IntExpr?, body: [IRStatement])
  /// `for ($i : start..end)`: the variable at `offset`.
  case rangeLoop(offset: Int, start: IntExpr, end: IntExpr, body: [IRStatement])
  /// `for ($kv : @m)`: each (key, value) tuple written to the variable at `offset`.
  case mapLoop(map: Int, offset: Int, body: [IRStatement], order: MapLoopOrder?)
  case flow(FlowControl)
  case block([IRStatement])
}
