import ScryLanguage

/// Translates the part of a predicate that the tracefs filter language can express
/// (numeric comparisons and `&`, string `==`/`!=`, `!`, `&&`, `||` over the tracepoint's
/// own fields and `common_pid`) into a filter string for PERF_EVENT_IOC_SET_FILTER.
public enum FilterPushdown {
  public struct Filter: Sendable, Hashable {
    public var text: String
    /// The filter says everything the predicate says, so user space need not check again.
    public var isWhole: Bool
  }

  /// The filter for `predicate`, or nil when no conjunct can be expressed.
  public static func kernelFilter(for predicate: Expr, in program: CheckedProgram) -> Filter? {
    let parts = conjuncts(of: predicate)
    let translated = parts.compactMap { translate($0, in: program) }
    guard !translated.isEmpty else { return nil }
    let text = translated.count == 1 ? translated[0] : translated.map { "(\($0))" }.joined(separator: " && ")
    return Filter(text: text, isWhole: translated.count == parts.count)
  }

  /// The top-level `&&` operands of a predicate.
  public static func conjuncts(of predicate: Expr) -> [Expr] {
    var result: [Expr] = []
    var pending = [predicate]
    while let e = pending.popLast() {
      if case .binary(.logicalAnd, let a, let b) = e.kind {
        pending.append(b)
        pending.append(a)
      } else {
        result.append(e)
      }
    }
    return result
  }

  static func translate(_ e: Expr, in program: CheckedProgram, depth: Int = 0) -> String? {
    guard depth < 32 else { return nil }
    switch e.kind {
    case .binary(let op, let a, let b):
      switch op {
      case .logicalAnd, .logicalOr:
        guard let l = translate(a, in: program, depth: depth + 1), let r = translate(b, in: program, depth: depth + 1)
        else { return nil }
        return "(\(l)) \(op.rawValue) (\(r))"
      case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
        return comparison(op, a, b, in: program)
      case .bitAnd:
        // `args.flags & 4` as a truth value.
        guard let field = fieldName(a, in: program, numeric: true), let mask = constant(b) else { return nil }
        return "\(field) & \(mask)"
      default:
        return nil
      }
    case .unary(.not, let inner):
      guard let t = translate(inner, in: program, depth: depth + 1) else { return nil }
      return "!(\(t))"
    default:
      return nil
    }
  }

  static func comparison(_ op: BinaryOperator, _ a: Expr, _ b: Expr, in program: CheckedProgram) -> String? {
    // Constant on the left: mirror the operator.
    if constant(a) != nil || stringConstant(a) != nil, constant(b) == nil {
      let mirrored: BinaryOperator
      switch op {
      case .less: mirrored = .greater
      case .lessEqual: mirrored = .greaterEqual
      case .greater: mirrored = .less
      case .greaterEqual: mirrored = .lessEqual
      default: mirrored = op
      }
      return comparison(mirrored, b, a, in: program)
    }
    if let text = stringConstant(b) {
      guard op == .equal || op == .notEqual, let field = fieldName(a, in: program, numeric: false) else { return nil }
      // The filter parser has no escapes: a quote or backslash inside cannot be pushed.
      guard !text.contains("\""), !text.contains("\\"), !text.contains("*"), !text.contains("?"),
        !text.contains("[")
      else { return nil }
      return "\(field) \(op.rawValue) \"\(text)\""
    }
    guard let value = constant(b), let field = fieldName(a, in: program, numeric: true) else { return nil }
    // A negative constant against an unsigned field compares differently in the kernel.
    if value < 0, case .integer(let t) = program.type(of: a), !t.isSigned { return nil }
    return "\(field) \(op.rawValue) \(value)"
  }

  /// The tracefs name of a field reference: `args.f` or `tid` (as `common_pid`).
  static func fieldName(_ e: Expr, in program: CheckedProgram, numeric: Bool) -> String? {
    if case .builtin(.tid)? = program.resolutions[e.id] { return numeric ? "common_pid" : nil }
    guard case .field(let base, let name, _) = e.kind, case .builtin(.args)? = program.resolutions[base.id],
      case .record(let record) = program.type(of: base), let field = record.field(named: name)
    else { return nil }
    switch field.type {
    case .integer, .boolean: return numeric ? name : nil
    case .string: return numeric ? nil : name
    default: return nil
    }
  }

  static func constant(_ e: Expr) -> Int64? {
    switch e.kind {
    case .integer(let v): return v <= UInt64(Int64.max) ? Int64(v) : nil
    case .unary(.negate, let inner):
      if case .integer(let v) = inner.kind, v <= UInt64(Int64.max) { return -Int64(v) }
      return nil
    default: return nil
    }
  }

  static func stringConstant(_ e: Expr) -> String? {
    guard case .string(let bytes) = e.kind, bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }
}
