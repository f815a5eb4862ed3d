import Testing

@testable import ScryLanguage

/// The language's own tables: positional parameters, functions, builtins.
@Suite struct TableTests {
  /// bpftrace 0.17's answers (C's strtoll in base 0, whole text), run side by side; past int64,
  /// unsigned values keep their bits as bpftrace 0.24 reads them (0.17 refused them).
  @Test(arguments: [
    ("010", 8), ("0775", 509), ("0x10", 16), ("0X1f", 31), ("-0x10", -16), ("-5", -5), ("+5", 5), (" 5", 5), ("0", 0),
    ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
    ("0xffffffffffffffff", -1), ("9223372036854775808", Int64.min),
  ] as [(String, Int64)])
  func positionalNumbers(text: String, value: Int64) {
    #expect(PositionalParameter.integer(text) == value)
  }

  @Test(arguments: ["0b11", "1_000", "1e6", "12abc", "", " ", "-", "0x", "08", "18446744073709551616", "-9223372036854775809", "abc", "5 "])
  func positionalNonNumbers(text: String) {
    #expect(PositionalParameter.integer(text) == nil)
  }

  @Test func everyFunctionAndBuiltinHasOneName() {
    #expect(Set(Function.allCases.map(\.name)).count == Function.allCases.count)
    for function in Function.allCases {
      #expect(Function(name: function.name) == function)
      #expect(function.usage.contains(function.name), "\(function)")
      #expect(!function.summary.isEmpty)
    }
    for builtin in Builtin.all { #expect(Builtin(name: builtin.name) == builtin) }
    #expect(Builtin(name: "arg10") == nil)
    #expect(Builtin(name: "sarg3") == .stackArg(3))
  }
}
