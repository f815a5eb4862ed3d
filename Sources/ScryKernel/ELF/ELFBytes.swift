/// Bounds-checked little-endian reads over the mapped bytes of one ELF file.
///
/// Every read checks its range against `count` (with overflow checks), so a malformed or
/// truncated file can give wrong numbers but never a trap or a read outside the mapping.
struct ELFBytes {
  /// The first byte of the mapping; nil only for an empty file.
  let base: UnsafeRawPointer?
  /// The file's size in bytes.
  let count: Int

  /// Whether `[offset, offset + length)` lies inside the file.
  func contains(offset: UInt64, length: UInt64) -> Bool {
    let (end, overflow) = offset.addingReportingOverflow(length)
    return !overflow && end <= UInt64(count)
  }

  /// Whether a table of `entries` entries of `entrySize` bytes at `offset` lies inside the file.
  func contains(offset: UInt64, entries: UInt64, entrySize: UInt64) -> Bool {
    let (length, overflow) = entries.multipliedReportingOverflow(by: entrySize)
    return !overflow && contains(offset: offset, length: length)
  }

  /// The integer at `offset`, or nil when it would end past the file.
  func load<T: FixedWidthInteger>(_ offset: UInt64, as type: T.Type = T.self) -> T? {
    guard let base, contains(offset: offset, length: UInt64(MemoryLayout<T>.size)) else { return nil }
    return T(littleEndian: base.loadUnaligned(fromByteOffset: Int(offset), as: T.self))
  }

  /// The integer at `offset`, or 0 when out of range; for fields inside a table whose whole
  /// range was already checked, where out of range cannot happen.
  func field<T: FixedWidthInteger>(_ offset: UInt64, as type: T.Type = T.self) -> T {
    load(offset, as: T.self) ?? 0
  }

  /// The NUL-terminated string starting at `offset` and ending before `limit` (a string table's
  /// end); nil when `offset` is outside the table or no NUL comes before the limit.
  func cString(at offset: UInt64, limit: UInt64) -> String? {
    guard let base, offset < limit, limit <= UInt64(count) else { return nil }
    let start = Int(offset)
    let region = UnsafeRawBufferPointer(start: base + start, count: Int(limit) - start)
    guard let end = region.firstIndex(of: 0) else { return nil }
    return String(decoding: UnsafeRawBufferPointer(rebasing: region[0..<end]), as: UTF8.self)
  }
}

/// The numeric constants of the ELF64 format that the reader uses (see `elf(5)`).
enum ELFConstant {
  static let headerSize: UInt64 = 64
  static let programHeaderSize: UInt64 = 56
  static let sectionHeaderSize: UInt64 = 64
  static let symbolSize: UInt64 = 24

  static let classELF64: UInt8 = 2
  static let dataLittleEndian: UInt8 = 1

  static let typeExecutable: UInt16 = 2  // ET_EXEC
  static let typeShared: UInt16 = 3  // ET_DYN

  static let segmentLoad: UInt32 = 1  // PT_LOAD
  /// e_phnum value meaning "the real count is in section 0's sh_info".
  static let programHeaderExtended: UInt16 = 0xffff  // PN_XNUM

  static let sectionSymbolTable: UInt32 = 2  // SHT_SYMTAB
  static let sectionStrings: UInt32 = 3  // SHT_STRTAB
  static let sectionNote: UInt32 = 7  // SHT_NOTE
  static let sectionNoBits: UInt32 = 8  // SHT_NOBITS
  static let sectionDynamicSymbols: UInt32 = 11  // SHT_DYNSYM
  static let sectionVersionSymbols: UInt32 = 0x6fff_ffff  // SHT_GNU_versym
  /// e_shstrndx value meaning "the real index is in section 0's sh_link".
  static let sectionIndexExtended: UInt16 = 0xffff  // SHN_XINDEX

  static let noteGNUBuildID: UInt32 = 3  // NT_GNU_BUILD_ID

  static let symbolUndefined: UInt16 = 0  // SHN_UNDEF
  static let symbolObject: UInt8 = 1  // STT_OBJECT
  static let symbolFunction: UInt8 = 2  // STT_FUNC
  static let symbolIndirectFunction: UInt8 = 10  // STT_GNU_IFUNC
  static let bindingLocal: UInt8 = 0  // STB_LOCAL
  /// The versym bit that marks a non-default ("name@VERSION", not "name@@VERSION") version.
  static let versionHidden: UInt16 = 0x8000
}
