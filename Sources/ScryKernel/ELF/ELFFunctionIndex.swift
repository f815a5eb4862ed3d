/// The defined functions of one ELF file, one per name, sorted by name and hashed by name.
///
/// Built once from .symtab and then .dynsym: a name already found in .symtab keeps that entry.
/// Within one table, when a name occurs several times (versioned copies such as memcpy@GLIBC_2.2.5
/// and memcpy@@GLIBC_2.14, or file-local statics), the default version and then a global
/// binding win, then the first entry. The functions of a separate debug file come last, so they
/// add the local functions a stripped file lost without changing the exported ones it kept.
struct ELFFunctionIndex {
  /// Every function, sorted by name.
  var sorted: [ELFSymbol]
  /// Position in `sorted` by name.
  var positions: [String: Int]

  init(file: ELFFile, debugFunctions: [ELFSymbol]) {
    var best: [String: (symbol: ELFSymbol, rank: Int)] = [:]
    let tables = [ELFConstant.sectionSymbolTable, ELFConstant.sectionDynamicSymbols]
    for tableType in tables {
      var fromThisTable: [String: (symbol: ELFSymbol, rank: Int)] = [:]
      for (index, section) in file.sections.enumerated() where section.type == tableType {
        file.forEachFunction(inSymbolTable: index) { symbol, rank in
          if best[symbol.name] != nil { return }  // .symtab wins over .dynsym
          if let existing = fromThisTable[symbol.name], existing.rank <= rank { return }
          fromThisTable[symbol.name] = (symbol, rank)
        }
      }
      best.merge(fromThisTable) { old, _ in old }
    }
    for symbol in debugFunctions where best[symbol.name] == nil {
      best[symbol.name] = (symbol, 0)
    }
    sorted = best.values.map(\.symbol).sorted { $0.name < $1.name }
    positions = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.name, $0) })
  }
}

extension ELFFile {
  /// Calls `body` with each defined function of the symbol table at section `tableIndex` and its
  /// rank (lower is better: default version, then global binding).
  ///
  /// Entries whose name or fields lie outside the file are skipped, never trusted.
  func forEachFunction(inSymbolTable tableIndex: Int, _ body: (ELFSymbol, Int) -> Void) {
    forEachSymbol(inSymbolTable: tableIndex, ofKinds: [ELFConstant.symbolFunction, ELFConstant.symbolIndirectFunction], body)
  }

  /// A defined variable (STT_OBJECT) by name, from .symtab, else .dynsym (`uaddr("GLOBAL_A")`).
  public func dataSymbol(named name: String) -> ELFSymbol? {
    for tableType in [ELFConstant.sectionSymbolTable, ELFConstant.sectionDynamicSymbols] {
      var found: (symbol: ELFSymbol, rank: Int)?
      for (index, section) in sections.enumerated() where section.type == tableType {
        forEachSymbol(inSymbolTable: index, ofKinds: [ELFConstant.symbolObject]) { symbol, rank in
          if symbol.name == name, found.map({ rank < $0.rank }) ?? true { found = (symbol, rank) }
        }
      }
      if let found { return found.symbol }
    }
    return nil
  }

  /// Calls `body` with each defined symbol of the given types (STT_*) of the symbol table at
  /// section `tableIndex`, and its rank as `forEachFunction` gives it.
  private func forEachSymbol(inSymbolTable tableIndex: Int, ofKinds kinds: [UInt8], _ body: (ELFSymbol, Int) -> Void) {
    let table = sections[tableIndex]
    guard table.isInFile, table.type != ELFConstant.sectionNoBits, Int(table.link) < sections.count else { return }
    let strings = sections[Int(table.link)]
    guard strings.isInFile, strings.type != ELFConstant.sectionNoBits else { return }
    let stringsEnd = strings.offset + strings.size  // no overflow: isInFile checked it
    let count = table.size / ELFConstant.symbolSize
    let versions = versionTable(for: tableIndex, symbolCount: count)
    for index in 0..<count {
      let at = table.offset + index * ELFConstant.symbolSize
      let info: UInt8 = bytes.field(at + 4)
      let kind = info & 0xf
      guard kinds.contains(kind) else { continue }
      let sectionIndex: UInt16 = bytes.field(at + 6)
      let value: UInt64 = bytes.field(at + 8)
      guard sectionIndex != ELFConstant.symbolUndefined, value != 0 else { continue }
      let nameOffset = UInt64(bytes.field(at, as: UInt32.self))
      guard let rawName = bytes.cString(at: strings.offset + nameOffset, limit: stringsEnd), !rawName.isEmpty
      else { continue }
      var name = rawName
      var isHiddenVersion = false
      if let at = rawName.utf8.firstIndex(of: UInt8(ascii: "@")) {
        name = String(rawName[..<at])
        // "name@@V" is the default version, "name@V" an old one kept for old binaries.
        isHiddenVersion = !rawName[at...].hasPrefix("@@")
      }
      if let versions, let version = bytes.load(versions + index * 2, as: UInt16.self) {
        isHiddenVersion = isHiddenVersion || version & ELFConstant.versionHidden != 0
      }
      guard !name.isEmpty else { continue }
      let isLocal = info >> 4 == ELFConstant.bindingLocal
      let rank = (isHiddenVersion ? 2 : 0) + (isLocal ? 1 : 0)
      body(ELFSymbol(name: name, address: value, size: bytes.field(at + 16)), rank)
    }
  }

  /// The file offset of the .gnu.version table that parallels the symbol table at `tableIndex`
  /// (one UInt16 per symbol), or nil when there is none or it is short.
  private func versionTable(for tableIndex: Int, symbolCount: UInt64) -> UInt64? {
    for section in sections where section.type == ELFConstant.sectionVersionSymbols {
      if Int(section.link) == tableIndex, section.isInFile, section.size >= symbolCount * 2 {
        return section.offset
      }
    }
    return nil
  }
}
