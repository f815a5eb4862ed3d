/// The C types and constants a program can name, the script's own first and then the kernel's.
///
/// Conventions every source of types follows (the script's declarations, BTF):
/// - a struct or union is a `RecordType` keyed by its C name (`struct Foo`, `union bar`), fields
///   at their byte offsets as the x86-64 System V ABI lays them out; the members of an anonymous
///   struct or union member are listed as fields of the record that holds it (C reaches them so);
/// - integer fields are `.integer` (enums as their underlying integer, `_Bool` as uint8), `char x[N]`
///   is `.string(capacity: N)` (bpftrace prints it as text), other arrays `.array`, embedded structs
///   `.record`, bitfields carry `bitOffset`/`bitWidth` over the storage unit at `offset`;
/// - a pointer to a named struct or union is `.pointer(.structReference("struct X"))`, to an anonymous
///   one `.pointer(.record(…))`, to `void` or a function `.pointer(.none)`.
public struct CTypes: Sendable {
  /// What the script declared (`struct`, `union`, `enum`, `typedef`, `#define`), and its headers.
  public var declarations: CDeclarations
  /// The kernel's types (BTF), asked for names the script does not declare.
  public let kernel: (any ProbeCatalog)?
  /// The binaries the program's uprobes are planted in: their DWARF describes the structs a
  /// script names but does not declare, before the kernel's BTF does (bpftrace's order).
  public var userBinaries: [String] = []

  public init(declarations: CDeclarations = CDeclarations(), kernel: (any ProbeCatalog)? = nil) {
    self.declarations = declarations
    self.kernel = kernel
  }

  /// A struct or union by its C name (`struct task_struct`).
  public func record(named name: String) -> RecordType? {
    if let record = declarations.records[name] { return record }
    for binary in userBinaries {
      if let record = kernel?.userRecord(binary: binary, named: name) { return record }
    }
    return kernel?.kernelRecord(named: name)
  }

  /// A typedef's type (`u64`, `pid_t`, `struct_foo_t`).
  public func typedef(named name: String) -> ScryType? {
    declarations.typedefs[name] ?? kernel?.kernelTypedef(named: name)
  }

  /// A `#define` constant or an enumerator.
  public func constant(named name: String) -> Int64? {
    declarations.constants[name] ?? kernel?.kernelEnumConstant(named: name)
  }

  /// Bytes `p + 1` moves a pointer of this type: its pointee's size in memory (1 for `void *` and
  /// for integers, which are addresses without a pointee).
  public func step(ofPointer type: ScryType) -> Int {
    guard case .pointer(let target) = type else { return 1 }
    switch target {
    case .none: return 1
    case .structReference(let name): return record(named: name)?.size ?? 1
    default: return Swift.max(1, target.memorySize)
    }
  }

  /// The record a pointee names: itself if laid out inline, else looked up by name.
  public func record(of type: ScryType) -> RecordType? {
    switch type {
    case .record(let record): return record
    case .structReference(let name): return record(named: name)
    default: return nil
    }
  }
}

/// What a script's C declarations define, by name.
public struct CDeclarations: Sendable {
  /// Structs and unions by C name (`struct Foo`).
  public var records: [String: RecordType] = [:]
  public var typedefs: [String: ScryType] = [:]
  /// `#define NAME value` and enumerators.
  public var constants: [String: Int64] = [:]
  /// The enum of each of the script's own enumerators, and its enums by C name (`enum BAZ`).
  public var enumerators: [String: EnumerationType] = [:]
  public var enumerations: [String: EnumerationType] = [:]

  public init() {}
}
