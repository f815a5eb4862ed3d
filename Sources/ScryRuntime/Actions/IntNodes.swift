import Glibc
import ScryLanguage
import ScryPlan
import ScryKernel

final class IntConstant: IntNode {
  let value: UInt64
  init(_ value: UInt64) { self.value = value }
  override func eval(_ m: Machine) -> UInt64 { value }
}

/// Builtins read from the current event.
final class EventValue: IntNode {
  let source: EventProperty
  /// `ncpus`, counted once when the action is bound.
  let cpuCount: UInt64
  init(_ source: EventProperty) {
    self.source = source
    self.cpuCount = source == .cpuCount ? UInt64(SystemInfo.onlineCPUs().count) : 0
  }
  override func eval(_ m: Machine) -> UInt64 {
    switch source {
    case .pid: return UInt64(m.pid)
    case .tid: return UInt64(m.tid)
    case .cpu: return UInt64(m.cpu)
    case .nsecs: return m.time
    case .elapsed: return m.time &- m.startTime
    case .cpid: return UInt64(m.childPid)
    case .rand: return m.nextRandom()
    case .uid: return UInt64(m.uid())
    case .gid: return UInt64(m.gid())
    case .ip: return m.ip
    case .cgroup: return m.cgroup
    case .zero: return 0
    case .cpuCount: return cpuCount
    // The event's monotonic time moved to the wall clock by the clocks' current distance.
    case .realtime: return m.time &+ (Clock.realtimeNanoseconds() &- Clock.monotonicNanoseconds())
    }
  }
}

