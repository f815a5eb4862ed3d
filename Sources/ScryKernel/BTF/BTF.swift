import Glibc
import Synchronization

/// The kernel's BTF type information (`/sys/kernel/btf/vmlinux`), read lazily.
///
/// Opening reads the blob once and walks the type section once to find where each type starts
/// (a type's size depends on its kind and member count, so ids cannot be located otherwise);
/// nothing is decoded then. `type(id:)` decodes one type on demand; the name indexes behind
/// `structID(named:isUnion:)` and friends are built on first use, from name bytes in place.
///
/// A malformed or truncated blob throws a `KernelError` when opened; every later read is
/// bounds-checked, so a bad reference decodes as nil or an empty name, never a trap.
///
/// Split BTF (a module's, `/sys/kernel/btf/<module>`) has a base: its ids continue after the
/// base's, and its string offsets after the base's strings; lookups search the base first.
/// Thread-safe: the lazy indexes are built under a lock. Format: Documentation/bpf/btf.rst.
public final class BTF: @unchecked Sendable {
  // @unchecked: the only mutable state is `indexes`, behind its Mutex.

  /// Where the blob was read from ("" when built in memory).
  public let path: String
  /// The BTF whose ids and strings this one continues (vmlinux for a module), or nil.
  public let base: BTF?
  private let storage: BTFStorage
  var bytes: ELFBytes { storage.bytes }
  /// The type and string sections, as absolute byte ranges of the blob.
  let typeSection: Range<UInt64>
  let stringSection: Range<UInt64>
  /// The id of this blob's first type: 1, or one past the base's last.
  let firstID: UInt32
  /// String offsets below this are the base's.
  let firstStringOffset: UInt32
  /// Where each of this blob's types starts in the blob, by `id - firstID`.
  let typeOffsets: [UInt32]
  private let indexes = Mutex(BTFIndexes())

  static let vmlinuxPath = "/sys/kernel/btf/vmlinux"

  /// Whether the running kernel publishes its BTF, without reading it.
  public static var vmlinuxIsPresent: Bool { access(vmlinuxPath, R_OK) == 0 }

  /// The running kernel's BTF, read on first use and shared; the error when it cannot be read.
  public static let vmlinux: Result<BTF, KernelError> = {
    do throws(KernelError) {
      return .success(try BTF(path: vmlinuxPath))
    } catch {
      return .failure(error)
    }
  }()

  /// A loaded module's BTF (`/sys/kernel/btf/<module>`), split over vmlinux's: its ids follow
  /// vmlinux's and its types may refer to them. Read anew on each call; `KernelBTF` is the
  /// cached search over vmlinux and every module that type lookups use.
  public static func module(named module: String) throws(KernelError) -> BTF {
    guard !module.isEmpty, !module.contains("/"), module != "vmlinux", module != ".", module != ".." else {
      throw KernelError(operation: "read BTF", subject: module, errno: 0, explanation: "not a module name")
    }
    return try BTF(path: "/sys/kernel/btf/" + module, base: vmlinux.get())
  }

  /// Reads the BTF blob at `path`; `base` for split BTF.
  public convenience init(path: String, base: BTF? = nil) throws(KernelError) {
    try self.init(storage: BTFStorage(path: path), path: path, base: base)
  }

  /// BTF held in memory, e.g. a copy of an object file's `.BTF` section.
  public convenience init(bytes: [UInt8], base: BTF? = nil) throws(KernelError) {
    try self.init(storage: BTFStorage(copying: bytes), path: "", base: base)
  }

