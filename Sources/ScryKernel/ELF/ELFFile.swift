import Glibc

/// An ELF64 little-endian executable or shared library, mapped read-only, for placing uprobes.
///
/// Opening validates the ELF header, the program headers and the section headers, so every
/// later lookup reads only ranges already known to lie inside the file; a malformed file
/// throws a `KernelError` and never traps. The function index is built once, on first use.
/// Not thread-safe (the lazy index): use one instance from one thread at a time.
/// The mapping is released in deinit. Format reference: `elf(5)`.
public final class ELFFile {
  /// The path the file was opened with.
  public let path: String
  let bytes: ELFBytes
  /// The mapping to release in deinit; nil for an empty file (nothing was mapped).
  private let mapping: UnsafeMutableRawPointer?
  /// e_type: ET_EXEC or ET_DYN.
  let type: UInt16
  /// The PT_LOAD segments, in file order.
  let loadSegments: [ELFSegment]
  /// Every section header, index 0 included (it is SHT_NULL).
  let sections: [ELFSection]
  /// The index of the section-name string table (e_shstrndx), nil when absent or out of range.
  let sectionNamesIndex: Int?

  /// The defined functions by name and sorted by name, built on first use. A stripped file
  /// (no .symtab) also gets the functions of its separate debug file, when one is installed.
  lazy var functionIndex: ELFFunctionIndex = ELFFunctionIndex(
    file: self, debugFunctions: isStripped ? separateDebugSymbols?.functions ?? [] : [])

  /// The symbols of the separate debug file (by build-id or .gnu_debuglink), looked up on first
  /// use through a process-wide cache; nil when none is installed.
  lazy var separateDebugSymbols: DebugSymbols? = DebugFiles.symbols(for: self)

  /// Maps `path` and checks its headers.
  public init(path: String) throws(KernelError) {
    self.path = path
    let fd = try checkedCall("read ELF", path) { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var info = stat()
    _ = try checkedCall("read ELF", path) { fstat(fd, &info) }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw KernelError(operation: "read ELF", subject: path, errno: 0, explanation: "not a regular file")
    }
    let size = Int(info.st_size)
    guard UInt64(size) >= ELFConstant.headerSize else {
      throw KernelError(
        operation: "read ELF", subject: path, errno: 0,
        explanation: size == 0 ? "not an ELF file (it is empty)" : "not an ELF file (shorter than an ELF header)")
    }
    guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
      throw KernelError(operation: "read ELF", subject: path, errno: Glibc.errno, explanation: "cannot map the file")
    }
    let bytes = ELFBytes(base: UnsafeRawPointer(mapped), count: size)
    do {
      let header = try ELFFile.readHeader(bytes, path: path)
      self.type = header.type
      self.sections = try ELFFile.readSections(bytes, header: header, path: path)
      self.sectionNamesIndex = ELFFile.sectionNamesIndex(header: header, sections: sections)
      self.loadSegments = try ELFFile.readLoadSegments(bytes, header: header, sections: sections, path: path)
    } catch {
      munmap(mapped, size)
      throw error
    }
    self.bytes = bytes
    self.mapping = mapped
  }

  deinit {
    if let mapping { munmap(mapping, bytes.count) }
  }

  /// ET_DYN (PIE executables and shared libraries) rather than ET_EXEC.
  public var isPositionIndependent: Bool { type == ELFConstant.typeShared }

  /// No .symtab: only .dynsym symbols are known (a stripped binary).
  public var isStripped: Bool {
    !sections.contains { $0.type == ELFConstant.sectionSymbolTable && $0.size > 0 }
  }

  /// The file offset of a virtual address, through the PT_LOAD program header that contains it
  /// (vaddr - p_vaddr + p_offset); nil when no segment maps it from the file.
  ///
  /// Only the part of a segment backed by the file (p_filesz, not p_memsz) counts: bytes past
  /// it are zero-filled memory with no file offset a uprobe could name.
  public func fileOffset(ofAddress address: UInt64) -> UInt64? {
    for segment in loadSegments where address >= segment.virtualAddress {
      let delta = address - segment.virtualAddress
      if delta < segment.fileSize { return segment.fileOffset + delta }
    }
    return nil
  }

  /// The virtual address of a file offset, through the PT_LOAD program header that maps it;
  /// nil when no segment maps that part of the file.
  public func address(ofFileOffset offset: UInt64) -> UInt64? {
    for segment in loadSegments where offset >= segment.fileOffset && offset - segment.fileOffset < segment.fileSize {
      return segment.virtualAddress + (offset - segment.fileOffset)
    }
    return nil
  }
}

/// One PT_LOAD program header: where a run of file bytes is mapped.
struct ELFSegment: Equatable {
  var fileOffset: UInt64
  var virtualAddress: UInt64
  var fileSize: UInt64
}

/// One section header, with the fields the reader uses. A section whose bytes lie outside the
/// file is kept (so section indices stay right) but flagged by `isInFile == false`.
struct ELFSection: Equatable {
  var nameOffset: UInt32
  var type: UInt32
  /// sh_flags (SHF_COMPRESSED: the bytes start with an Elf64_Chdr and are zlib/zstd data).
  var flags: UInt64 = 0
  /// sh_addr: where the section sits in memory (0 for a section not loaded).
  var address: UInt64
  var offset: UInt64
  var size: UInt64
  var link: UInt32
  var entrySize: UInt64
  var alignment: UInt64
  var isInFile: Bool
}

/// The ELF header fields the reader uses, with extended numbering (PN_XNUM, SHN_XINDEX) not
/// yet resolved.
struct ELFHeader {
  var type: UInt16
  var programHeaderOffset: UInt64
  var programHeaderCount: UInt16
  var sectionHeaderOffset: UInt64
  var sectionHeaderCount: UInt16
  var programHeaderEntrySize: UInt16
  var sectionHeaderEntrySize: UInt16
  var sectionNamesIndex: UInt16
}

