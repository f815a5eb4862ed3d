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
/// read once per file.
public final class UserSymbolizer {
  private var tables: [String: (elf: ELFFile?, symbols: SymbolTable)] = [:]

  public init() {}

  /// `function+offset` for `address` in a process with `mappings`, and the file it is in; the
  /// name is nil when the file has no symbol there (or the address is in no file mapping).
  public func name(of address: UInt64, in mappings: ProcessMappings) -> (name: String?, path: String?) {
    guard let mapping = mappings.mapping(of: address) else { return (nil, nil) }
    guard mapping.path.hasPrefix("/") else { return (nil, mapping.path) }
    let table = self.table(for: mapping.path)
    let fileOffset = address - mapping.start + mapping.fileOffset
    guard let elf = table.elf, let virtual = elf.address(ofFileOffset: fileOffset) else { return (nil, mapping.path) }
    return (table.symbols.name(of: virtual), mapping.path)
  }

  private func table(for path: String) -> (elf: ELFFile?, symbols: SymbolTable) {
    if let known = tables[path] { return known }
    let elf = try? ELFFile(path: path)
    let symbols = SymbolTable(sizedSymbols: (elf?.functions() ?? []).map { ($0.address, $0.name, $0.size) })
    tables[path] = (elf, symbols)
    return (elf, symbols)
  }
}
