import ScryLanguage

/// Text and JSON rendering of `hist`/`lhist` buckets, as bpftrace 0.17 draws them:
/// rows from the first to the last non-empty bucket, 16-column label, 8-column count, 52-column bar.
enum HistogramPrinter {
  static let barWidth: UInt64 = 52

  /// `1024` → `1K`, `3072` → `3K`, `5000` → `5000`: the largest power of 1024 dividing the number.
  static func sizeLabel(_ n: Int64) -> String {
    let suffixes = ["", "K", "M", "G", "T", "P", "E"]
    var value = n
    var power = 0
    while value != 0 && value % 1024 == 0 && power < 6 {
      value /= 1024
      power += 1
    }
    return String(value) + suffixes[power]
  }

  /// Label of bucket `i` of a `hist`.
  static func histLabel(_ i: Int) -> String {
    switch i {
    case 0: return "(..., 0)"
    case 1: return "[0]"
    case 2: return "[1]"
    default:
      let k = i - 2
      let low = Int64(1) << Int64(k)
      let high: String = k >= 62 ? (k == 62 ? "8E" : "16E") : sizeLabel(low << 1)
      return "[" + sizeLabel(low) + ", " + high + ")"
    }
  }

  static func lhistLabel(_ i: Int, buckets: Int, min: Int64, max: Int64, step: Int64) -> String {
    if i == 0 { return "(..., " + sizeLabel(min) + ")" }
    if i == buckets - 1 { return "[" + sizeLabel(max) + ", ...)" }
    let low = min + Int64(i - 1) * step
    return "[" + sizeLabel(low) + ", " + sizeLabel(low + step) + ")"
  }

  /// The non-empty span of buckets (on the undivided counts), or nil when every bucket is zero.
  static func span(_ value: UnsafeRawPointer, buckets: Int) -> ClosedRange<Int>? {
    var first = -1
    var last = -1
    for i in 0..<buckets where value.load(fromByteOffset: i * 8, as: UInt64.self) != 0 {
      if first < 0 { first = i }
      last = i
    }
    return first < 0 ? nil : first...last
  }

  static func bucketCount(_ kind: AggregateKind) -> Int {
    if case .lhist(let lo, let hi, let step) = kind {
      return AggregateKind.lhistBucketCount(min: lo, max: hi, step: step)
    }
    return Aggregation.histBucketsInUse
  }

  /// Rows of one histogram, each ending in a newline.
  static func appendText(_ value: UnsafeRawPointer, kind: AggregateKind, divisor: UInt64, to out: OutputBuffer) {
    let buckets = bucketCount(kind)
    guard let span = span(value, buckets: buckets) else { return }
    var maxCount: UInt64 = 0
    for i in span { maxCount = Swift.max(maxCount, value.load(fromByteOffset: i * 8, as: UInt64.self) / divisor) }
    for i in span {
      let n = value.load(fromByteOffset: i * 8, as: UInt64.self) / divisor
      let label: String
      if case .lhist(let lo, let hi, let step) = kind {
        label = lhistLabel(i, buckets: buckets, min: lo, max: hi, step: step)
      } else {
        label = histLabel(i)
      }
      out.append(label)
      out.appendRepeated(UInt8(ascii: " "), count: 16 - label.utf8.count)
      let digits = String(n)
      out.appendRepeated(UInt8(ascii: " "), count: 8 - digits.utf8.count)
      out.append(digits)
      out.append(" |")
      // bpftrace draws a full bar when every divided count is zero (its 0/0 case).
      let bar = maxCount == 0 ? Int(barWidth) : Int(n.multipliedReportingOverflow(by: barWidth).partialValue / maxCount)
      out.appendRepeated(UInt8(ascii: "@"), count: bar)
      out.appendRepeated(UInt8(ascii: " "), count: Int(barWidth) - bar)
      out.append("|\n")
    }
  }

  /// `[{"min": 4, "max": 7, "count": 1}, …]`.
  static func appendJSON(_ value: UnsafeRawPointer, kind: AggregateKind, divisor: UInt64, to out: OutputBuffer) {
    let buckets = bucketCount(kind)
    out.appendByte(UInt8(ascii: "["))
    if let span = span(value, buckets: buckets) {
      for i in span {
        if i != span.lowerBound { out.append(", ") }
        let n = value.load(fromByteOffset: i * 8, as: UInt64.self) / divisor
        var low: Int64?
        var high: Int64?
        if case .lhist(let lo, let hi, let step) = kind {
          if i == 0 {
            high = lo - 1
          } else if i == buckets - 1 {
            low = hi
          } else {
            low = lo + Int64(i - 1) * step
            high = low! + step - 1
          }
        } else {
          switch i {
          case 0: high = -1
          case 1: (low, high) = (0, 0)
          default:
            let k = Int64(i - 2)
            low = Int64(1) << k
            high = k >= 62 ? Int64.max : (Int64(1) << (k + 1)) - 1
          }
        }
        out.appendByte(UInt8(ascii: "{"))
        if let low {
          out.append("\"min\": ")
          out.appendDecimal(low)
          out.append(", ")
        }
        if let high {
          out.append("\"max\": ")
          out.appendDecimal(high)
          out.append(", ")
        }
        out.append("\"count\": ")
        out.appendUnsigned(n)
        out.appendByte(UInt8(ascii: "}"))
      }
    }
    out.appendByte(UInt8(ascii: "]"))
  }
}
