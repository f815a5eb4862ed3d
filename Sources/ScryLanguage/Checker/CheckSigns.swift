/// bpftrace 0.17's warnings about integer signs, worded as it words them: its division, remainder
/// and ordering differ from C's (see `IntegerSigns`), and it says so where a script may be
/// surprised. SystemTap's longs are all signed and have none.
extension Checker {
  mutating func warnAboutSigns(_ op: BinaryOperator, _ left: Expr, _ right: Expr, _ a: ScryType, _ b: ScryType, at span: SourceSpan) {
    guard result.program.integerSigns == .bpftrace, case .integer(let x) = a, case .integer(let y) = b else { return }
    // A non-negative literal has the same value whichever sign it is taken with: no warning.
    let leftSigned = x.isSigned && !isNonNegativeLiteral(left)
    let rightSigned = y.isSigned && !isNonNegativeLiteral(right)
    let mixed = (leftSigned && !y.isSigned) || (rightSigned && !x.isSigned)
    let types = "'\(bpftraceName(x))' and '\(bpftraceName(y))'"
    switch op {
    case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
      if mixed { warnOnce(span, "comparison of integers of different signs: \(types) can lead to undefined behavior") }
    case .add, .subtract, .multiply, .divide, .modulo:
      if mixed { warnOnce(span, "arithmetic on integers of different signs: \(types) can lead to undefined behavior") }
      if (op == .divide || op == .modulo) && (leftSigned || rightSigned) {
        warnOnce(span, "signed operands for '\(op.rawValue)' can lead to undefined behavior (cast to unsigned to silence warning)")
      }
    default:
      break
    }
  }

  private func isNonNegativeLiteral(_ e: Expr) -> Bool {
    if case .integer(let v) = e.kind { return v <= UInt64(Int64.max) }
    return false
  }

  private func bpftraceName(_ t: IntegerType) -> String { (t.isSigned ? "int" : "unsigned int") + "\(t.bits)" }

  /// Once per place: a block may be checked more than once.
  private mutating func warnOnce(_ span: SourceSpan, _ message: String) {
    if result.diagnostics.contains(where: { $0.span == span && $0.message == message }) { return }
    warning(span, message)
  }
}
