import ScryKernel

/// A C spelling of a BTF type for messages and listings (`struct task_struct *`, `pid_t`,
/// `char[16]`, `const char *`): typedef names are kept as the source wrote them, type tags
/// (`__rcu`, `__user`) dropped, and declarator syntax simplified (`void (*)()` for any
/// function pointer, `int[2][3]` for arrays of arrays).
struct KernelTypeSpelling {
  let btf: BTF

  func spell(_ id: UInt32) -> String {
    spell(id, depth: 0)
  }

  private func spell(_ id: UInt32, depth: Int) -> String {
    // Only a corrupt blob nests this deep; stop rather than recurse.
    guard depth < 32, let type = btf.type(id: id) else { return "?" }
    switch type {
    case .void: return "void"
    case .integer(let integer): return integer.name
    case .float(let name, _): return name
    case .typedef(let name, _): return name
    case .record(let record):
      return (record.isUnion ? "union " : "struct ") + (record.name.isEmpty ? "{...}" : record.name)
    case .forward(let name, let isUnion): return (isUnion ? "union " : "struct ") + name
    case .enumeration(let enumeration): return "enum " + (enumeration.name.isEmpty ? "{...}" : enumeration.name)
    case .qualifier(let qualifier, let inner):
      let spelled = spell(inner, depth: depth + 1)
      // A qualified pointer reads `char * const`; a qualified value `const char`.
      if case .pointer = btf.type(id: inner) { return spelled + " " + qualifier.rawValue }
      return qualifier.rawValue + " " + spelled
    case .typeTag(_, let inner): return spell(inner, depth: depth + 1)
    case .pointer(let pointee):
      if case .functionPrototype(let returnType, _) = btf.type(id: btf.resolved(pointee)) {
        return spell(returnType, depth: depth + 1) + " (*)()"
      }
      let spelled = spell(pointee, depth: depth + 1)
      return spelled.hasSuffix("*") ? spelled + "*" : spelled + " *"
    case .array(let array):
      var dimensions = "[\(array.count)]"
      var element = array.element
      while case .array(let inner) = btf.type(id: element), dimensions.count < 64 {
        dimensions += "[\(inner.count)]"
        element = inner.element
      }
      return spell(element, depth: depth + 1) + dimensions
    case .functionPrototype(let returnType, _): return spell(returnType, depth: depth + 1) + " ()"
    case .function(let name, _, _), .variable(let name, _, _), .dataSection(let name, _, _), .declTag(let name, _, _):
      return name
    }
  }
}
