/// "Did you mean …?" for misspelled names: the closest candidates by edit distance.
enum Suggestions {
  /// Up to `limit` candidates within a distance that grows with the name's length, closest first.
  static func closest(to name: String, in candidates: some Sequence<String>, limit: Int = 3) -> [String] {
    let target = Array(name.utf8)
    let allowed = max(1, min(3, target.count / 3))
    var scored: [(Int, String)] = []
    for candidate in candidates {
      let distance = editDistance(target, Array(candidate.utf8), limit: allowed)
      if distance <= allowed { scored.append((distance, candidate)) }
    }
    scored.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
    var seen = Set<String>()
    return scored.map(\.1).filter { seen.insert($0).inserted }.prefix(limit).map { $0 }
  }

  /// A hint line for `closest`, or nil when nothing is close.
  static func hint(for name: String, in candidates: some Sequence<String>, quote: Bool = true) -> String? {
    let found = closest(to: name, in: candidates)
    guard !found.isEmpty else { return nil }
    let list = found.map { quote ? "'\($0)'" : $0 }
    return "did you mean " + (list.count == 1 ? list[0] : list.dropLast().joined(separator: ", ") + " or " + list.last!) + "?"
  }

  /// Levenshtein distance, giving up early (returning limit + 1) once it must exceed `limit`.
  static func editDistance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int {
    if abs(a.count - b.count) > limit { return limit + 1 }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...max(a.count, 1) where !a.isEmpty {
      current[0] = i
      var rowMin = current[0]
      for j in 1...max(b.count, 1) where !b.isEmpty {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        rowMin = min(rowMin, current[j])
      }
      if rowMin > limit { return limit + 1 }
      swap(&previous, &current)
    }
    return a.isEmpty ? b.count : previous[b.count]
  }
}
