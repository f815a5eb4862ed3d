import ScryKernel
import ScryLanguage

/// The kernel's C types for the language: BTF types converted to `RecordType`/`ScryType` as
/// `CTypes` lays down (anonymous members flattened, `char[N]` as strings, pointers to named
/// records as `.structReference`, so converting `task_struct` does not pull in the kernel).
///
/// Lazy: BTF is read on the first question, and each record converted once, on demand. Names are
/// looked up in vmlinux, then in the modules' BTF (`KernelBTF`); a record is converted with the
/// blob that defines it, which alone resolves a module's ids (they continue vmlinux's and differ
/// from module to module).
/// Not thread-safe (the caches): used by one catalog from one thread.
public final class KernelTypes {
  private let source: () -> KernelBTF?
  private let isPresent: () -> Bool
  private var loaded: KernelBTF??
  /// Converted records by defining blob and BTF id, named and anonymous, and the answers by name.
  private var recordsByID: [BlobID: RecordType] = [:]
  private var recordsByName: [String: RecordType?] = [:]
  private var typedefs: [String: ScryType?] = [:]
  private var constants: [String: Int64?] = [:]
  /// Records being converted, to cut a loop (a corrupt blob, or an anonymous struct reached
  /// again through a typedef pointer) instead of recursing forever.
  private var converting: Set<BlobID> = []

  /// A type id with the blob that defines it: ids repeat across modules.
  struct BlobID: Hashable {
    let blob: ObjectIdentifier
    let id: UInt32
  }

  /// `btf` is asked once, on the first lookup; by default the running kernel's.
  public init(
    btf: @escaping () -> KernelBTF? = { try? KernelBTF.running.get() },
    isPresent: @escaping () -> Bool = { BTF.vmlinuxIsPresent }
  ) {
    self.source = btf
    self.isPresent = isPresent
  }

  private var btf: KernelBTF? {
    if let loaded { return loaded }
    let btf = source()
    loaded = .some(btf)
    return btf
  }

  /// Whether the kernel has BTF: once read, whether it could be; before, whether it is there
  /// (reading it costs a script that only guards `#include`s with `BPFTRACE_HAVE_BTF` too much).
  public var isAvailable: Bool {
    if let loaded { return loaded != nil }
    return isPresent()
  }

  /// A struct or union by C name (`struct task_struct`, `union bpf_attr`); nil when the kernel
  /// does not define it (a forward declaration is not a definition).
  public func record(named cName: String) -> RecordType? {
    if let cached = recordsByName[cName] { return cached }
    var record: RecordType? = nil
    if let btf, let (tag, isUnion) = Self.tag(of: cName), let found = btf.structID(named: tag, isUnion: isUnion) {
      record = self.record(id: found.id, in: found.btf)
    }
    recordsByName[cName] = .some(record)
    return record
  }

  /// A typedef's type, converted like a member of that type would be (`u64` → uint64).
  public func typedef(named name: String) -> ScryType? {
    if let cached = typedefs[name] { return cached }
    let type = btf?.typedefID(named: name).map { convert($0.id, in: $0.btf) }
    typedefs[name] = .some(type)
    return type
  }

  /// An enumerator's value (`BPF_MAP_TYPE_HASH` → 1).
  public func enumConstant(named name: String) -> Int64? {
    if let cached = constants[name] { return cached }
    let value = btf?.enumValue(named: name)
    constants[name] = .some(value)
    return value
  }

  /// "struct x" → ("x", false), "union y" → ("y", true).
  private static func tag(of cName: String) -> (String, Bool)? {
    if cName.hasPrefix("struct ") { return (String(cName.dropFirst(7)), false) }
    if cName.hasPrefix("union ") { return (String(cName.dropFirst(6)), true) }
    return nil
  }

  // MARK: - Conversion

  /// The record of struct or union `id` (already resolved), converted once.
  func record(id: UInt32, in btf: BTF) -> RecordType? {
    // Converted with its defining blob: a vmlinux struct reached from a module is vmlinux's, and
    // cached once whichever module led to it.
    guard let owner = btf.blob(defining: id) else { return nil }
    let key = BlobID(blob: ObjectIdentifier(owner), id: id)
    if let cached = recordsByID[key] { return cached }
    guard case .record(let source) = owner.type(id: id), !converting.contains(key) else { return nil }
    converting.insert(key)
    defer { converting.remove(key) }
    var fields: [RecordField] = []
    appendFields(of: source, at: 0, in: owner, to: &fields)
    let record = RecordType(name: source.name, fields: fields, size: source.size, isUnion: source.isUnion)
    recordsByID[key] = record
    return record
  }

