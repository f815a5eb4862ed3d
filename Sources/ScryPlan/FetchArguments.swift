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
  private(set) var fields: [ProbeCapture.Field] = []
  private(set) var fetched: [NodeID: FetchedValue] = [:]
  /// Offset of each value already captured, so a value read twice is fetched once.
  private var offsets: [ProbeCapture.Value: Int] = [:]
  private let firstOffset: Int
  private var nextOffset: Int

  init(program: CheckedProgram, isKernel: Bool, isReturn: Bool, firstOffset: Int) {
    self.program = program
    self.isKernel = isKernel
    self.isReturn = isReturn
    self.firstOffset = firstOffset
    self.nextOffset = firstOffset
  }

  /// The capture: its fields in record order.
  var capture: ProbeCapture {
    ProbeCapture(isKernel: isKernel, fields: fields, firstOffset: firstOffset, fixedSize: nextOffset)
  }

  static let argumentRegisters = ["di", "si", "dx", "cx", "r8", "r9"]

  /// Fetches every value of `block` that the kernel must copy.
  mutating func lower(_ block: ProbeBlock) {
    var roots: [Expr] = block.predicate.map { [$0] } ?? []
    for stmt in block.body.allStatements() { roots.append(contentsOf: stmt.expressions) }
    var pending = roots.reversed() as [Expr]
    while let e = pending.popLast() {
      // A value fetched whole needs none of its parts.
      if fetch(e) { continue }
      pending.append(contentsOf: e.children.reversed())
    }
  }

  private mutating func fetch(_ e: Expr) -> Bool {
    switch (e.kind, program.function(of: e)) {
    case (.call(_, _, let args), .str?) where !program.type(of: args[0]).isString:
      guard let address = address(args[0]), case .string(let capacity) = program.type(of: e) else { return false }
      define(e, .string(address.base, offset: address.offset, maxLength: capacity), layout: .dataLocationString, size: 4)
      return true
    case (.call(_, _, let args), .buf?):
      guard let address = address(args[0]), case .buffer(let count) = program.type(of: e) else { return false }
      define(e, .bytes(address.base, offset: address.offset, count: count), layout: .bytes(count: count), size: count)
      return true
    case (.unary(.deref, let pointer), _):
      guard let address = address(pointer), let (size, signed) = integerType(program.type(of: e)) else { return false }
      define(
        e, .read(address.base, offset: address.offset, byteCount: size, isSigned: signed),
        layout: .integer(byteCount: size, isSigned: signed), size: size)
      return true
    default:
      guard let register = register(e) else { return false }
      define(e, .operand(register, byteCount: 8, isSigned: false), layout: .integer(byteCount: 8, isSigned: false), size: 8)
      return true
    }
  }

  private mutating func define(_ e: Expr, _ value: ProbeCapture.Value, layout: FetchedValue.Layout, size: Int) {
    if let offset = offsets[value] {
      fetched[e.id] = FetchedValue(offset: offset, layout: layout)
      return
    }
    fields.append(ProbeCapture.Field(offset: nextOffset, value: value))
    offsets[value] = nextOffset
    fetched[e.id] = FetchedValue(offset: nextOffset, layout: layout)
    nextOffset += size
  }

  /// The operand of a builtin that holds a register or stack value.
  private func register(_ e: Expr) -> ProbeCapture.Operand? {
    switch program.resolutions[e.id] {
    case .builtin(.arg(let n))?:
      return n < Self.argumentRegisters.count ? .register(Self.argumentRegisters[n]) : .stackEntry(n - Self.argumentRegisters.count + 1)
    case .builtin(.stackArg(let n))?: return .stackEntry(n + 1)
    case .builtin(.retval)?: return .returnValue
    default: return nil
    }
  }

  /// An address as an operand and a constant added to it: a register, a cast of one, plus or
  /// minus a constant, or memory read through one (`+8(+0(%di))`).
  private func address(_ e: Expr) -> (base: ProbeCapture.Operand, offset: Int64)? {
    if let register = register(e) { return (register, 0) }
    switch e.kind {
    case .cast(_, let inner):
      return address(inner)
    case .binary(let op, let base, let constant) where op == .add || op == .subtract:
      guard case .integer(let n) = constant.kind, n < 1 << 31, let inner = address(base) else { return nil }
      return (inner.base, inner.offset + (op == .add ? Int64(n) : -Int64(n)))
    case .unary(.deref, let pointer):
      guard let inner = address(pointer) else { return nil }
      return (.memory(inner.base, offset: inner.offset), 0)
    default:
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
