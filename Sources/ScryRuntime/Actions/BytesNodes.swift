import Glibc
import ScryLanguage

final class BytesConstant: BytesNode {
  let bytes: Scratch
  init(_ value: [UInt8], type: ScryType) {
    bytes = Scratch(type.byteSize)
    super.init(type: type)
    if type.isString {
      value.withUnsafeBytes { StringBytes.store($0.baseAddress!, length: $0.count, into: bytes.pointer, capacity: type.byteSize) }
    } else {
      // Raw bytes (`pton`'s address): all of them, no terminator.
      bytes.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: type.byteSize)
      value.withUnsafeBytes { bytes.pointer.copyMemory(from: $0.baseAddress!, byteCount: Swift.min($0.count, type.byteSize)) }
    }
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.copyMemory(from: bytes.pointer, byteCount: byteSize)
  }
}

final class CommValue: BytesNode {
  init() { super.init(type: .comm) }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) { m.comm().store(to: destination) }
}

/// A name its route gives the running event: the probe's (`probe`) or, in a uprobe, the probed
/// function's (`func`).
final class RouteNameValue: BytesNode {
  enum Name { case probe, function }
  let name: Name
  init(_ name: Name, type: ScryType) {
    self.name = name
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    let text = name == .probe ? m.probeName : m.probeFunction
    if let base = text.baseAddress {
      StringBytes.store(base, length: text.count, into: destination, capacity: byteSize)
    } else {
      destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    }
  }
}

/// `char name[N]` in a tracepoint record.
final class RecordCharArray: BytesNode {
  let offset: Int
  let count: Int
  init(offset: Int, count: Int, type: ScryType) {
    self.offset = offset
    self.count = count
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    guard let raw = m.raw, offset + count <= m.rawSize else {
      destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
      return
    }
    let length = StringBytes.length(raw + offset, count)
    StringBytes.store(raw + offset, length: length, into: destination, capacity: byteSize)
  }
}

/// A struct or array the kernel copied at the event: its bytes as they were in memory.
final class RecordBytes: BytesNode {
  let offset: Int
  init(offset: Int, type: ScryType) {
    self.offset = offset
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    guard let raw = m.raw, offset + byteSize <= m.rawSize else {
      destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
      return
    }
    destination.copyMemory(from: raw + offset, byteCount: byteSize)
  }
}

/// `__data_loc char[] name`: a u32 holding (length << 16 | offset) of the string in the record.
final class RecordDataLocationString: BytesNode {
  let offset: Int
  init(offset: Int, type: ScryType) {
    self.offset = offset
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    guard let raw = m.raw, offset + 4 <= m.rawSize else {
      destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
      return
    }
    let location = raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    let start = Int(location & 0xffff)
    let available = min(Int(location >> 16), max(0, m.rawSize - start))
    let length = start < m.rawSize ? StringBytes.length(raw + start, available) : 0
    StringBytes.store(raw + min(start, m.rawSize), length: length, into: destination, capacity: byteSize)
  }
}

final class VariableBytes: BytesNode {
  let offset: Int
  init(offset: Int, type: ScryType) {
    self.offset = offset
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.copyMemory(from: m.variables + offset, byteCount: byteSize)
  }
}

/// Integers laid out as 8 bytes: to put an int into a tuple, key or printf argument.
final class IntAsBytes: BytesNode {
  let operand: IntNode
  init(_ operand: IntNode, type: ScryType) {
    self.operand = operand
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.storeBytes(of: operand.eval(m), as: UInt64.self)
  }
}

/// `(a, b, …)`: elements packed in order.
final class TupleValue: BytesNode {
  let elements: [BytesNode]
  private let parts: [Unretained<BytesNode>]
  init(_ elements: [BytesNode], type: ScryType) {
    self.elements = elements
    self.parts = elements.unretained
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    var offset = 0
    for part in parts {
      offset += part.with { node in
        node.eval(m, into: destination + offset)
        return node.byteSize
      }
    }
  }
}

/// A slice of another bytes value: a tuple element.
final class BytesSlice: BytesNode {
  let source: BytesNode
  let offset: Int
  let scratch: Scratch
  init(_ source: BytesNode, offset: Int, type: ScryType) {
    self.source = source
    self.offset = offset
    // Room past the value for a member sliced wider than it is (zeros), never beyond the buffer.
    self.scratch = Scratch(max(source.byteSize, offset + type.byteSize))
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    source.eval(m, into: scratch.pointer)
    destination.copyMemory(from: scratch.pointer + offset, byteCount: byteSize)
  }
}

/// Re-lays a value into a wider layout (a string into a larger slot, a tuple whose strings widen).
final class BytesConvert: BytesNode {
  let source: BytesNode
  let scratch: Scratch
  init(_ source: BytesNode, to type: ScryType) {
    self.source = source
    self.scratch = Scratch(source.byteSize)
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    source.eval(m, into: scratch.pointer)
    BytesConvert.convert(scratch.pointer, from: source.type, into: destination, to: type)
  }

