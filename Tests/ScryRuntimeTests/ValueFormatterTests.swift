import ScryLanguage
import Testing

@testable import ScryRuntime

/// `print(value)` forms, as bpftrace 0.17 prints them.
@Suite struct ValueFormatterTests {
  static func show(_ type: ScryType, _ fields: [Fixture.Field], _ format: OutputFormat = .text) -> String {
    Fixture.pack(fields).withUnsafeBytes { raw in
      Fixture.text(format) { ValueFormatter.printValue(raw.baseAddress!, type: type, to: $0) }
    }
  }

  @Test func text() {
    #expect(Self.show(.int64, [.int(-3)]) == "-3\n")
    #expect(Self.show(.uint64, [.int(-1)]) == "18446744073709551615\n")
    #expect(Self.show(.string(capacity: 8), [.str("str", 8)]) == "str\n")
    #expect(Self.show(.boolean, [.int(1)]) == "1\n")
    let nested = ScryType.tuple([.int64, .string(capacity: 4), .tuple([.int64, .string(capacity: 4)])])
    #expect(Self.show(nested, [.int(1), .str("a", 4), .int(2), .str("b", 4)]) == "(1, a, (2, b))\n")
    #expect(Self.show(nested, [.int(1), .str("a", 4), .int(2), .str("b", 4)], .json)
      == "{\"type\": \"value\", \"data\": [1,\"a\",[2,\"b\"]]}\n")
    #expect(Self.show(.int64, [.int(5)], .json) == "{\"type\": \"value\", \"data\": 5}\n")
    #expect(Self.show(.string(capacity: 8), [.str("str", 8)], .json) == "{\"type\": \"value\", \"data\": \"str\"}\n")
  }

  @Test func attachedProbes() {
    #expect(Fixture.text { $0.attachedProbes(1) } == "Attaching 1 probe...\n")
    #expect(Fixture.text { $0.attachedProbes(2) } == "Attaching 2 probes...\n")
    #expect(Fixture.text(.json) { $0.attachedProbes(1) } == "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n")
  }

  @Test func bufferFlushesLargeText() {
    let out = OutputBuffer(capturing: ())
    for _ in 0..<10_000 { out.append("0123456789") }
    out.appendDecimal(Int64.min)
    #expect(out.capturedString.utf8.count == 100_000 + 20)
    #expect(out.capturedString.hasSuffix("9-9223372036854775808"))
  }
}