  private init(storage: BTFStorage, path: String, base: BTF?) throws(KernelError) {
    func failure(_ explanation: String) -> KernelError {
      KernelError(operation: "read BTF", subject: path.isEmpty ? "<memory>" : path, errno: 0, explanation: explanation)
    }
    let bytes = storage.bytes
    guard bytes.count < Int(UInt32.max) else { throw failure("larger than 4 GiB") }
    guard let magic = bytes.load(0, as: UInt16.self) else { throw failure("not BTF (shorter than its header)") }
    guard magic == BTFConstant.magic else {
      throw failure(magic == BTFConstant.magic.byteSwapped ? "big-endian BTF is not supported" : "not BTF (bad magic)")
    }
    guard bytes.field(2, as: UInt8.self) == BTFConstant.version else {
      throw failure("unsupported BTF version \(bytes.field(2, as: UInt8.self))")
    }
    let headerSize = UInt64(bytes.field(4, as: UInt32.self))
    guard headerSize >= BTFConstant.minimumHeaderSize, bytes.contains(offset: 0, length: headerSize) else {
      throw failure("truncated header")
    }
    func section(_ at: UInt64, _ name: String) throws(KernelError) -> Range<UInt64> {
      let start = headerSize + UInt64(bytes.field(at, as: UInt32.self))
      let length = UInt64(bytes.field(at + 4, as: UInt32.self))
      guard bytes.contains(offset: start, length: length) else {
        throw failure("truncated: the \(name) section ends past the end")
      }
      return start..<(start + length)
    }
    self.typeSection = try section(8, "type")
    self.stringSection = try section(16, "string")
    guard base != nil || (!stringSection.isEmpty && bytes.field(stringSection.lowerBound, as: UInt8.self) == 0) else {
      throw failure("the string section does not start with the empty string")
    }
    self.path = path
    self.base = base
    self.storage = storage
    self.firstID = base.map { $0.firstID + UInt32($0.typeOffsets.count) } ?? 1
    self.firstStringOffset = base.map { $0.firstStringOffset + UInt32($0.stringSection.count) } ?? 0
    self.typeOffsets = try Self.indexTypes(bytes, section: typeSection, firstID: firstID, failure: failure)
  }

  /// One pass over the type section: where each type starts. Only headers are read.
  private static func indexTypes(
    _ bytes: ELFBytes, section: Range<UInt64>, firstID: UInt32, failure: (String) -> KernelError
  ) throws(KernelError) -> [UInt32] {
    var offsets: [UInt32] = []
    // vmlinux types average about 28 bytes: reserve a little more than that needs, so the
    // array is not copied as it grows.
    offsets.reserveCapacity(Int(section.count / 24))
    var at = section.lowerBound
    while at < section.upperBound {
      let id = firstID + UInt32(offsets.count)
      guard at + BTFConstant.typeHeaderSize <= section.upperBound else { throw failure("truncated type \(id)") }
      let info = bytes.field(at + 4, as: UInt32.self)
      let kind = (info >> 24) & 0x1f
      guard let trailing = BTFConstant.trailingSize(kind: kind, vlen: UInt64(info & 0xffff)) else {
        throw failure("type \(id) has unknown kind \(kind) (a newer BTF format?)")
      }
      let next = at + BTFConstant.typeHeaderSize + trailing
      guard next <= section.upperBound else { throw failure("truncated type \(id)") }
      offsets.append(UInt32(at))
      at = next
    }
    return offsets
  }

  /// One past the largest id this blob (with its base) defines.
  public var typeCount: Int { Int(firstID) + typeOffsets.count }

  // MARK: - Reading one type

  /// Where type `id` starts in its blob, and that blob; nil for void or an unknown id.
  func location(of id: UInt32) -> (btf: BTF, offset: UInt64)? {
    if id < firstID { return id == 0 ? nil : base?.location(of: id) }
    let local = Int(id - firstID)
    guard local < typeOffsets.count else { return nil }
    return (self, UInt64(typeOffsets[local]))
  }

  /// The blob that defines type `id`: this one or a base (vmlinux, for a module's reference to a
  /// kernel type); nil for void or an unknown id. Ids are unique only within one blob and its
  /// bases: two modules reuse the same ids, so a cache of types by id keys on this too.
  public func blob(defining id: UInt32) -> BTF? {
    location(of: id)?.btf
  }

  /// The kind of type `id` without decoding it; nil for an unknown id, `.unknown` for void.
  func kind(of id: UInt32) -> BTFConstant.Kind? {
    if id == 0 { return .unknown }
    guard let (btf, at) = location(of: id) else { return nil }
    return BTFConstant.Kind(rawValue: (btf.bytes.field(at + 4, as: UInt32.self) >> 24) & 0x1f)
  }