/// An integer field of the tracepoint record at a fixed offset.
final class RecordInteger: IntNode {
  let offset: Int
  let byteCount: Int
  let isSigned: Bool
  init(offset: Int, byteCount: Int, isSigned: Bool) {
    self.offset = offset
    self.byteCount = byteCount
    self.isSigned = isSigned
  }
  override func eval(_ m: Machine) -> UInt64 {
    guard let raw = m.raw, offset + byteCount <= m.rawSize else { return 0 }
    switch (byteCount, isSigned) {
    case (1, true): return UInt64(bitPattern: Int64(raw.loadUnaligned(fromByteOffset: offset, as: Int8.self)))
    case (1, false): return UInt64(raw.loadUnaligned(fromByteOffset: offset, as: UInt8.self))
    case (2, true): return UInt64(bitPattern: Int64(raw.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
    case (2, false): return UInt64(raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    case (4, true): return UInt64(bitPattern: Int64(raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
    case (4, false): return UInt64(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    default: return raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    }
  }
}

/// Reads 8 bytes of a bytes-valued node at an offset: a tuple element, a variable, a map value.
final class IntFromBytes: IntNode {
  let source: BytesNode
  let offset: Int
  let scratch: Scratch
  init(_ source: BytesNode, offset: Int) {
    self.source = source
    self.offset = offset
    // A narrow member near a struct value's end is loaded as 8 bytes: room past the value (zeros).
    self.scratch = Scratch(max(source.byteSize, offset + 8))
  }
  override func eval(_ m: Machine) -> UInt64 {
    source.eval(m, into: scratch.pointer)
    return scratch.pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
  }
}

final class VariableInt: IntNode {
  let offset: Int
  init(offset: Int) { self.offset = offset }
  override func eval(_ m: Machine) -> UInt64 { m.variables.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
}

/// Truncates to `bits` and extends back to 64 by the target's signedness: casts and narrow stores.
final class IntConvert: IntNode {
  let operand: IntNode
  let bits: Int
  let isSigned: Bool
  init(_ operand: IntNode, bits: Int, isSigned: Bool) {
    self.operand = operand
    self.bits = bits
    self.isSigned = isSigned
  }
  override func eval(_ m: Machine) -> UInt64 {
    let v = operand.eval(m)
    guard bits < 64 else { return v }
    let shift = UInt64(64 - bits)
    if isSigned { return UInt64(bitPattern: Int64(bitPattern: v << shift) >> Int64(shift)) }
    return (v << shift) >> shift
  }
}

final class IntUnary: IntNode {
  let op: IntUnaryOperator
  let operand: IntNode
  init(_ op: IntUnaryOperator, _ operand: IntNode) {
    self.op = op
    self.operand = operand
  }
  override func eval(_ m: Machine) -> UInt64 {
    let v = operand.eval(m)
    switch op {
    case .not: return v == 0 ? 1 : 0
    case .bitNot: return ~v
    case .negate: return 0 &- v
    }
  }
}

final class IntBinary: IntNode {
  let op: IntOperator
  let lhs: IntNode
  let rhs: IntNode
  /// Signed division, remainder, right shift and ordering.
  let isSigned: Bool
  init(_ op: IntOperator, _ lhs: IntNode, _ rhs: IntNode, isSigned: Bool) {
    self.op = op
    self.lhs = lhs
    self.rhs = rhs
    self.isSigned = isSigned
  }
  override func eval(_ m: Machine) -> UInt64 { op.apply(lhs.eval(m), rhs.eval(m), isSigned: isSigned) }
}

extension IntOperator {
  /// The operator on 64-bit patterns: the one arithmetic of binary expressions, `op=` and `++`.
  @inline(__always)
  func apply(_ a: UInt64, _ b: UInt64, isSigned: Bool) -> UInt64 {
    let sa = Int64(bitPattern: a)
    let sb = Int64(bitPattern: b)
    switch self {
    case .add: return a &+ b
    case .sub: return a &- b
    case .mul: return a &* b
    // Division by zero gives 0, as in bpftrace's BPF.
    case .div:
      if b == 0 { return 0 }
      return isSigned ? UInt64(bitPattern: sa.dividedReportingOverflow(by: sb).partialValue) : a / b
    case .mod:
      if b == 0 { return 0 }
      return isSigned ? UInt64(bitPattern: sa.remainderReportingOverflow(dividingBy: sb).partialValue) : a % b
    case .and: return a & b
    case .or: return a | b
    case .xor: return a ^ b
    case .shl: return b >= 64 ? 0 : a << b
    case .shr:
      if isSigned { return UInt64(bitPattern: sa >> Int64(min(b, 63))) }
      return b >= 64 ? 0 : a >> b
    case .eq: return a == b ? 1 : 0
    case .ne: return a != b ? 1 : 0
    case .lt: return (isSigned ? sa < sb : a < b) ? 1 : 0
    case .le: return (isSigned ? sa <= sb : a <= b) ? 1 : 0
    case .gt: return (isSigned ? sa > sb : a > b) ? 1 : 0
    case .ge: return (isSigned ? sa >= sb : a >= b) ? 1 : 0
    }
  }
}

final class LogicalAnd: IntNode {
  let lhs: IntNode
  let rhs: IntNode
  init(_ lhs: IntNode, _ rhs: IntNode) {
    self.lhs = lhs
    self.rhs = rhs
  }
  override func eval(_ m: Machine) -> UInt64 { lhs.eval(m) != 0 && rhs.eval(m) != 0 ? 1 : 0 }
}

final class LogicalOr: IntNode {
  let lhs: IntNode
  let rhs: IntNode
  init(_ lhs: IntNode, _ rhs: IntNode) {
    self.lhs = lhs
    self.rhs = rhs
  }
  override func eval(_ m: Machine) -> UInt64 { lhs.eval(m) != 0 || rhs.eval(m) != 0 ? 1 : 0 }
}

final class IntTernary: IntNode {
  let condition: IntNode
  let then: IntNode
  let otherwise: IntNode
  init(_ condition: IntNode, _ then: IntNode, _ otherwise: IntNode) {
    self.condition = condition
    self.then = then
    self.otherwise = otherwise
  }
  override func eval(_ m: Machine) -> UInt64 { condition.eval(m) != 0 ? then.eval(m) : otherwise.eval(m) }
}

/// `==`/`!=` on strings (up to the first NUL) and on other byte values (whole layout).
final class BytesEqual: IntNode {
  let lhs: BytesNode
  let rhs: BytesNode
  let isNegated: Bool
  let isString: Bool
  let left: Scratch
  let right: Scratch
  init(_ lhs: BytesNode, _ rhs: BytesNode, isNegated: Bool) {
    self.lhs = lhs
    self.rhs = rhs
    self.isNegated = isNegated
    self.isString = lhs.type.isString && rhs.type.isString
    self.left = Scratch(lhs.byteSize)
    self.right = Scratch(rhs.byteSize)
  }
  override func eval(_ m: Machine) -> UInt64 {
    lhs.eval(m, into: left.pointer)
    rhs.eval(m, into: right.pointer)
    let equal: Bool
    if isString {
      equal = StringBytes.compare(left.pointer, lhs.byteSize, right.pointer, rhs.byteSize, limit: Int.max) == 0
    } else {
      equal = lhs.byteSize == rhs.byteSize && memcmp(left.pointer, right.pointer, lhs.byteSize) == 0
    }
    return equal != isNegated ? 1 : 0
  }
}

/// `strncmp(a, b, n)`: 0 when the first n bytes agree, as bpftrace returns it.
final class StringCompare: IntNode {
  let lhs: BytesNode
  let rhs: BytesNode
  let limit: Int
  let left: Scratch
  let right: Scratch
  init(_ lhs: BytesNode, _ rhs: BytesNode, limit: Int) {
    self.lhs = lhs
    self.rhs = rhs
    self.limit = limit
    self.left = Scratch(lhs.byteSize)
    self.right = Scratch(rhs.byteSize)
  }
  override func eval(_ m: Machine) -> UInt64 {
    lhs.eval(m, into: left.pointer)
    rhs.eval(m, into: right.pointer)
    return StringBytes.compare(left.pointer, lhs.byteSize, right.pointer, rhs.byteSize, limit: limit) == 0 ? 0 : 1
  }
}

/// `strcontains(haystack, needle)`.
final class StringContains: IntNode {
  let haystack: BytesNode
  let needle: BytesNode
  let h: Scratch
  let n: Scratch
  init(_ haystack: BytesNode, _ needle: BytesNode) {
    self.haystack = haystack
    self.needle = needle
    self.h = Scratch(haystack.byteSize)
    self.n = Scratch(needle.byteSize)
  }
  override func eval(_ m: Machine) -> UInt64 {
    haystack.eval(m, into: h.pointer)
    needle.eval(m, into: n.pointer)
    let hl = StringBytes.length(h.pointer, haystack.byteSize)
    let nl = StringBytes.length(n.pointer, needle.byteSize)
    if nl == 0 { return 1 }
    if nl > hl { return 0 }
    for start in 0...(hl - nl) where memcmp(h.pointer + start, n.pointer, nl) == 0 { return 1 }
    return 0
  }
}

/// NUL-terminated strings inside fixed-size byte slots.
enum StringBytes {
  @inline(__always)
  static func length(_ p: UnsafeRawPointer, _ capacity: Int) -> Int {
    guard capacity > 0, let nul = memchr(p, 0, capacity) else { return capacity }
    return p.distance(to: UnsafeRawPointer(nul))
  }

  /// strcmp-like comparison of two slots, looking at most `limit` bytes.
  static func compare(_ a: UnsafeRawPointer, _ ac: Int, _ b: UnsafeRawPointer, _ bc: Int, limit: Int) -> Int {
    let al = length(a, ac)
    let bl = length(b, bc)
    let n = min(min(al, bl), limit)
    let c = memcmp(a, b, n)
    if c != 0 { return Int(c) }
    if n == limit { return 0 }
    return al == bl ? 0 : (al < bl ? -1 : 1)
  }

  /// Copies a string into a slot of `capacity`, truncating to leave a NUL and padding with NULs.
  @inline(__always)
  static func store(_ source: UnsafeRawPointer, length: Int, into destination: UnsafeMutableRawPointer, capacity: Int) {
    guard capacity > 0 else { return }
    let n = min(length, capacity - 1)
    destination.copyMemory(from: source, byteCount: n)
    (destination + n).initializeMemory(as: UInt8.self, repeating: 0, count: capacity - n)
  }
}
