import Glibc
import ScryLanguage
import Testing

@testable import ScryRuntime

/// Expected strings are bpftrace 0.17's printf output for the same calls.
@Suite struct PrintfTests {
  static func run(_ format: String, _ args: [(ScryType, Fixture.Field)], _ outFormat: OutputFormat = .text) -> String {
    guard case .success(let parsed) = PrintfFormat.parse(Array(format.utf8)) else { return "<parse error>" }
    let compiled = CompiledPrintf(format: parsed, argumentTypes: args.map(\.0))
    var packed = Fixture.pack(args.map(\.1))
    packed.append(0)
    return packed.withUnsafeBytes { raw in Fixture.text(outFormat) { compiled.write(arguments: raw.baseAddress!, to: $0) } }
  }

  static let i64 = ScryType.int64

  @Test func widthsFlagsAndBases() {
    #expect(Self.run("[%5d|%-5d|%05d|%x|%X|%o|%u]\n", [(Self.i64, .int(42)), (Self.i64, .int(42)), (Self.i64, .int(-42)),
      (Self.i64, .int(255)), (Self.i64, .int(255)), (Self.i64, .int(8)), (Self.i64, .int(-1))])
      == "[   42|42   |-0042|ff|FF|10|4294967295]\n")
  }

  @Test func lengthModifiersTruncateLikeC() {
    #expect(Self.run("[%d|%x|%lx|%u|%lu|%hhx]\n", [(Self.i64, .int(-1)), (Self.i64, .int(-1)), (Self.i64, .int(-1)),
      (.integer(.int32), .int(-1)), (.integer(.int32), .int(-1)), (Self.i64, .int(-1))])
      == "[-1|ffffffff|ffffffffffffffff|4294967295|18446744073709551615|ff]\n")
    #expect(Self.run("[%hhd|%hd|%hu|%ld|%lld|%c|%p]\n", [(Self.i64, .int(300)), (Self.i64, .int(70000)), (Self.i64, .int(-1)),
      (Self.i64, .int(-1)), (Self.i64, .int(-1)), (Self.i64, .int(65)), (Self.i64, .int(4096))])
      == "[44|4464|65535|-1|-1|A|0x1000]\n")
    #expect(Self.run("%d %d %x\n", [(.integer(IntegerType(bits: 8, isSigned: true)), .int(-3)), (.integer(.uint32), .int(4_000_000_000)),
      (.integer(IntegerType(bits: 8, isSigned: true)), .int(-3))]) == "-3 -294967296 fffffffd\n")
  }

  @Test func precision() {
    #expect(Self.run("[%.3d|%8.3x|%-08d|%llu]\n", [(Self.i64, .int(5)), (Self.i64, .int(5)), (Self.i64, .int(5)), (Self.i64, .int(-1))])
      == "[005|     005|5       |18446744073709551615]\n")
  }

  @Test func strings() {
    let s = ScryType.string(capacity: 64)
    #expect(Self.run("[%s|%10s|%-10s|%.2s|%5.1s]\n", Array(repeating: (s, .str("abc", 64)), count: 5))
      == "[abc|       abc|abc       |ab|    a]\n")
    #expect(Self.run("%s %d\n", [(.comm, .str("bpftrace", 16)), (.integer(IntegerType(bits: 8, isSigned: false)), .int(200))])
      == "bpftrace 200\n")
  }

  @Test func json() {
    #expect(Self.run("b%s\n", [(.string(capacity: 64), .str("c", 64))], .json) == "{\"type\": \"printf\", \"data\": \"bc\\n\"}\n")
  }

  /// Agrees with the C library on a grid of flags, widths and values.
  @Test func matchesSnprintf() {
    let values: [Int64] = [0, 1, -1, 42, -42, 255, 65536, Int64.max, Int64.min, 4_000_000_000]
    for spec in ["%d", "%5d", "%-5d|", "%05d", "%.3d", "%.0d", "%x", "%#x", "%#o", "%+d", "% d", "%lx", "%lld", "%hd", "%hhu", "%u", "%lu", "%10.4ld", "%-#10lx|"] {
      for v in values {
        var buffer = [CChar](repeating: 0, count: 128)
        let lengthModifierIsLong = spec.contains("l")
        if lengthModifierIsLong {
          _ = withVaList([v]) { vsnprintf(&buffer, 128, spec, $0) }
        } else {
          _ = withVaList([Int32(truncatingIfNeeded: v)]) { vsnprintf(&buffer, 128, spec, $0) }
        }
        let expected = String(cString: buffer)
        #expect(Self.run(spec, [(Self.i64, .int(v))]) == expected, "\(spec) \(v)")
      }
    }
  }
}