  /// Type `id` decoded; `.void` for 0, nil for an id this BTF does not define.
  public func type(id: UInt32) -> BTFType? {
    if id == 0 { return .void }
    guard let (btf, at) = location(of: id) else { return nil }
    return btf.decode(at: at)
  }

  /// The id past typedefs, qualifiers and type tags: what the value really is (0 for void).
  /// A chain too long to be real (a corrupt blob that loops) ends at void.
  public func resolved(_ id: UInt32) -> UInt32 {
    var current = id
    for _ in 0..<BTFConstant.maximumChain {
      switch kind(of: current) {
      case .typedef, .const, .volatile, .restrict, .typeTag:
        guard let (btf, at) = location(of: current) else { return 0 }
        current = btf.bytes.field(at + 8, as: UInt32.self)
      default:
        return current
      }
    }
    return 0
  }

  /// The size in bytes of a value of type `id` (pointers 8), through typedefs and arrays; nil
  /// for types without one (void, functions).
  public func size(of id: UInt32) -> Int? {
    var current = resolved(id)
    var multiplier = 1
    for _ in 0..<BTFConstant.maximumChain {
      guard let kind = kind(of: current), let (btf, at) = location(of: current) else { return nil }
      switch kind {
      case .integer, .structure, .union, .enumeration, .enum64, .float, .dataSection:
        return multiplier * Int(btf.bytes.field(at + 8, as: UInt32.self))
      case .pointer: return multiplier * 8
      case .array:
        let count = Int(btf.bytes.field(at + 20, as: UInt32.self))
        let (product, overflow) = multiplier.multipliedReportingOverflow(by: count)
        guard !overflow else { return nil }
        multiplier = product
        current = resolved(btf.bytes.field(at + 12, as: UInt32.self))
      default: return nil
      }
    }
    return nil
  }

  // MARK: - Lookups by name

  /// The struct (or union) named `name`, defined (a forward declaration does not count).
  public func structID(named name: String, isUnion: Bool = false) -> UInt32? {
    firstType(named: name) { $0 == (isUnion ? .union : .structure) }
  }

  /// Where member `member` of struct `structure` sits, in bytes, when it is `size` bytes wide and
  /// starts at a multiple of `alignment` bytes (nil otherwise, or when BTF does not say).
  public func byteOffset(ofMember member: String, inStruct structure: String, size: Int, alignment: Int = 1) -> Int? {
    guard let id = structID(named: structure), case .record(let record)? = type(id: id),
      let found = record.members.first(where: { $0.name == member }), self.size(of: found.type) == size,
      found.bitfieldSize == 0, found.bitOffset % (8 * alignment) == 0
    else { return nil }
    return found.bitOffset / 8
  }

  /// The typedef named `name` (`u64`, `pid_t`).
  public func typedefID(named name: String) -> UInt32? {
    firstType(named: name) { $0 == .typedef }
  }

  /// The enum named `name` (either width).
  public func enumID(named name: String) -> UInt32? {
    firstType(named: name) { $0 == .enumeration || $0 == .enum64 }
  }

  /// Every type named `name` whose kind is indexed by name (records, enums, forward
  /// declarations, typedefs, integers, floats), this blob's base's first.
  public func typeIDs(named name: String) -> [UInt32] {
    var found = base?.typeIDs(named: name) ?? []
    let local = indexes.withLock { indexes in
      indexes.typeNames(of: self).entries(named: name, in: self)
    }
    found += local.map { firstID + UInt32($0) }
    return found
  }

  private func firstType(named name: String, where wanted: (BTFConstant.Kind) -> Bool) -> UInt32? {
    typeIDs(named: name).first { kind(of: $0).map(wanted) ?? false }
  }

  /// The value of the enumerator `name` (`BPF_MAP_TYPE_HASH`), from any enum; nil if none has it.
  public func enumValue(named name: String) -> Int64? {
    if let value = base?.enumValue(named: name) { return value }
    let entries = indexes.withLock { indexes in
      indexes.enumeratorNames(of: self).entries(named: name, in: self)
    }
    guard let entry = entries.first else { return nil }
    return enumerator(entry)?.value
  }
}
