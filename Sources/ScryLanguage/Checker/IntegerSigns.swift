/// Which integer operations are signed, per front end. The checker types results with it and the
/// planner marks the IR's operations with it, so the two cannot disagree (and the kernel's counted
/// keys, which follow the IR's flag, compute what user space would).
public enum IntegerSigns: Sendable, Hashable {
  /// bpftrace 0.17's rules, which differ from C's: see `resultIsSigned` and `operationIsSigned`.
  case bpftrace
  /// SystemTap's: every value is a signed 64-bit long, so arithmetic, division and ordering are
  /// signed. Operands typed unsigned (target variables, casts) keep Scry's rule from before
  /// bpftrace's: the result is unsigned only when both are.
  case systemTap

  public init(_ style: HistogramStyle) {
    self = style == .systemTap ? .systemTap : .bpftrace
  }

  /// Whether `left op right` is typed signed. bpftrace's semantic analyser makes a result signed
  /// only when both operands are (comparisons included, so `(-1 < (uint64)1) - 2` is unsigned),
  /// except shifts, which take the left operand's sign.
  public func resultIsSigned(_ op: BinaryOperator, _ left: ScryType, _ right: ScryType) -> Bool {
    switch self {
    case .systemTap:
      if case .integer(let x) = left, case .integer(let y) = right { return x.isSigned || y.isSigned }
      return true
    case .bpftrace:
      return op == .shiftLeft || op == .shiftRight ? Self.isSigned(left) : Self.isSigned(left) && Self.isSigned(right)
    }
  }

  /// Whether the operation itself is signed: what division, remainder, right shift and ordering
  /// do with a set top bit. bpftrace's code generator always divides, takes remainders and shifts
  /// right unsigned (`-7 / 2` is 9223372036854775804) and orders signed only when both operands are.
  public func operationIsSigned(_ op: BinaryOperator, _ left: ScryType, _ right: ScryType) -> Bool {
    switch self {
    case .systemTap: return Self.isSigned(left) || Self.isSigned(right)
    case .bpftrace:
      switch op {
      case .divide, .modulo, .shiftRight: return false
      default: return resultIsSigned(op, left, right)
      }
    }
  }

  /// Whether `target op= value` operates signed. bpftrace reads it as `target = target op value`;
  /// Scry's SystemTap programs follow the target's sign.
  public func updateIsSigned(_ op: BinaryOperator, _ target: ScryType, _ value: ScryType) -> Bool {
    self == .bpftrace ? operationIsSigned(op, target, value) : Self.isSigned(target)
  }

  /// Whether the type counts as signed in arithmetic: pointers, booleans and counts are unsigned;
  /// a sum, average or extreme is as signed as what it gathers.
  public static func isSigned(_ type: ScryType) -> Bool {
    if case .integer(let t) = type { return t.isSigned }
    if case .aggregate(let kind) = type {
      switch kind {
      case .sum(let s), .avg(let s), .min(let s), .max(let s), .stats(let s): return s
      case .count, .hist, .lhist: return false
      }
    }
    return false
  }
}

extension Program {
  public var integerSigns: IntegerSigns { IntegerSigns(histogramStyle) }
}
