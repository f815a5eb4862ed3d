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
  private(set) var arguments: [String] = []
  private(set) var fetched: [NodeID: FetchedValue] = [:]
  /// Offset of each fetch argument already defined, by its FETCHARG:TYPE text, so a value read twice is fetched once.
  private var offsets: [String: Int] = [:]
  private var nextOffset: Int

  init(program: CheckedProgram, isKernel: Bool, isReturn: Bool, firstOffset: Int) {
    self.program = program
    self.isKernel = isKernel
    self.isReturn = isReturn
    self.nextOffset = firstOffset
  }

  static let argumentRegisters = ["%di", "%si", "%dx", "%cx", "%r8", "%r9"]

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
      guard let address = address(args[0]) else { return false }
      define(e, Self.memory(at: address) + (isKernel ? ":string" : ":ustring"), layout: .dataLocationString, size: 4)
      return true
    case (.call(_, _, let args), .buf?):
      guard let address = address(args[0]), case .buffer(let count) = program.type(of: e) else { return false }
      // tracefs arrays hold at most 64 elements: longer buffers are fetched as consecutive pieces.
      var pieces: [String] = []
      for start in stride(from: 0, to: count, by: 64) {
        let piece = Self.memory(at: (address.base, address.offset + Int64(start)))
        pieces.append("\(piece):u8[\(min(64, count - start))]")
      }
      defineBytes(e, pieces, count: count)
      return true
    case (.unary(.deref, let pointer), _):
      guard let address = address(pointer), let (type, size, signed) = integerType(program.type(of: e)) else { return false }
      define(e, Self.memory(at: address) + ":" + type, layout: .integer(byteCount: size, isSigned: signed), size: size)
      return true
    default:
      guard let register = register(e) else { return false }
      define(e, "\(register):u64", layout: .integer(byteCount: 8, isSigned: false), size: 8)
      return true
    }
  }

  private mutating func define(_ e: Expr, _ argument: String, layout: FetchedValue.Layout, size: Int) {
    if let offset = offsets[argument] {
      fetched[e.id] = FetchedValue(offset: offset, layout: layout)
      return
    }
    arguments.append("a\(arguments.count)=\(argument)")
    offsets[argument] = nextOffset
    fetched[e.id] = FetchedValue(offset: nextOffset, layout: layout)
    nextOffset += size
  }

  /// Consecutive fetch arguments that together hold one value of `count` bytes.
  private mutating func defineBytes(_ e: Expr, _ pieces: [String], count: Int) {
    let key = pieces.joined(separator: " ")
    if let offset = offsets[key] {
      fetched[e.id] = FetchedValue(offset: offset, layout: .bytes(count: count))
      return
    }
    offsets[key] = nextOffset
    fetched[e.id] = FetchedValue(offset: nextOffset, layout: .bytes(count: count))
    for piece in pieces { arguments.append("a\(arguments.count)=\(piece)") }
    nextOffset += count
  }

  /// The fetch operand of a builtin that holds a register or stack value.
  private func register(_ e: Expr) -> String? {
    switch program.resolutions[e.id] {
    case .builtin(.arg(let n))?:
      return n < Self.argumentRegisters.count ? Self.argumentRegisters[n] : "$stack\(n - Self.argumentRegisters.count + 1)"
    case .builtin(.stackArg(let n))?: return "$stack\(n + 1)"
    case .builtin(.retval)?: return "$retval"
    default: return nil
    }
  }

  /// An address as a fetch operand and a constant added to it: a register, a cast of one, plus or
  /// minus a constant, or memory read through one (`+8(+0(%di))`).
  private func address(_ e: Expr) -> (base: String, offset: Int64)? {
    if let register = register(e) { return (register, 0) }
    switch e.kind {
    case .cast(_, let inner):
      return address(inner)
    case .binary(let op, let base, let constant) where op == .add || op == .subtract:
      guard case .integer(let n) = constant.kind, n < 1 << 31, let inner = address(base) else { return nil }
      return (inner.base, inner.offset + (op == .add ? Int64(n) : -Int64(n)))
    case .unary(.deref, let pointer):
      guard let inner = address(pointer) else { return nil }
      return (Self.memory(at: inner), 0)
    default:
      return nil
    }
  }

  /// The fetch operand that reads memory at an address: `+8(%di)` is the memory at %di + 8.
  private static func memory(at address: (base: String, offset: Int64)) -> String {
    (address.offset < 0 ? "\(address.offset)" : "+\(address.offset)") + "(\(address.base))"
  }

  private func integerType(_ type: ScryType) -> (String, Int, Bool)? {
    switch type {
    case .integer(let t):
      return ((t.isSigned ? "s" : "u") + "\(t.bits)", t.bits / 8, t.isSigned)
    case .pointer, .boolean:
      return ("u64", 8, false)
    default:
      return nil
    }
  }
}
