/// Command-line positional parameters (`$1`, `$2`…) as bpftrace reads them: the one parser the
/// checker types them with and the plan takes their values from.
public enum PositionalParameter {
  /// The integer a parameter denotes when a script uses it as a number, with bpftrace's rules
  /// (C's `strtoll` in base 0, the whole text consumed): leading white space, an optional sign,
  /// then `0x…` hexadecimal, `0…` octal or decimal digits, within the range of uint64 (or int64 when negative).
  /// `0b11`, `1_000`, `1e6`, `12abc` and the empty text are not numbers.
  public static func integer(_ text: String) -> Int64? {
    var bytes = Substring(text).utf8.drop { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0d) }
    var isNegative = false
    if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
      isNegative = sign == UInt8(ascii: "-")
      bytes = bytes.dropFirst()
    }
    var radix: UInt64 = 10
    if bytes.starts(with: "0x".utf8) || bytes.starts(with: "0X".utf8) {
      radix = 16
      bytes = bytes.dropFirst(2)
    } else if bytes.count > 1, bytes.first == UInt8(ascii: "0") {
      radix = 8
      bytes = bytes.dropFirst()
    }
    guard !bytes.isEmpty else { return nil }
    var magnitude: UInt64 = 0
    for byte in bytes {
      guard let digit = digitValue(byte), digit < radix else { return nil }
      let (shifted, overflowA) = magnitude.multipliedReportingOverflow(by: radix)
      let (sum, overflowB) = shifted.addingReportingOverflow(digit)
      guard !overflowA, !overflowB else { return nil }
      magnitude = sum
    }
    if isNegative {
      guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
      return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
    }
    // Past int64, an unsigned value keeps its bits (`0xffffffffffffffff` is -1 as int64 and
    // prints as 18446744073709551615 with `%lu`), as bpftrace 0.24 reads it.
    return Int64(bitPattern: magnitude)
  }

  /// The text `str(e)` reads when `e` is a parameter given as text, `$N`, or that text past an
  /// offset, `$N + k` (bpftrace passes the text as a pointer, so adding moves along it); nil for
  /// anything else, and for a parameter that is a number (`$1 + 1` is then arithmetic).
  public static func stringOperand(_ e: Expr, in parameters: [String]) -> [UInt8]? {
    switch e.kind {
    case .positional(let n):
      return Array((text(n, in: parameters) ?? "").utf8)
    case .binary(.add, let base, let offset):
      guard case .positional(let n) = base.kind, case .integer(let k) = offset.kind,
        let given = text(n, in: parameters), integer(given) == nil
      else { return nil }
      return Array(given.utf8.dropFirst(Int(clamping: k)))
    default:
      return nil
    }
  }

  /// The text of parameter `n` (1-based), or nil when it was not given.
  public static func text(_ n: Int, in parameters: [String]) -> String? {
    n >= 1 && n <= parameters.count ? parameters[n - 1] : nil
  }

  private static func digitValue(_ byte: UInt8) -> UInt64? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(byte - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt64(byte - UInt8(ascii: "A") + 10)
    default: return nil
    }
  }
}