  static func convert(
    _ source: UnsafeRawPointer, from: ScryType, into destination: UnsafeMutableRawPointer, to: ScryType
  ) {
    switch (from, to) {
    case (.string(let a), .string(let b)):
      StringBytes.store(source, length: StringBytes.length(source, a), into: destination, capacity: b)
    case (.tuple(let fs), .tuple(let ts)) where fs.count == ts.count:
      var i = 0
      var o = 0
      for (f, t) in zip(fs, ts) {
        convert(source + i, from: f, into: destination + o, to: t)
        i += f.byteSize
        o += t.byteSize
      }
    default:
      let n = min(from.byteSize, to.byteSize)
      destination.copyMemory(from: source, byteCount: n)
      if to.byteSize > n { (destination + n).initializeMemory(as: UInt8.self, repeating: 0, count: to.byteSize - n) }
    }
  }
}

final class BytesTernary: BytesNode {
  let condition: IntNode
  let then: BytesNode
  let otherwise: BytesNode
  init(_ condition: IntNode, _ then: BytesNode, _ otherwise: BytesNode, type: ScryType) {
    self.condition = condition
    self.then = then
    self.otherwise = otherwise
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    if condition.eval(m) != 0 { then.eval(m, into: destination) } else { otherwise.eval(m, into: destination) }
  }
}

/// `str(s, n)` of a string: truncates to n - 1 characters.
final class StringTruncate: BytesNode {
  let source: BytesNode
  let length: IntNode
  let scratch: Scratch
  init(_ source: BytesNode, length: IntNode, type: ScryType) {
    self.source = source
    self.length = length
    self.scratch = Scratch(source.byteSize)
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    source.eval(m, into: scratch.pointer)
    let limit = Int(clamping: Int64(bitPattern: length.eval(m)))
    let n = min(StringBytes.length(scratch.pointer, source.byteSize), max(0, limit - 1))
    StringBytes.store(scratch.pointer, length: n, into: destination, capacity: byteSize)
  }
}

/// An integer formatted as decimal text: `str(42)`.
final class IntAsString: BytesNode {
  let operand: IntNode
  let isSigned: Bool
  init(_ operand: IntNode, isSigned: Bool, type: ScryType) {
    self.operand = operand
    self.isSigned = isSigned
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    let v = operand.eval(m)
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
    let count = withUnsafeMutableBytes(of: &digits) { buffer -> Int in
      var magnitude = isSigned && Int64(bitPattern: v) < 0 ? 0 &- v : v
      var i = buffer.count
      repeat {
        i -= 1
        buffer[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
        magnitude /= 10
      } while magnitude > 0
      if isSigned && Int64(bitPattern: v) < 0 {
        i -= 1
        buffer[i] = UInt8(ascii: "-")
      }
      let n = buffer.count - i
      StringBytes.store(buffer.baseAddress! + i, length: n, into: destination, capacity: byteSize)
      return n
    }
    _ = count
  }
}

/// `strftime(fmt, ns)`: formats a time (nanoseconds since boot, as bpftrace) in local time.
/// `strftime(fmt, ns)`: boot-relative nanoseconds formatted as local time. `%f` (microseconds,
/// bpftrace's addition) is not the C library's, so the format is split around it once, here.
final class StrftimeValue: BytesNode {
  /// The format's pieces between `%f`s, each NUL-terminated for strftime(3).
  let pieces: [[CChar]]
  let nanoseconds: IntNode
  init(format: [UInt8], nanoseconds: IntNode) {
    var pieces: [[CChar]] = [[]]
    var i = 0
    while i < format.count {
      if format[i] == UInt8(ascii: "%"), i + 1 < format.count {
        if format[i + 1] == UInt8(ascii: "f") {
          pieces.append([])
          i += 2
          continue
        }
        // `%%` and every other conversion pass through whole, so `%%f` stays literal.
        pieces[pieces.count - 1] += [CChar(bitPattern: format[i]), CChar(bitPattern: format[i + 1])]
        i += 2
        continue
      }
      pieces[pieces.count - 1].append(CChar(bitPattern: format[i]))
      i += 1
    }
    self.pieces = pieces.map { $0 + [0] }
    self.nanoseconds = nanoseconds
    super.init(type: .defaultString)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    // bpftrace's strftime takes boot-relative nanoseconds and adds the boot time.
    let bootOffset = Clock.realtimeNanoseconds() &- Clock.monotonicNanoseconds()
    let wall = nanoseconds.eval(m) &+ bootOffset
    var seconds = time_t(wall / 1_000_000_000)
    var parts = tm()
    localtime_r(&seconds, &parts)
    let out = destination.assumingMemoryBound(to: CChar.self)
    var n = 0
    for (index, piece) in pieces.enumerated() {
      if index > 0 { n += Self.microseconds(wall, into: out + n, room: byteSize - 1 - n) }
      n += piece.withUnsafeBufferPointer { strftime(out + n, byteSize - n, $0.baseAddress!, &parts) }
    }
    (destination + n).initializeMemory(as: UInt8.self, repeating: 0, count: byteSize - n)
  }

  /// Six digits of the microseconds within the second, as many as fit.
  static func microseconds(_ wall: UInt64, into out: UnsafeMutablePointer<CChar>, room: Int) -> Int {
    var value = (wall % 1_000_000_000) / 1000
    let count = Swift.min(6, Swift.max(room, 0))
    for i in stride(from: 5, through: 0, by: -1) {
      if i < count { out[i] = CChar(48 + Int(value % 10)) }
      value /= 10
    }
    return count
  }
}
