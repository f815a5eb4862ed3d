/// `sizeof` of a tuple or a variable, as bpftrace 0.17 computes it.
///
/// Values and map slots widen integers to 64 bits, but bpftrace sizes a tuple or a variable by the
/// C types its parts were written with: `sizeof(((int8) 1, (int16) 1, (int32) 1))` is 8, and
/// `$x = (int8) 1; sizeof($x)` is 1. A literal or a builtin is a 64-bit integer there.
extension Checker {
  /// Records the size bpftrace gives `sizeof(e)` when it differs from the widened type's.
  mutating func recordSizeofLayout(_ call: Expr, of e: Expr) {
    switch e.kind {
    case .tuple, .variable, .tupleIndex:
      let layout = sizeofLayout(e)
      switch layout {
      case .integer, .tuple: result.constants[call.id] = UInt64(layout.cLayoutSize)
      default: break
      }
    default: break
    }
  }

  /// The type of `e` with the integer widths bpftrace sizes it by.
  func sizeofLayout(_ e: Expr) -> ScryType {
    switch e.kind {
    case .tuple(let elements):
      return .tuple(elements.map(sizeofLayout))
    case .variable:
      guard case .variable(let slot)? = result.resolutions[e.id] else { break }
      return variableLayouts[slot] ?? result.variableTypes[slot]
    case .tupleIndex(let base, let index):
      if case .tuple(let elements) = sizeofLayout(base), elements.indices.contains(index) {
        return elements[index]
      }
    case .cast, .field, .unary(.deref, _), .index:
      return result.types[Int(e.id.raw)]
    default: break
    }
    let type = result.types[Int(e.id.raw)]
    if case .integer(let t) = type {
      return .integer(IntegerType(bits: 64, isSigned: t.isSigned, enumeration: t.enumeration))
    }
    return type
  }
}
