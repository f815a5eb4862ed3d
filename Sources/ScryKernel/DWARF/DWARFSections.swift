/// The DWARF sections of one ELF file, copied out of its mapping: what `DWARFInfo` parses.
public struct DWARFSections: Sendable {
  public var info: [UInt8]
  public var abbrev: [UInt8]
  public var str: [UInt8]
  /// DWARF 5: `DW_FORM_line_strp` strings (file and directory names, and some names with gcc).
  public var lineStr: [UInt8]
  /// DWARF 5: the tables `DW_FORM_strx*` index, one per unit from its `DW_AT_str_offsets_base`.
  public var strOffsets: [UInt8]

  public init(info: [UInt8], abbrev: [UInt8], str: [UInt8] = [], lineStr: [UInt8] = [], strOffsets: [UInt8] = []) {
    self.info = info
    self.abbrev = abbrev
    self.str = str
    self.lineStr = lineStr
    self.strOffsets = strOffsets
  }
}

extension ELFFile {
  /// SHF_COMPRESSED: the section holds an Elf64_Chdr and zlib or zstd data.
  static let sectionCompressed: UInt64 = 0x800

  /// The file's own DWARF, nil when it has no `.debug_info`. Throws for compressed sections
  /// (`gcc -gz`, some distributions' debug files), which Scry does not inflate.
  public func dwarfSections() throws(KernelError) -> DWARFSections? {
    guard let info = section(named: ".debug_info"), info.size > 0, info.type != ELFConstant.sectionNoBits else { return nil }
    func bytes(_ name: String) throws(KernelError) -> [UInt8] {
      guard let section = section(named: name), section.isInFile, section.type != ELFConstant.sectionNoBits else { return [] }
      if section.flags & Self.sectionCompressed != 0 {
        throw KernelError(
          operation: "read DWARF", subject: path, errno: 0,
          explanation: "section \(name) is compressed, which Scry does not read (decompress it with 'objcopy --decompress-debug-sections')")
      }
      guard section.size > 0, let base = self.bytes.base else { return [] }
      return Array(UnsafeRawBufferPointer(start: base + Int(section.offset), count: Int(section.size)))
    }
    return DWARFSections(
      info: try bytes(".debug_info"), abbrev: try bytes(".debug_abbrev"), str: try bytes(".debug_str"),
      lineStr: try bytes(".debug_line_str"), strOffsets: try bytes(".debug_str_offsets"))
  }

  /// The DWARF describing this file: its own, or its separate debug file's (build-id or
  /// .gnu_debuglink, under /usr/lib/debug), as libdw's standard debuginfo lookup finds it; nil
  /// when neither has any.
  public func debugInfo() throws(KernelError) -> DWARFInfo? {
    if let own = try dwarfSections() { return try DWARFInfo(sections: own, path: path) }
    guard let debugPath = DebugFiles.locate(for: self, root: DebugFiles.defaultRoot) else { return nil }
    let debug = try ELFFile(path: debugPath)
    guard let sections = try debug.dwarfSections() else { return nil }
    return try DWARFInfo(sections: sections, path: debugPath)
  }
}