  /// The members of `source` as fields, `bitBase` bits into the outer record; an anonymous
  /// struct or union member gives its own members, as C lets them be named.
  private func appendFields(of source: BTFRecord, at bitBase: Int, in btf: BTF, to fields: inout [RecordField]) {
    for member in source.members {
      let bitOffset = bitBase + member.bitOffset
      if member.name.isEmpty {
        let resolved = btf.resolved(member.type)
        guard let owner = btf.blob(defining: resolved) else { continue }
        let key = BlobID(blob: ObjectIdentifier(owner), id: resolved)
        // An unnamed bitfield is padding; only an anonymous record has members to give.
        guard case .record(let inner) = owner.type(id: resolved), !converting.contains(key) else { continue }
        converting.insert(key)
        appendFields(of: inner, at: bitOffset, in: owner, to: &fields)
        converting.remove(key)
        continue
      }
      let cType = KernelTypeSpelling(btf: btf).spell(member.type)
      if member.bitfieldSize > 0 {
        fields.append(bitfield(member, at: bitOffset, cType: cType, in: btf))
      } else {
        fields.append(
          RecordField(
            name: member.name, cType: cType, type: convert(member.type, in: btf), offset: bitOffset / 8,
            size: btf.size(of: member.type) ?? 0))
      }
    }
  }

  /// A bitfield over the naturally aligned storage unit of its declared integer's size that
  /// holds it; a bitfield straddling such units (a packed struct) gets the smallest unit from
  /// its first byte instead.
  private func bitfield(_ member: BTFMember, at bitOffset: Int, cType: String, in btf: BTF) -> RecordField {
    var unit = btf.size(of: member.type) ?? 8
    if ![1, 2, 4, 8].contains(unit) { unit = 8 }
    var offset = bitOffset / (unit * 8) * unit
    if bitOffset - offset * 8 + member.bitfieldSize > unit * 8 {
      offset = bitOffset / 8
      unit = [1, 2, 4, 8].first { bitOffset % 8 + member.bitfieldSize <= $0 * 8 } ?? 8
    }
    return RecordField(
      name: member.name, cType: cType,
      type: .integer(IntegerType(bits: unit * 8, isSigned: isSigned(member.type, in: btf))), offset: offset, size: unit, bitOffset: bitOffset - offset * 8, bitWidth: member.bitfieldSize)
  }

  private func isSigned(_ id: UInt32, in btf: BTF) -> Bool {
    switch btf.type(id: btf.resolved(id)) {
    case .integer(let integer): return integer.isSigned || integer.name == "char"
    case .enumeration(let enumeration): return enumeration.isSigned
    default: return false
    }
  }

  /// The language's type for a value of BTF type `id`.
  func convert(_ id: UInt32, in btf: BTF) -> ScryType {
    let resolved = btf.resolved(id)
    switch btf.type(id: resolved) {
    case .integer(let integer):
      if integer.isBool { return .integer(IntegerType(bits: 8, isSigned: false)) }
      if integer.name == "char" { return .integer(IntegerType(bits: 8, isSigned: true)) }
      return Self.integer(size: integer.size, isSigned: integer.isSigned)
    case .enumeration(let enumeration):
      return Self.integer(size: enumeration.size, isSigned: enumeration.isSigned)
    case .float(_, let size):
      return .array(.integer(IntegerType(bits: 8, isSigned: false)), count: size)
    case .pointer(let pointee):
      return .pointer(convertPointee(pointee, in: btf))
    case .array(let array):
      if array.count > 0, case .integer(let element) = btf.type(id: btf.resolved(array.element)),
        element.name == "char"
      {
        return .string(capacity: array.count)
      }
      return .array(convert(array.element, in: btf), count: array.count)
    case .record:
      return record(id: resolved, in: btf).map { .record($0) } ?? .none
    default:
      // void, functions, a forward declaration held by value (not valid C), an unknown id.
      return .none
    }
  }

  /// What a pointer points at: named records by reference, so types pointing at each other
  /// stay finite; void and functions as `.none`.
  private func convertPointee(_ id: UInt32, in btf: BTF) -> ScryType {
    let resolved = btf.resolved(id)
    switch btf.type(id: resolved) {
    case .record(let record) where !record.name.isEmpty:
      return .structReference((record.isUnion ? "union " : "struct ") + record.name)
    case .forward(let name, let isUnion):
      return .structReference((isUnion ? "union " : "struct ") + name)
    case .functionPrototype, .void, nil:
      return .none
    default:
      return convert(resolved, in: btf)
    }
  }

  /// An integer of `size` bytes; wider ones (`__int128`) as their bytes.
  private static func integer(size: Int, isSigned: Bool) -> ScryType {
    guard [1, 2, 4, 8].contains(size) else {
      return .array(.integer(IntegerType(bits: 8, isSigned: false)), count: size)
    }
    return .integer(IntegerType(bits: size * 8, isSigned: isSigned))
  }
}
