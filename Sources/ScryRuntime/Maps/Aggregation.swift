import ScryLanguage

/// In-place updates of an aggregate map value (`value` points at `AggregateKind.byteSize` bytes, 8-aligned).
/// Integers arrive as UInt64 bit patterns (sign-extended for signed types); layouts follow
/// `AggregateKind.byteSize`: count/sum one word; avg/stats (sum, count); min/max (value, isSet);
/// hist 66 words: 34 buckets in use, then the running sum of the values in the last word; lhist
/// (max-min)/step + 2 buckets, then the running sum. The sums exist for exporters (a Prometheus
/// histogram has `_sum`); the printers show only the buckets, as bpftrace does.
public enum Aggregation {
  @inline(__always) static func word(_ p: UnsafeMutableRawPointer, _ i: Int) -> UInt64 {
    p.load(fromByteOffset: i * 8, as: UInt64.self)
  }
  @inline(__always) static func setWord(_ p: UnsafeMutableRawPointer, _ i: Int, _ v: UInt64) {
    p.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self)
  }

  public static func count(_ value: UnsafeMutableRawPointer) {
    setWord(value, 0, word(value, 0) &+ 1)
  }

  /// Two's-complement addition is the same for signed and unsigned sums.
  public static func sum(_ value: UnsafeMutableRawPointer, _ v: UInt64) {
    setWord(value, 0, word(value, 0) &+ v)
  }

  /// Keeps (sum, count); the average is taken when printed.
  public static func avg(_ value: UnsafeMutableRawPointer, _ v: UInt64) {
    setWord(value, 0, word(value, 0) &+ v)
    setWord(value, 1, word(value, 1) &+ 1)
  }

  /// Same state as `avg`: stats prints count, average and total from (sum, count).
  public static func stats(_ value: UnsafeMutableRawPointer, _ v: UInt64) {
    avg(value, v)
  }

  public static func min(_ value: UnsafeMutableRawPointer, _ v: UInt64, isSigned: Bool = true) {
    let old = word(value, 0)
    let smaller = isSigned ? Int64(bitPattern: v) < Int64(bitPattern: old) : v < old
    if word(value, 1) == 0 || smaller {
      setWord(value, 0, v)
      setWord(value, 1, 1)
    }
  }

  /// The first value sets a max, whatever its sign, as newer bpftrace does (0.17 started at 0
  /// unset, so a key whose values were all <= 0 never printed).
  public static func max(_ value: UnsafeMutableRawPointer, _ v: UInt64, isSigned: Bool = true) {
    let old = word(value, 0)
    let larger = isSigned ? Int64(bitPattern: v) > Int64(bitPattern: old) : v > old
    if word(value, 1) == 0 || larger {
      setWord(value, 0, v)
      setWord(value, 1, 1)
    }
  }

  /// bpftrace 0.17's log2 bucket: 0 for negatives, 1 for zero, 2 + floor(log2 v) otherwise; its BPF code
  /// only looks at the low 32 bits' worth of shifts, so every value at or above 2^31 lands in [2G, 4G).
  public static func histBucket(_ v: UInt64) -> Int {
    let s = Int64(bitPattern: v)
    if s < 0 { return 0 }
    if s == 0 { return 1 }
    return 2 + Swift.min(63 - s.leadingZeroBitCount, 31)
  }

  /// Buckets `histBucket` can return: negatives, zero, and 32 powers of two.
  public static let histBucketsInUse = 34

  /// The word of a hist or lhist value that holds the running sum of its values.
  public static func histogramSumWord(_ kind: AggregateKind) -> Int {
    if case .lhist(let lo, let hi, let step) = kind { return AggregateKind.lhistBucketCount(min: lo, max: hi, step: step) }
    return AggregateKind.histBucketCount - 1
  }

  public static func hist(_ value: UnsafeMutableRawPointer, _ v: UInt64) {
    let b = histBucket(v)
    setWord(value, b, word(value, b) &+ 1)
    setWord(value, AggregateKind.histBucketCount - 1, word(value, AggregateKind.histBucketCount - 1) &+ v)
  }

  public static func lhistBucket(_ v: UInt64, min: Int64, max: Int64, step: Int64) -> Int {
    let s = Int64(bitPattern: v)
    if s < min { return 0 }
    if s >= max { return Int((max - min) / step) + 1 }
    return Int((s - min) / step) + 1
  }

  public static func lhist(_ value: UnsafeMutableRawPointer, _ v: UInt64, min: Int64, max: Int64, step: Int64) {
    let b = lhistBucket(v, min: min, max: max, step: step)
    setWord(value, b, word(value, b) &+ 1)
    let sum = Int((max - min) / step) + 2
    setWord(value, sum, word(value, sum) &+ v)
  }

  /// Dispatches on the kind (for callers that keep the kind as data; `count` ignores `v`).
  public static func update(_ kind: AggregateKind, _ value: UnsafeMutableRawPointer, _ v: UInt64) {
    switch kind {
    case .count: count(value)
    case .sum: sum(value, v)
    case .avg: avg(value, v)
    case .stats: stats(value, v)
    case .min(let isSigned): min(value, v, isSigned: isSigned)
    case .max(let isSigned): max(value, v, isSigned: isSigned)
    case .hist: hist(value, v)
    case .lhist(let lo, let hi, let step): lhist(value, v, min: lo, max: hi, step: step)
    }
  }
}
