/// Kernel symbol addresses from /proc/kallsyms, for `kaddr("name")`.
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
}
