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

  /// The symbol at or before `address` with its offset, size and module (`kernel` for the core),
  /// as SystemTap prints a frame (`schedule+0x2d/0x90 [kernel]`).
  public static func symbol(of address: UInt64) -> SymbolTable.Symbol? { table.symbol(of: address) }

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
  /// Each symbol's module, an index into `modules` (kallsyms' `[name]`); empty when not known.
  private var moduleIndexes: [UInt16] = []
  private var modules: [String] = []

  /// A symbol holding an address, as SystemTap's runtime names it.
  public struct Symbol: Sendable {
    public var name: String
    public var offset: UInt64
    /// The symbol's size, or the distance to the next symbol when the table does not know it (as
    /// SystemTap computes it); 0 for the last.
    public var size: UInt64
    public var module: String?
  }

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

  init(kernelSymbols: [(address: UInt64, name: String, module: UInt16)], modules: [String]) {
    for symbol in kernelSymbols.sorted(by: { $0.address < $1.address }) {
      addresses.append(symbol.address)
      names.append(symbol.name)
      sizes.append(0)
      moduleIndexes.append(symbol.module)
    }
    self.modules = modules
  }

  /// The symbol at or before `address`, nil before the first or past a sized symbol's end.
  public func symbol(of address: UInt64) -> Symbol? {
    guard let i = index(of: address) else { return nil }
    let size = sizes[i] > 0 ? sizes[i] : i + 1 < addresses.count ? addresses[i + 1] - addresses[i] : 0
    let module = i < moduleIndexes.count ? modules[Int(moduleIndexes[i])] : nil
    return Symbol(name: names[i], offset: address - addresses[i], size: size, module: module)
  }

  private func index(of address: UInt64) -> Int? {
    var low = 0
    var high = addresses.count
    while low < high {
      let mid = (low + high) / 2
      if addresses[mid] <= address { low = mid + 1 } else { high = mid }
    }
    guard low > 0 else { return nil }
    if sizes[low - 1] > 0 && address - addresses[low - 1] >= sizes[low - 1] { return nil }
    return low - 1
  }

  /// `name+offset` (decimal offset) for the symbol at or before `address`; nil before the first.
  public func name(of address: UInt64) -> String? {
    // Past the end of a sized symbol is padding or another, unnamed function.
    guard let i = index(of: address) else { return nil }
    return names[i] + "+" + String(address - addresses[i])
  }

  static func kallsyms() -> SymbolTable {
    guard let text = try? FileSystem.readText("/proc/kallsyms") else { return SymbolTable(symbols: []) }
    var symbols: [(address: UInt64, name: String, module: UInt16)] = []
    // Index 0 is the kernel itself; a module's symbols end `\t[name]`.
    var modules = ["kernel"]
    var moduleIndex: [Substring: UInt16] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", maxSplits: 3)
      guard fields.count >= 3, let kind = fields[1].first, "tTwW".contains(kind),
        let address = UInt64(fields[0], radix: 16), address != 0
      else { continue }
      let nameAndModule = fields[2].split(separator: "\t", maxSplits: 1)
      var module: UInt16 = 0
      if nameAndModule.count == 2 {
        let name = Substring(nameAndModule[1].filter { $0 != "[" && $0 != "]" })
        if let known = moduleIndex[name] { module = known } else {
          module = UInt16(truncatingIfNeeded: modules.count)
          moduleIndex[name] = module
          modules.append(String(name))
        }
      }
      symbols.append((address, String(nameAndModule[0]), module))
    }
    return SymbolTable(kernelSymbols: symbols, modules: modules)
  }
}
