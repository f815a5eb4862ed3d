/// What names a file's separate debug file: its GNU build-id note and its .gnu_debuglink section.
extension ELFFile {
  /// The bytes of the NT_GNU_BUILD_ID note ("GNU" owner), or nil when the file has none.
  ///
  /// Read from SHT_NOTE sections: a stripped library keeps its section headers, and debug files
  /// made by `objcopy --only-keep-debug` keep the note's bytes (it is an allocated PROGBITS-like
  /// section that is copied, unlike the NOBITS code).
  public var buildID: [UInt8]? {
    for section in sections where section.type == ELFConstant.sectionNote && section.isInFile {
      if let id = Self.buildID(inNotes: bytes, offset: section.offset, size: section.size, alignment: section.alignment) {
        return id
      }
    }
    return nil
  }

  /// The build-id as lowercase hex, as the /usr/lib/debug/.build-id/ paths spell it.
  public var buildIDHex: String? {
    buildID.map { id in id.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
  }

  /// The .gnu_debuglink section: the debug file's name and the CRC-32 of its contents; nil when
  /// the section is missing or malformed (no NUL, or no room for the CRC after the padding).
  public var debugLink: (name: String, crc: UInt32)? {
    guard let section = section(named: ".gnu_debuglink"), section.isInFile,
      section.type != ELFConstant.sectionNoBits
    else { return nil }
    let end = section.offset + section.size  // no overflow: isInFile checked it
    guard let name = bytes.cString(at: section.offset, limit: end), !name.isEmpty else { return nil }
    // The name, its NUL, padding to 4 bytes, then the CRC (binutils' layout).
    let crcOffset = (section.offset + UInt64(name.utf8.count) + 1 + 3) & ~3
    guard crcOffset + 4 <= end, let crc = bytes.load(crcOffset, as: UInt32.self) else { return nil }
    return (name, crc)
  }

  /// The separate debug file whose functions this (stripped) file's lookups include; nil when
  /// the file has its own .symtab or no debug file is installed. Looks it up on first use.
  public var debugFilePath: String? {
    isStripped ? separateDebugSymbols?.path : nil
  }

  /// The first section called `name`, or nil (also when the file's section names are unreadable).
  func section(named name: String) -> ELFSection? {
    guard let namesIndex = sectionNamesIndex else { return nil }
    let names = sections[namesIndex]
    let end = names.offset + names.size  // no overflow: isInFile checked it
    let wanted = Array(name.utf8)
    for section in sections {
      let at = names.offset + UInt64(section.nameOffset)
      guard at < end, let candidate = bytes.cString(at: at, limit: end) else { continue }
      if Array(candidate.utf8) == wanted { return section }
    }
    return nil
  }

  /// The NT_GNU_BUILD_ID descriptor among the notes at `offset` (`size` bytes, entries padded to
  /// `alignment`, 4 or 8); nil when absent. A note running past the range ends the scan.
  static func buildID(inNotes bytes: ELFBytes, offset: UInt64, size: UInt64, alignment: UInt64) -> [UInt8]? {
    let align: UInt64 = alignment == 8 ? 8 : 4
    func padded(_ value: UInt64) -> UInt64 { (value + align - 1) & ~(align - 1) }
    guard bytes.contains(offset: offset, length: size) else { return nil }
    let end = offset + size
    var at = offset
    while at + 12 <= end {
      let nameSize = UInt64(bytes.field(at, as: UInt32.self))
      let descriptorSize = UInt64(bytes.field(at + 4, as: UInt32.self))
      let type: UInt32 = bytes.field(at + 8)
      let nameAt = at + 12
      let descriptorAt = nameAt + padded(nameSize)  // both sizes are < 2^32: no overflow
      let next = descriptorAt + padded(descriptorSize)
      guard descriptorAt + descriptorSize <= end else { return nil }
      if type == ELFConstant.noteGNUBuildID, nameSize == 4, descriptorSize > 0,
        bytes.cString(at: nameAt, limit: nameAt + 4) == "GNU"
      {
        return (0..<descriptorSize).map { bytes.field(descriptorAt + $0, as: UInt8.self) }
      }
      at = next
    }
    return nil
  }
}
