import Glibc

/// The executable mappings of a process, read from /proc/PID/maps when its first stack is taken,
/// so its stacks can be named after it has exited (bpftrace reads them at print time, when a
/// short-lived process is gone and its frames print as addresses).
public struct ProcessMappings: Sendable {
  public struct Mapping: Sendable {
    public var start: UInt64
    public var end: UInt64
    /// The file offset mapped at `start`.
    public var fileOffset: UInt64
    public var path: String

    public init(start: UInt64, end: UInt64, fileOffset: UInt64, path: String) {
      self.start = start
      self.end = end
      self.fileOffset = fileOffset
      self.path = path
    }
  }

  public var mappings: [Mapping]

  /// The mappings of `pid`; empty when it is gone or unreadable.
  public static func snapshot(of pid: UInt32) -> ProcessMappings {
    guard let text = try? FileSystem.readText("/proc/\(pid)/maps") else { return ProcessMappings(mappings: []) }
    var mappings: [Mapping] = []
    for line in text.split(separator: "\n") {
      // start-end perms offset dev inode path
      let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
      // The path is padded with spaces after the inode.
      guard fields.count == 6, fields[1].contains("x") else { continue }
      let path = fields[5].drop { $0 == " " }
      guard path.hasPrefix("/") || path.hasPrefix("[") else { continue }
      let range = fields[0].split(separator: "-")
      guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
        let offset = UInt64(fields[2], radix: 16)
      else { continue }
      mappings.append(Mapping(start: start, end: end, fileOffset: offset, path: String(path)))
    }
    return ProcessMappings(mappings: mappings)
  }

  public init(mappings: [Mapping]) { self.mappings = mappings }

  /// The mapping that holds `address`; the latest, when a later one replaced an earlier one.
  public func mapping(of address: UInt64) -> Mapping? {
    mappings.last { address >= $0.start && address < $0.end }
  }
}

/// Names of user addresses: through a process's mappings to a file, then that file's ELF symbols,
/// read once per file; code outside any file (a JIT's) through perf's `/tmp/perf-PID.map`.
public final class UserSymbolizer {
  private var tables: [String: (elf: ELFFile?, symbols: SymbolTable)] = [:]
  private var perfMaps: [UInt32: SymbolTable] = [:]

  public init() {}

  /// `function+offset` for `address` in a process with `mappings`, and the file it is in; the
  /// name is nil when the file has no symbol there (or the address is in no file mapping and not
  /// in the process's perf map).
  public func name(of address: UInt64, in mappings: ProcessMappings, pid: UInt32) -> (name: String?, path: String?) {
    // perf names anonymous memory `//anon`: not a file.
    guard let mapping = mappings.mapping(of: address), mapping.path.hasPrefix("/"), !mapping.path.hasPrefix("//") else {
      if let name = perfMap(of: pid).name(of: address) { return (name, Self.perfMapPath(of: pid)) }
      return (nil, mappings.mapping(of: address)?.path)
    }
    let table = self.table(for: mapping.path)
    let fileOffset = address - mapping.start + mapping.fileOffset
    guard let elf = table.elf, let virtual = elf.address(ofFileOffset: fileOffset) else { return (nil, mapping.path) }
    return (table.symbols.name(of: virtual), mapping.path)
  }

  /// The symbol holding `address` with its offset and size, and the file it is in (SystemTap's
  /// `main+0x1d/0x40 [/usr/bin/app]`).
  public func symbol(of address: UInt64, in mappings: ProcessMappings, pid: UInt32) -> (symbol: SymbolTable.Symbol?, path: String?) {
    guard let mapping = mappings.mapping(of: address), mapping.path.hasPrefix("/"), !mapping.path.hasPrefix("//") else {
      if let symbol = perfMap(of: pid).symbol(of: address) { return (symbol, Self.perfMapPath(of: pid)) }
      return (nil, mappings.mapping(of: address)?.path)
    }
    let table = self.table(for: mapping.path)
    let fileOffset = address - mapping.start + mapping.fileOffset
    guard let elf = table.elf, let virtual = elf.address(ofFileOffset: fileOffset) else { return (nil, mapping.path) }
    return (table.symbols.symbol(of: virtual), mapping.path)
  }

  static func perfMapPath(of pid: UInt32) -> String { "/tmp/perf-\(pid).map" }

  /// The symbols a JIT wrote for `pid` (lines `START SIZE name`, hex), read once: JITs append to
  /// the file and leave it after exit, so reading it when the first such address prints is enough.
  private func perfMap(of pid: UInt32) -> SymbolTable {
    if let known = perfMaps[pid] { return known }
    var symbols: [(address: UInt64, name: String, size: UInt64)] = []
    if let text = try? FileSystem.readText(Self.perfMapPath(of: pid)) {
      for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard fields.count == 3, let start = Self.hex(fields[0]), let size = Self.hex(fields[1]) else { continue }
        symbols.append((start, String(fields[2]), size))
      }
    }
    let table = SymbolTable(sizedSymbols: symbols)
    perfMaps[pid] = table
    return table
  }

  private static func hex(_ text: Substring) -> UInt64? {
    UInt64(text.hasPrefix("0x") ? text.dropFirst(2) : text, radix: 16)
  }

  private func table(for path: String) -> (elf: ELFFile?, symbols: SymbolTable) {
    if let known = tables[path] { return known }
    let elf = try? ELFFile(path: path)
    let symbols = SymbolTable(sizedSymbols: (elf?.functions() ?? []).map { ($0.address, $0.name, $0.size) })
    tables[path] = (elf, symbols)
    return (elf, symbols)
  }
}
