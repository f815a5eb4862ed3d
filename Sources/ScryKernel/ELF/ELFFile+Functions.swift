/// Function lookup for uprobes: by name, by wildcard, by nearest name, and to a file offset.
extension ELFFile {
  /// Defined function symbols (STT_FUNC and STT_GNU_IFUNC, st_shndx != SHN_UNDEF, st_value != 0)
  /// from .symtab and .dynsym, one per name (prefer .symtab), sorted by name.
  public func functions() -> [ELFSymbol] {
    functionIndex.sorted
  }

  /// The function called `name`; anything from an '@' on (a symbol version) is ignored.
  public func function(named name: String) -> ELFSymbol? {
    let index = functionIndex
    guard let position = index.positions[ELFFile.unversioned(name)] else { return nil }
    return index.sorted[position]
  }

  /// The functions whose names match `pattern` (a `Glob`: bpftrace's `uprobe:/bin/bash:read*`),
  /// sorted by name.
  public func functions(matching pattern: String) -> [ELFSymbol] {
    let patternBytes = Array(pattern.utf8)
    guard Glob.hasWildcard(patternBytes) else {
      return function(named: pattern).map { [$0] } ?? []
    }
    return functionIndex.sorted.filter { Glob.matches(pattern: patternBytes, text: Array($0.name.utf8)) }
  }

  /// Up to `limit` function names nearest to `name` by edit distance (ties by name), for a
  /// "did you mean" hint; only names close enough to be a plausible typo.
  public func closestFunctionNames(to name: String, limit: Int = 3) -> [String] {
    let target = Array(ELFFile.unversioned(name).utf8)
    guard limit > 0, !target.isEmpty else { return [] }
    // About one edit in three characters, at least two: "mallc" finds "malloc", "x" finds nothing odd.
    let threshold = max(2, target.count / 3)
    var candidates: [(distance: Int, name: String)] = []
    for symbol in functionIndex.sorted {
      let candidate = Array(symbol.name.utf8)
      // The distance is at least the length difference: skip most names without the full table.
      if abs(candidate.count - target.count) > threshold { continue }
      let distance = ELFFile.editDistance(target, candidate, cutoff: threshold)
      if distance <= threshold { candidates.append((distance, symbol.name)) }
    }
    candidates.sort { ($0.distance, $0.name) < ($1.distance, $1.name) }
    return candidates.prefix(limit).map(\.name)
  }

  /// The offset to write in uprobe_events (`PATH:0xOFFSET`) for `name` plus `offset` bytes
  /// (`uprobe:/path:func+8`); throws a `KernelError` that says what is wrong and, for an unknown
  /// name, suggests near ones.
  public func uprobeOffset(ofFunction name: String, plus offset: UInt64 = 0) throws(KernelError) -> UInt64 {
    guard let symbol = function(named: name) else {
      var explanation = "no function '\(name)' in this file"
      let near = closestFunctionNames(to: name)
      if !near.isEmpty { explanation += "; did you mean " + near.map { "'\($0)'" }.joined(separator: ", ") + "?" }
      if isStripped, debugFilePath == nil {
        explanation += " (the file is stripped and no debug file is installed: only exported functions are known)"
      }
      throw KernelError(operation: "read ELF", subject: path, errno: 0, explanation: explanation)
    }
    if offset > 0, symbol.size > 0, offset >= symbol.size {
      throw KernelError(
        operation: "read ELF", subject: path, errno: 0,
        explanation: "offset \(offset) is past the end of '\(symbol.name)' (\(symbol.size) bytes)")
    }
    let (address, overflow) = symbol.address.addingReportingOverflow(offset)
    guard !overflow, let fileOffset = fileOffset(ofAddress: address) else {
      throw KernelError(
        operation: "read ELF", subject: path, errno: 0,
        explanation: "'\(symbol.name)' is not in a segment loaded from the file")
    }
    return fileOffset
  }

  /// `name` without its "@VERSION" suffix.
  static func unversioned(_ name: String) -> String {
    guard let at = name.utf8.firstIndex(of: UInt8(ascii: "@")) else { return name }
    return String(name[..<at])
  }

  /// Levenshtein distance between `a` and `b`, or some value above `cutoff` once every entry of
  /// a row exceeds it (the final distance cannot come back down).
  static func editDistance(_ a: [UInt8], _ b: [UInt8], cutoff: Int) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      var rowMinimum = i
      for j in 1...b.count {
        let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
        current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
        rowMinimum = min(rowMinimum, current[j])
      }
      if rowMinimum > cutoff { return cutoff + 1 }
      swap(&previous, &current)
    }
    return previous[b.count]
  }
}
