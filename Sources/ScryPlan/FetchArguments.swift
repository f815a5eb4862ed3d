import ScryLanguage

/// Lowers what a uprobe or kprobe block reads from registers and memory into fetch arguments of
/// its dynamic event, so the kernel copies the data when the probe fires (a process may free or
/// reuse a buffer, or exit, before user space could look). The runtime then reads each value from
/// the record like a tracepoint field.
///
/// `arg0`…`arg5` are the x86-64 argument registers, `argN` beyond and `sargN` the stack, `retval`
/// `$retval`; `str(A)` is `+0(A):ustring`, `*(uint32 *)(A + 8)` is `+8(A):u32`, nested as deep as written.
struct FetchArguments {
  let program: CheckedProgram
  let isKernel: Bool
  let isReturn: Bool
  /// At a USDT probe, where each `argN` is (the note's operands) instead of the argument registers.
  let staticArguments: [StaticProbeArgument]?
  /// The probe's name, for what `uaddr()` resolved to in its binary.
  var probeName: String?
  private(set) var fields: [ProbeCapture.Field] = []
  private(set) var sites: [ReadSite] = []
  private(set) var fetched: [NodeID: FetchedValue] = [:]
  /// Offset of each value already captured, so a value read twice is fetched once.
  private var offsets: [ProbeCapture.Value: Int] = [:]
  /// Offset of each USDT argument already captured, by index: by index and not by value, so that
  /// the probes of one block lay their records out alike whatever registers their notes name.
  private var staticOffsets: [Int: Int] = [:]
  private let firstOffset: Int
  private var nextOffset: Int
  private var paths: MemoryPaths?

  init(program: CheckedProgram, isKernel: Bool, isReturn: Bool, firstOffset: Int, staticArguments: [StaticProbeArgument]? = nil) {
    self.program = program
    self.isKernel = isKernel
    self.isReturn = isReturn
    self.staticArguments = staticArguments
    self.firstOffset = firstOffset
    self.nextOffset = firstOffset
  }

  /// The capture: its fields in record order.
  var capture: ProbeCapture {
    var capture = ProbeCapture(isKernel: isKernel, fields: fields, firstOffset: firstOffset, fixedSize: nextOffset)
    capture.sites = sites
    return capture
  }

  static let argumentRegisters = ["di", "si", "dx", "cx", "r8", "r9"]

  /// Fetches every value of `block` that the kernel must copy.
  mutating func lower(_ block: ProbeBlock) {
    let isReturn = isReturn
    let statics = staticArguments
    paths = MemoryPaths(program: program, block: block) { [program] e in
      Self.register(e, program: program, isReturn: isReturn, staticArguments: statics)
    }
    paths?.userProbe = probeName.map { ($0, isReturn) }
    // A value fetched whole needs none of its parts.
    block.visitExpressions { fetch($0) }
  }

  private mutating func fetch(_ e: Expr) -> Bool {
    guard let paths else { return false }
    switch (e.kind, program.function(of: e)) {
    case (.call(_, _, let args), .str?) where !program.type(of: args[0]).isString:
      guard let address = paths.pointerValue(args[0]), case .string(let capacity) = program.type(of: e) else { return false }
      define(e, .string(address.base, offset: address.offset, maxLength: capacity), layout: .dataLocationString, size: 4)
      return true
    case (.call(_, _, let args), .buf?):
      guard let address = paths.pointerValue(args[0]), case .buffer(let count) = program.type(of: e) else { return false }
      define(e, .bytes(address.base, offset: address.offset, count: count), layout: .bytes(count: count), size: count)
      return true
    case (.unary(.deref, _), _), (.field, _), (.index, _):
      guard let location = paths.location(e) else { return false }
      return read(e, at: location)
    case (.call, .uaddr?):
      // Its value: the probe point's address (the instruction pointer), which the action moves
      // to the variable (a PIE's; an executable's is a constant).
      guard let address = paths.userDataAddress(e), case .register = address.base else { return false }
      define(e, .operand(address.base, byteCount: 8, isSigned: false), layout: .integer(byteCount: 8, isSigned: false), size: 8)
      return true
    default:
      if let (index, argument) = staticArgument(e) {
        return fetchStatic(e, index, argument)
      }
      guard let register = Self.register(e, program: program, isReturn: isReturn) else { return false }
      define(e, .operand(register, byteCount: 8, isSigned: false), layout: .integer(byteCount: 8, isSigned: false), size: 8)
      return true
    }
  }

  /// The USDT argument `e` names, and its index, if it is `argN` at a USDT probe.
  private func staticArgument(_ e: Expr) -> (index: Int, argument: StaticProbeArgument)? {
    guard let staticArguments, case .builtin(.arg(let n))? = program.resolutions[e.id], n < staticArguments.count else { return nil }
    return (n, staticArguments[n])
  }

