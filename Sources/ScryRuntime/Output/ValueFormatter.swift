import Glibc
import ScryKernel
import ScryLanguage

/// Formats packed values (and map keys) as bpftrace 0.17 prints them, in text or JSON.
/// Strings end at their first NUL; tuples print as `(1, a)` in text and `[1,"a"]` in JSON.
public enum ValueFormatter {
  /// `print(value)` of a non-map value, newline included (json: `{"type": "value", "data": …}`).
  public static func printValue(_ value: UnsafeRawPointer, type: ScryType, to out: OutputBuffer) {
    // One key's histogram: only SystemTap programs print one (`print(@hist_log(x[k]))`).
    if case .aggregate(let kind) = type, out.format == .text {
      switch kind {
      case .hist, .lhist: return SystemTapHistogram.append(value, kind: kind, to: out)
      default: break
      }
    }
    switch out.format {
    case .text:
      appendText(value, type: type, to: out)
      out.appendByte(UInt8(ascii: "\n"))
    case .json:
      out.append("{\"type\": \"value\", \"data\": ")
      appendJSON(value, type: type, to: out)
      out.append("}\n")
    }
  }

  /// Loads an integer of `type` from its 8-byte slot, as Int64 (signed) or as a bit pattern.
  @inline(__always)
  static func word(_ p: UnsafeRawPointer) -> UInt64 { p.loadUnaligned(as: UInt64.self) }

  /// Length of a NUL-padded string slot's text.
  static func stringLength(_ p: UnsafeRawPointer, capacity: Int) -> Int {
    let bytes = p.assumingMemoryBound(to: UInt8.self)
    var n = 0
    while n < capacity && bytes[n] != 0 { n += 1 }
    return n
  }

  /// An enum value's number, as wide as its type says.
  static func enumValue(_ p: UnsafeRawPointer, _ t: IntegerType) -> Int64 {
    let raw = word(p)
    if t.bits >= 64 { return Int64(bitPattern: raw) }
    let shift = UInt64(64 - t.bits)
    return t.isSigned ? Int64(bitPattern: raw << shift) >> Int64(shift) : Int64(bitPattern: (raw << shift) >> shift)
  }

  /// One value in text form, as in map values, keys and `print`.
  /// `stackIndent`: spaces before each frame of a stack (bpftrace: 8 in values, 4 in map keys).
  public static func appendText(
    _ p: UnsafeRawPointer, type: ScryType, to out: OutputBuffer, stackIndent: Int = 8, inKey: Bool = false
  ) {
    switch type {
    case .stack(let stack):
      StackTable.appendText(p, type: stack, indent: stackIndent, to: out)
    case .integer(let t):
      // An enum value prints as its number, as bpftrace 0.17 prints it (0.24 prints the name).
      if t.enumeration != nil {
        let value = enumValue(p, t)
        if t.isSigned { out.appendDecimal(value) } else { out.appendUnsigned(UInt64(bitPattern: value)) }
        return
      }
      // bpftrace 0.17 reads every 8-byte integer key as signed: `@[(uint64)-1]` prints `@[-1]`.
      if t.isSigned || (inKey && t.bits == 64) { out.appendDecimal(Int64(bitPattern: word(p))) } else { out.appendUnsigned(word(p)) }
    case .boolean:
      // bpftrace 0.17, the reference installed here, prints `true` as 1 (0.24 prints `true`).
      out.appendUnsigned(word(p) != 0 ? 1 : 0)
    case .symbol(let isKernel) where isKernel:
      // bpftrace's ksym(): the symbol's name, without the offset; an unknown address in hex.
      if let name = KernelSymbols.name(of: word(p)), let plus = name.lastIndex(of: "+") {
        out.append(String(name[..<plus]))
      } else {
        out.append("0x")
        appendHex(word(p), to: out)
      }
    case .symbol:
      // A user symbol: the function's name, through its process's mappings; else the address.
      let pid = UInt32(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
      if let name = StackTable.shared.userFunctionName(of: word(p), pid: pid) {
        out.append(name)
      } else {
        out.append("0x")
        appendHex(word(p), to: out)
      }
    case .pointer:
      // bpftrace 0.17 prints a pointer value in decimal (`%p` gives hex).
      out.appendDecimal(Int64(bitPattern: word(p)))
    case .inetAddress:
      appendInetAddress(p, to: out)
    case .string(let capacity):
      out.appendBytes(p.assumingMemoryBound(to: UInt8.self), stringLength(p, capacity: capacity))
    case .tuple(let elements):
      out.appendByte(UInt8(ascii: "("))
      var offset = 0
      for (i, element) in elements.enumerated() {
        if i > 0 { out.append(", ") }
        appendText(p + offset, type: element, to: out)
        offset += element.byteSize
      }
      out.appendByte(UInt8(ascii: ")"))
    case .array(let element, let count):
      CValueFormatter.appendArray(p, element: element, count: count, json: false, inKey: inKey, to: out)
    case .record(let record):
      CValueFormatter.appendRecord(p, record, json: false, inKey: inKey, to: out)
    case .buffer(let capacity):
      // Hex-escapes every byte that is not printable, as bpftrace's buf() does.
      let n = Int(Swift.min(word(p), UInt64(capacity)))
      let bytes = (p + 8).assumingMemoryBound(to: UInt8.self)
      for i in 0..<n {
        let b = bytes[i]
        if b >= 32 && b < 127 {
          out.appendByte(b)
        } else {
          out.append("\\x")
          if b < 16 { out.appendByte(UInt8(ascii: "0")) }
          appendHex(UInt64(b), to: out)
        }
      }
    case .none, .aggregate, .structReference:
      // Printed by their own formatters elsewhere (aggregations, records); the IR computes no such value.
      out.appendUnsigned(type.byteSize >= 8 ? word(p) : 0)
    }
  }

  /// One value in JSON form.
  public static func appendJSON(_ p: UnsafeRawPointer, type: ScryType, to out: OutputBuffer) {
    switch type {
    case .integer(let t) where t.enumeration != nil:
      // bpftrace keeps enum values numbers in JSON (a bare name would not be JSON).
      if t.isSigned { out.appendDecimal(enumValue(p, t)) } else { out.appendUnsigned(UInt64(bitPattern: enumValue(p, t))) }
    case .string(let capacity):
      out.appendByte(UInt8(ascii: "\""))
      appendJSONEscaped(p.assumingMemoryBound(to: UInt8.self), stringLength(p, capacity: capacity), to: out)
      out.appendByte(UInt8(ascii: "\""))
    case .tuple(let elements):
      out.appendByte(UInt8(ascii: "["))
      var offset = 0
      for (i, element) in elements.enumerated() {
        if i > 0 { out.append(",") }
        appendJSON(p + offset, type: element, to: out)
        offset += element.byteSize
      }
      out.appendByte(UInt8(ascii: "]"))
    case .array(let element, let count):
      CValueFormatter.appendArray(p, element: element, count: count, json: true, inKey: false, to: out)
    case .record(let record):
      CValueFormatter.appendRecord(p, record, json: true, inKey: false, to: out)
    case .symbol, .buffer, .inetAddress, .stack:
      let text = OutputBuffer(capturing: ())
      appendText(p, type: type, to: text)
      out.appendByte(UInt8(ascii: "\""))
      out.append(jsonEscaped(text.capturedString))
      out.appendByte(UInt8(ascii: "\""))
    default:
      appendText(p, type: type, to: out)
    }
  }

  /// `ntop`'s value: the family in 8 bytes, then the address; printed by inet_ntop(3).
  static func appendInetAddress(_ p: UnsafeRawPointer, to out: OutputBuffer) {
    let family = Int32(truncatingIfNeeded: word(p))
    var text = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    withUnsafeMutableBytes(of: &text) { buffer in
      let chars = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
      guard inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, p + 8, chars, socklen_t(buffer.count)) != nil else { return }
      out.appendBytes(UnsafeRawPointer(chars).assumingMemoryBound(to: UInt8.self), strlen(chars))
    }
  }

