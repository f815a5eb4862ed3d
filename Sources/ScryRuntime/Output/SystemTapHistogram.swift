import ScryLanguage

/// A histogram drawn as SystemTap's runtime draws one (`_stp_stat_print_histogram`): a
/// `value |---…--- count` header, rows from two empty buckets below the data to two above, runs of
/// empty rows elided to `~`, bars 50 `@` wide at most, then a blank line.
enum SystemTapHistogram {
  static let width = 50
  static let elision = 2

  static func digits(_ v: Int64) -> Int {
    if v == 0 { return 1 }
    var n = v < 0 ? 1 : 0
    var m = v.magnitude
    while m > 0 {
      m /= 10
      n += 1
    }
    return n
  }

  /// Scry's buckets keep bpftrace's layout: hist has negatives at 0, zero at 1, [2^k, 2^(k+1)) at
  /// 2 + k (SystemTap's value label 2^k); lhist has underflow at 0 and overflow last.
  static func append(_ value: UnsafeRawPointer, kind: AggregateKind, to out: OutputBuffer) {
    let buckets = HistogramPrinter.bucketCount(kind)
    let counts = (0..<buckets).map { Int64(bitPattern: value.load(fromByteOffset: $0 * 8, as: UInt64.self)) }
    var isLinear = false
    var (start, step): (Int64, Int64) = (0, 1)
    if case .lhist(let lo, _, let s) = kind { (isLinear, start, step) = (true, lo, s) }
    guard let first = counts.firstIndex(where: { $0 > 0 }), let lastUsed = counts.lastIndex(where: { $0 > 0 }) else {
      out.append("value |" + String(repeating: "-", count: width) + " count\n\n")
      return
    }
    var low = first
    var high = lastUsed
    // Two empty rows either side; a log histogram goes below zero only for negative values.
    for _ in 0..<2 {
      if isLinear ? low > 0 : low > 1 { low -= 1 }
      if high < buckets - 1 { high += 1 }
    }
    if isLinear {
      if low == 0 && counts[0] == 0 { low += 1 }
      if high == buckets - 1 && counts[high] == 0 { high -= 1 }
    }
    func label(_ i: Int) -> (prefix: String, value: Int64) {
      if isLinear {
        if i == 0 { return ("<", start) }
        // The overflow row is labelled with the last row's value, as SystemTap labels it.
        if i == buckets - 1 { return (">", start + Int64(i - 2) * step) }
        return ("", start + Int64(i - 1) * step)
      }
      if i == 0 { return ("<", 0) }
      return ("", i == 1 ? 0 : Int64(1) << Int64(i - 2))
    }
    let valueMax = counts.max() ?? 0
    let scale = valueMax <= Int64(width) ? 1 : (valueMax + Int64(width) - 1) / Int64(width)
    let countSpace = digits(valueMax)
    var valueSpace = 5
    if isLinear {
      // SystemTap sizes the column by `start + interval * high_bucket`, one interval past the last
      // row's label, plus one for a `<` or `>` row.
      valueSpace = Swift.max(valueSpace, digits(start) + (low == 0 ? 1 : 0),
        digits(start + step * Int64(high)) + (high == buckets - 1 ? 1 : 0))
    } else {
      for i in [low, high] {
        let l = label(i)
        valueSpace = Swift.max(valueSpace, digits(l.value) + l.prefix.count)
      }
    }
    out.append(String(repeating: " ", count: valueSpace - 5) + "value |" + String(repeating: "-", count: width) + " count\n")
    var eliding = false
    for i in low...high {
      let near = Swift.max(low, i - elision)...Swift.min(high, i + elision)
      if near.allSatisfy({ counts[$0] == 0 }) {
        eliding = true
        continue
      }
      if eliding {
        out.append(String(repeating: " ", count: valueSpace) + " ~\n")
        eliding = false
      }
      let l = label(i)
      let text = l.prefix + String(l.value)
      let bar = Int(counts[i] / scale)
      let count = String(counts[i])
      out.append(String(repeating: " ", count: Swift.max(0, valueSpace - text.count)) + text + " |")
      out.append(String(repeating: "@", count: bar))
      out.append(String(repeating: " ", count: Swift.max(0, width - bar + 1 + countSpace - count.count)) + count + "\n")
    }
    out.append("\n")
  }
}
