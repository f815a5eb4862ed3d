import ScryLanguage

/// `print(args)`: the whole tracepoint record, as bpftrace prints a struct:
/// `{ .prev_comm = swapper/0, .prev_pid = 0, … }` (JSON: an object of the fields).
final class PrintRecordStatement: StmtNode {
  let record: RecordType
  init(record: RecordType) { self.record = record }

  override func exec(_ m: Machine) -> Flow {
    guard let raw = m.raw else { return .next }
    let out = m.output
    let json = out.format == .json
    out.append(json ? "{\"type\": \"value\", \"data\": {" : "{ ")
    for (index, field) in record.fields.enumerated() {
      if index > 0 { out.append(", ") }
      CValueFormatter.appendFieldLabel(field.name, json: json, to: out)
      appendField(field, raw: raw, size: m.rawSize, json: json, to: out)
    }
    out.append(json ? "}}\n" : " }\n")
    return .next
  }

  private func appendField(_ field: RecordField, raw: UnsafeRawPointer, size: Int, json: Bool, to out: OutputBuffer) {
    guard field.offset + min(field.size, 8) <= size else { return }
    let at = raw + field.offset
    switch (field.type, field.storage) {
    case (_, .dataLocation) where field.type.isString:
      let location = at.loadUnaligned(as: UInt32.self)
      let start = Int(location & 0xffff)
      let available = max(0, min(Int(location >> 16), size - start))
      appendString(raw + min(start, size), count: StringBytes.length(raw + min(start, size), available), json: json, to: out)
    case (.string, _):
      appendString(at, count: StringBytes.length(at, field.size), json: json, to: out)
    case (.array(.integer(let element), let count), .inline):
      let width = element.bits / 8
      out.appendByte(UInt8(ascii: "["))
      for i in 0..<count where field.offset + (i + 1) * width <= size {
        if i > 0 { out.append(",") }
        appendInteger(at + i * width, byteCount: width, isSigned: element.isSigned, to: out)
      }
      out.appendByte(UInt8(ascii: "]"))
    case (.integer(let t), _):
      appendInteger(at, byteCount: min(field.size, 8), isSigned: t.isSigned, to: out)
    case (.pointer, _):
      let value = at.loadUnaligned(as: UInt64.self)
      if json {
        out.appendUnsigned(value)
      } else {
        out.append("0x")
        ValueFormatter.appendHex(value, to: out)
      }
    default:
      out.append(json ? "null" : "?")
    }
  }

  private func appendInteger(_ p: UnsafeRawPointer, byteCount: Int, isSigned: Bool, to out: OutputBuffer) {
    var bits: UInt64 = 0
    withUnsafeMutableBytes(of: &bits) { $0.copyMemory(from: UnsafeRawBufferPointer(start: p, count: byteCount)) }
    if isSigned {
      let shift = UInt64(64 - byteCount * 8)
      out.appendDecimal(Int64(bitPattern: bits << shift) >> Int64(shift))
    } else {
      out.appendUnsigned(bits)
    }
  }

  private func appendString(_ p: UnsafeRawPointer, count: Int, json: Bool, to out: OutputBuffer) {
    guard json else {
      out.appendBytes(p.assumingMemoryBound(to: UInt8.self), count)
      return
    }
    out.appendByte(UInt8(ascii: "\""))
    ValueFormatter.appendJSONEscaped(p.assumingMemoryBound(to: UInt8.self), count, to: out)
    out.appendByte(UInt8(ascii: "\""))
  }
}