  /// A map key in text: `[1, x]` (strings bare), nothing for a keyless map.
  public static func appendKeyText(_ key: UnsafeRawPointer, types: [ScryType], to out: OutputBuffer) {
    guard !types.isEmpty else { return }
    out.appendByte(UInt8(ascii: "["))
    var offset = 0
    for (i, t) in types.enumerated() {
      if i > 0 { out.append(", ") }
      appendText(key + offset, type: t, to: out, stackIndent: 4, inKey: true)
      offset += t.byteSize
    }
    out.appendByte(UInt8(ascii: "]"))
  }

  /// A map key as a JSON object key: the elements' text joined by `,`, quoted and escaped (`"1,a"`).
  public static func appendKeyJSON(_ key: UnsafeRawPointer, types: [ScryType], to out: OutputBuffer) {
    let text = OutputBuffer(capturing: ())
    var offset = 0
    for (i, t) in types.enumerated() {
      if i > 0 { text.append(",") }
      appendText(key + offset, type: t, to: text, stackIndent: 4, inKey: true)
      offset += t.byteSize
    }
    out.appendByte(UInt8(ascii: "\""))
    out.append(jsonEscaped(text.capturedString))
    out.appendByte(UInt8(ascii: "\""))
  }

  static func appendHex(_ v: UInt64, to out: OutputBuffer) {
    let digits: StaticString = "0123456789abcdef"
    var shift = 60
    while shift > 0 && (v >> UInt64(shift)) == 0 { shift -= 4 }
    while shift >= 0 {
      out.appendByte(digits.utf8Start[Int((v >> UInt64(shift)) & 15)])
      shift -= 4
    }
  }

  public static func jsonEscaped(_ s: String) -> String {
    let text = OutputBuffer(capturing: ())
    var s = s
    s.withUTF8 { if let b = $0.baseAddress { appendJSONEscaped(b, $0.count, to: text) } }
    return text.capturedString
  }

  /// JSON string escaping as bpftrace does it: `"` `\` and control characters.
  public static func appendJSONEscaped(_ bytes: UnsafePointer<UInt8>, _ n: Int, to out: OutputBuffer) {
    for i in 0..<n {
      let b = bytes[i]
      switch b {
      case UInt8(ascii: "\""): out.append("\\\"")
      case UInt8(ascii: "\\"): out.append("\\\\")
      case 0x0A: out.append("\\n")
      case 0x09: out.append("\\t")
      case 0x0D: out.append("\\r")
      case 0x08: out.append("\\b")
      case 0x0C: out.append("\\f")
      case 0..<0x20:
        out.append("\\u00")
        if b < 16 { out.appendByte(UInt8(ascii: "0")) }
        appendHex(UInt64(b), to: out)
      default: out.appendByte(b)
      }
    }
  }
}