extension ELFFile {
  /// Checks the identification bytes and returns the header fields.
  static func readHeader(_ bytes: ELFBytes, path: String) throws(KernelError) -> ELFHeader {
    func failure(_ explanation: String) -> KernelError {
      KernelError(operation: "read ELF", subject: path, errno: 0, explanation: explanation)
    }
    let magic: UInt32 = bytes.field(0)
    guard magic == 0x464c_457f else { throw failure("not an ELF file") }
    guard bytes.field(4, as: UInt8.self) == ELFConstant.classELF64,
      bytes.field(5, as: UInt8.self) == ELFConstant.dataLittleEndian
    else { throw failure("not a 64-bit little-endian ELF file") }
    let header = ELFHeader(
      type: bytes.field(16),
      programHeaderOffset: bytes.field(32),
      programHeaderCount: bytes.field(56),
      sectionHeaderOffset: bytes.field(40),
      sectionHeaderCount: bytes.field(60),
      programHeaderEntrySize: bytes.field(54),
      sectionHeaderEntrySize: bytes.field(58),
      sectionNamesIndex: bytes.field(62))
    guard header.type == ELFConstant.typeExecutable || header.type == ELFConstant.typeShared else {
      throw failure("not an executable or shared library (ELF type \(header.type))")
    }
    return header
  }

  /// Reads every section header; an empty list when the file has none (e_shoff == 0).
  static func readSections(_ bytes: ELFBytes, header: ELFHeader, path: String) throws(KernelError) -> [ELFSection] {
    func failure(_ explanation: String) -> KernelError {
      KernelError(operation: "read ELF", subject: path, errno: 0, explanation: explanation)
    }
    let offset = header.sectionHeaderOffset
    if offset == 0 { return [] }
    guard header.sectionHeaderEntrySize == ELFConstant.sectionHeaderSize else {
      throw failure("bad section header size \(header.sectionHeaderEntrySize)")
    }
    guard bytes.contains(offset: offset, length: ELFConstant.sectionHeaderSize) else {
      throw failure("truncated section headers")
    }
    // With 0xff00 or more sections, e_shnum is 0 and section 0's sh_size holds the count.
    var count = UInt64(header.sectionHeaderCount)
    if count == 0 { count = bytes.field(offset + 32) }
    guard bytes.contains(offset: offset, entries: count, entrySize: ELFConstant.sectionHeaderSize) else {
      throw failure("truncated section headers")
    }
    var sections: [ELFSection] = []
    sections.reserveCapacity(Int(count))
    for index in 0..<count {
      let at = offset + index * ELFConstant.sectionHeaderSize
      var section = ELFSection(
        nameOffset: bytes.field(at), type: bytes.field(at + 4), flags: bytes.field(at + 8), address: bytes.field(at + 16), offset: bytes.field(at + 24),
        size: bytes.field(at + 32), link: bytes.field(at + 40), entrySize: bytes.field(at + 56),
        alignment: bytes.field(at + 48), isInFile: true)
      section.isInFile =
        section.type == ELFConstant.sectionNoBits || bytes.contains(offset: section.offset, length: section.size)
      sections.append(section)
    }
    return sections
  }

  /// e_shstrndx resolved (SHN_XINDEX: the real index is section 0's sh_link) and checked to
  /// name an existing string table in the file; nil otherwise, and then no section has a name.
  static func sectionNamesIndex(header: ELFHeader, sections: [ELFSection]) -> Int? {
    var index = Int(header.sectionNamesIndex)
    if header.sectionNamesIndex == ELFConstant.sectionIndexExtended, let first = sections.first {
      index = Int(first.link)
    }
    guard index > 0, index < sections.count, sections[index].type == ELFConstant.sectionStrings,
      sections[index].isInFile
    else { return nil }
    return index
  }

  /// Reads the PT_LOAD program headers.
  static func readLoadSegments(
    _ bytes: ELFBytes, header: ELFHeader, sections: [ELFSection], path: String
  ) throws(KernelError) -> [ELFSegment] {
    func failure(_ explanation: String) -> KernelError {
      KernelError(operation: "read ELF", subject: path, errno: 0, explanation: explanation)
    }
    var count = UInt64(header.programHeaderCount)
    if count == 0 { return [] }
    // PN_XNUM: the real count is in section 0's sh_info.
    if header.programHeaderCount == ELFConstant.programHeaderExtended, !sections.isEmpty {
      count = UInt64(bytes.field(header.sectionHeaderOffset + 44, as: UInt32.self))
    }
    guard header.programHeaderEntrySize == ELFConstant.programHeaderSize else {
      throw failure("bad program header size \(header.programHeaderEntrySize)")
    }
    let offset = header.programHeaderOffset
    guard bytes.contains(offset: offset, entries: count, entrySize: ELFConstant.programHeaderSize) else {
      throw failure("truncated program headers")
    }
    var segments: [ELFSegment] = []
    for index in 0..<count {
      let at = offset + index * ELFConstant.programHeaderSize
      guard bytes.field(at, as: UInt32.self) == ELFConstant.segmentLoad else { continue }
      let segment = ELFSegment(
        fileOffset: bytes.field(at + 8), virtualAddress: bytes.field(at + 16), fileSize: bytes.field(at + 32))
      // A segment claiming bytes past the end of the file would give offsets the kernel rejects.
      guard bytes.contains(offset: segment.fileOffset, length: segment.fileSize) else {
        throw failure("truncated: a loadable segment ends past the end of the file")
      }
      segments.append(segment)
    }
    return segments
  }
}
