/// Kernel symbols from /proc/kallsyms: `kaddr("name")` and the names of kernel stack frames.
/// Addresses read as 0 without root (kptr_restrict); those count as unknown.
public enum KernelSymbols {
  public static func address(of symbol: String) -> UInt64? {
    guard let text = try? FileSystem.readText("/proc/kallsyms") else { return nil }
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", maxSplits: 3)
      guard fields.count >= 3, fields[2] == symbol, let address = UInt64(fields[0], radix: 16), address != 0 else {
        continue
      }
      return address
    }
    return nil
  }

  /// `name+offset` of the symbol at or before `address` (bpftrace's form), nil when none is known.
  public static func name(of address: UInt64) -> String? { table.name(of: address) }

  /// Loaded on first use, then kept: kernel symbols do not move while Scry runs. Only text
  /// symbols name code addresses; module symbols are included (kallsyms lists them too).
  private static let table = SymbolTable.kallsyms()
}

/// Symbols sorted by address, for the nearest symbol at or before an address (binary search).
public struct SymbolTable: Sendable {
  private var addresses: [UInt64] = []
  private var names: [String] = []
  /// Each symbol's size; 0 when unknown (kallsyms), which covers up to the next symbol.
  private var sizes: [UInt64] = []

  public init(symbols: [(address: UInt64, name: String)]) {
    self.init(sizedSymbols: symbols.map { ($0.address, $0.name, 0) })
  }

  public init(sizedSymbols: [(address: UInt64, name: String, size: UInt64)]) {
    for symbol in sizedSymbols.sorted(by: { $0.address < $1.address }) {
      addresses.append(symbol.address)
      names.append(symbol.name)
      sizes.append(symbol.size)
    }
  }

  /// `name+offset` (decimal offset) for the symbol at or before `address`; nil before the first.
  public func name(of address: UInt64) -> String? {
    var low = 0
    var high = addresses.count
    while low < high {
      let mid = (low + high) / 2
      if addresses[mid] <= address { low = mid + 1 } else { high = mid }
    }
    guard low > 0 else { return nil }
    let offset = address - addresses[low - 1]
    // Past the end of a sized symbol is padding or another, unnamed function.
    if sizes[low - 1] > 0 && offset >= sizes[low - 1] { return nil }
    return names[low - 1] + "+" + String(offset)
  }

  static func kallsyms() -> SymbolTable {
    guard let text = try? FileSystem.readText("/proc/kallsyms") else { return SymbolTable(symbols: []) }
    var symbols: [(address: UInt64, name: String)] = []
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", maxSplits: 3)
      guard fields.count >= 3, let kind = fields[1].first, "tTwW".contains(kind),
        let address = UInt64(fields[0], radix: 16), address != 0
      else { continue }
      symbols.append((address, String(fields[2])))
    }
    return SymbolTable(symbols: symbols)
  }
}
