/// Typing of C records: fields of tracepoint records and of structs and unions, through pointers
/// or in place, and what a pointer points at.
extension Checker {
  mutating func typeOfField(_ e: Expr, base: Expr, baseType: ScryType, name: String, isArrow: Bool) -> ScryType {
    let record: RecordType
    switch baseType {
    case .none:
      return .none
    case .record(let value):
      record = value
    case .pointer(let target) where cTypes.record(of: target) != nil:
      // bpftrace reads `p.f` on a pointer as `p->f` too.
      guard let value = pointee(of: baseType, at: base.span), case .record(let pointed) = value else { return .none }
      record = pointed
    default:
      error(e.span, "a value of type \(baseType) has no fields",
            hint: baseType.isTuple ? "take a tuple element with '.0', '.1'…"
              : baseType.isInteger ? "cast it to a struct pointer first: '((struct name *)\(isArrow ? "p" : "p"))->\(name)'" : nil)
      return .none
    }
    if isTracepointArgs(base) { return typeOfArgument(e, record: record, name: name) }
    guard let field = record.field(named: name) else {
      error(e.span, "\(record.cName) has no field '\(name)'",
            hint: Suggestions.hint(for: name, in: record.fields.map(\.name))
              ?? "its fields: " + record.fields.prefix(12).map(\.name).joined(separator: ", ")
              + (record.fields.count > 12 ? ", …" : ""))
      return .none
    }
    result.fields[e.id] = field
    // A `char[N]` member read as a value holds all N characters when none is NUL, as bpftrace
    // prints `char s[5]` holding "hello": one more byte for the terminator than the member has.
    if case .string(let capacity) = field.type, capacity == field.size { return .string(capacity: capacity + 1) }
    return field.type
  }

  /// `args->name` at a tracepoint: the field must exist in every tracepoint the block matches.
  private mutating func typeOfArgument(_ e: Expr, record: RecordType, name: String) -> ScryType {
    guard let field = record.field(named: name) else {
      error(e.span, "tracepoint '\(record.name)' has no field '\(name)'",
            hint: Suggestions.hint(for: name, in: record.fields.map(\.name))
              ?? "its fields: " + record.fields.filter { !$0.name.hasPrefix("common_") }.map(\.name).joined(separator: ", "))
      return .none
    }
    for other in probeRecords where other.field(named: name) == nil {
      error(e.span, "field '\(name)' is missing from tracepoint '\(other.name)', which this probe also matches")
    }
    result.fields[e.id] = field
    return field.type
  }

  func isTracepointArgs(_ e: Expr) -> Bool {
    if case .builtin(.args)? = result.resolutions[e.id] { return true }
    return false
  }

  /// What reading through a pointer gives: the integer, pointer or struct it points at. A struct
  /// known by name is laid out here, so the reader gets its fields.
  mutating func pointee(of pointer: ScryType, at span: SourceSpan) -> ScryType? {
    guard case .pointer(let target) = pointer else { return nil }
    switch target {
    case .none:
      error(span, "cannot dereference a 'void *'", hint: "cast it to a typed pointer first: '*(uint64 *)p'")
      return nil
    case .structReference(let name):
      guard let record = cTypes.record(named: name) else {
        error(span, "\(name) is declared but not defined, so its fields are unknown")
        return nil
      }
      return .record(record)
    default:
      return target
    }
  }

  func isPointer(_ type: ScryType) -> Bool {
    if case .pointer = type { return true }
    return false
  }
}