  /// A USDT argument at its size and sign: a register's low bytes, memory, or a constant.
  private mutating func fetchStatic(_ e: Expr, _ index: Int, _ argument: StaticProbeArgument) -> Bool {
    let (size, signed) = (argument.byteCount, argument.isSigned)
    let layout = FetchedValue.Layout.integer(byteCount: size, isSigned: signed)
    if let offset = staticOffsets[index] {
      fetched[e.id] = FetchedValue(offset: offset, layout: layout)
      return true
    }
    let value: ProbeCapture.Value
    switch argument.location {
    case .register(let name): value = .operand(.register(name), byteCount: size, isSigned: signed)
    case .memory(let base, let offset): value = .read(.register(base), offset: offset, byteCount: size, isSigned: signed)
    case .indexed(let base, let index, let scale, let offset):
      value = .read(.indexed(base: base, index: index, scale: scale), offset: offset, byteCount: size, isSigned: signed)
    case .constant(let number): value = .operand(.constant(number), byteCount: size, isSigned: signed)
    case .unsupported: return false  // the checker refused it
    }
    staticOffsets[index] = nextOffset
    fields.append(ProbeCapture.Field(offset: nextOffset, value: value))
    sites.append(ReadSite(e, helper: helperName(value)))
    fetched[e.id] = FetchedValue(offset: nextOffset, layout: layout)
    nextOffset += size
    return true
  }

  /// The value at a location, read as its type lays it out: an integer (a bitfield's storage
  /// unit), a char array's text, or the bytes of a struct or array.
  private mutating func read(_ e: Expr, at location: (base: ProbeCapture.Operand, offset: Int64)) -> Bool {
    let type = program.type(of: e)
    switch type {
    case .integer, .pointer, .boolean:
      let size = program.fields[e.id]?.size ?? (integerType(type)?.0 ?? 8)
      let signed = integerType(type)?.1 ?? false
      define(
        e, .read(location.base, offset: location.offset, byteCount: size, isSigned: signed),
        layout: .integer(byteCount: size, isSigned: signed), size: size)
    case .string(let capacity):
      // A member's own bytes (a `char[N]` member's type holds N + 1 with the terminator).
      let count = program.fields[e.id]?.size ?? capacity
      define(e, .bytes(location.base, offset: location.offset, count: count), layout: .chars(count: count), size: count)
    case .record, .array:
      let size = type.byteSize
      guard size > 0 else { return false }
      define(e, .bytes(location.base, offset: location.offset, count: size), layout: .raw(count: size), size: size)
    default:
      return false
    }
    return true
  }

  private mutating func define(_ e: Expr, _ value: ProbeCapture.Value, layout: FetchedValue.Layout, size: Int) {
    if let offset = offsets[value] {
      fetched[e.id] = FetchedValue(offset: offset, layout: layout)
      return
    }
    fields.append(ProbeCapture.Field(offset: nextOffset, value: value))
    sites.append(ReadSite(e, helper: helperName(value)))
    offsets[value] = nextOffset
    fetched[e.id] = FetchedValue(offset: nextOffset, layout: layout)
    nextOffset += size
  }

  /// bpftrace's helper for a field: the probe's address space (the kernel's from `curtask`).
  private func helperName(_ value: ProbeCapture.Value) -> String {
    let base: ProbeCapture.Operand
    let isString: Bool
    switch value {
    case .operand(let o, _, _), .read(let o, _, _, _), .bytes(let o, _, _): (base, isString) = (o, false)
    case .string(let o, _, _): (base, isString) = (o, true)
    }
    let kernel = isKernel || base.root == .currentTask
    return "probe_read" + (kernel ? "_kernel" : "_user") + (isString ? "_str" : "")
  }

  /// The operand of a builtin that holds a register or stack value.
  static func register(
    _ e: Expr, program: CheckedProgram, isReturn: Bool, staticArguments: [StaticProbeArgument]? = nil
  ) -> ProbeCapture.Operand? {
    if let staticArguments, case .builtin(.arg(let n))? = program.resolutions[e.id] {
      // A USDT argument used as a pointer (`str(arg0)`): its whole 8 bytes.
      guard n < staticArguments.count else { return nil }
      switch staticArguments[n].location {
      case .register(let name): return .register(name)
      case .memory(let base, let offset): return .memory(.register(base), offset: offset)
      case .indexed(let base, let index, let scale, let offset):
        return .memory(.indexed(base: base, index: index, scale: scale), offset: offset)
      case .constant(let number): return .constant(number)
      case .unsupported: return nil
      }
    }
    switch program.resolutions[e.id] {
    case .builtin(.arg(let n))?:
      return n < argumentRegisters.count ? .register(argumentRegisters[n]) : .stackEntry(n - argumentRegisters.count + 1)
    case .builtin(.stackArg(let n))?: return .stackEntry(n + 1)
    case .builtin(.retval)?: return .returnValue
    case .builtin(.curtask)?: return .currentTask
    default:
      // `reg("ip")`: the register by the name the checker allowed.
      if program.function(of: e) == .reg, case .call(_, _, let args) = e.kind, case .string(let bytes)? = args.first?.kind {
        return .register(String(decoding: bytes, as: UTF8.self))
      }
      return nil
    }
  }

  private func integerType(_ type: ScryType) -> (Int, Bool)? {
    switch type {
    case .integer(let t): return (t.bits / 8, t.isSigned)
    case .pointer, .boolean: return (8, false)
    default: return nil
    }
  }
}
