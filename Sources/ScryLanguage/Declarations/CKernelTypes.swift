/// Kernel types in the script's declarations: a struct, union or typedef a declaration uses without
/// defining it is the kernel's, as bpftrace 0.17 takes it from BTF (its clang parse fills in the
/// types clang reports as unknown or incomplete). Only names nobody declared are asked for, so a
/// script that defines its own `struct path` keeps it; after such a redefinition of a kernel type,
/// none is filled in (see `redefinedKernelRecord`).
extension CDeclarationParser {
  /// The kernel's struct or union `cName` (`struct load_weight`), laid out by BTF.
  func kernelRecord(_ cName: String) -> CType? {
    guard redefinedKernelRecord == nil, let record = kernel?.kernelRecord(named: cName) else { return nil }
    let type = ScryType.record(record)
    return CType(type: type, size: record.size, align: Self.kernelAlignment(of: type, size: record.size), spelling: cName)
  }

  /// The kernel's typedef `name` (`sector_t`, `atomic_t`), as a member of that type would be.
  func kernelTypedef(_ name: String) -> CType? {
    guard redefinedKernelRecord == nil, let type = kernel?.kernelTypedef(named: name) else { return nil }
    switch type {
    case .none, .structReference: return nil  // `void`, a function type: nothing to lay out
    default:
      let size = type.memorySize
      return CType(type: type, size: size, align: Self.kernelAlignment(of: type, size: size), spelling: name)
    }
  }

  /// A BTF type's alignment, which BTF does not record: its largest scalar's (x86-64), lowered
  /// until it divides the size, as a packed kernel struct's does. Floats, kept as bytes, count as 1;
  /// no kernel struct holds one where that would move a later member.
  static func kernelAlignment(of type: ScryType, size: Int) -> Int {
    var align = naturalAlignment(of: type)
    while align > 1 && size % align != 0 { align /= 2 }
    return align
  }

  private static func naturalAlignment(of type: ScryType) -> Int {
    switch type {
    case .integer(let integer): return max(1, min(8, integer.bits / 8))
    case .pointer: return 8
    case .array(let element, _): return naturalAlignment(of: element)
    case .record(let record): return record.fields.map { naturalAlignment(of: $0.type) }.max() ?? 1
    default: return 1
    }
  }
}
