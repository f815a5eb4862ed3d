import Glibc
import ScryLanguage
import ScryPlan

/// SystemTap's string building and string functions, over fixed-size slots: each node owns its
/// scratch space, so an event formats, cuts and measures strings without allocating.

/// `sprintf(fmt, args…)` and `a . b`: printf's text in a string slot, cut to its capacity.
final class FormattedString: BytesNode {
  let printf: CompiledPrintf
  let arguments: TupleValue
  let scratch: Scratch
  let text = OutputBuffer(capturing: ())
  init(format: PrintfFormat, arguments: [BytesNode], type: ScryType) {
    self.arguments = TupleValue(arguments, type: .tuple(arguments.map(\.type)))
    self.printf = CompiledPrintf(format: format, argumentTypes: arguments.map(\.type))
    self.scratch = Scratch(self.arguments.byteSize)
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    arguments.eval(m, into: scratch.pointer)
    text.reset()
    printf.format(scratch.pointer, to: text)
    // The last byte stays NUL: a full slot is a string of capacity - 1 bytes, as in SystemTap.
    let n = text.copyCaptured(into: destination, capacity: byteSize - 1)
    (destination + n).initializeMemory(as: UInt8.self, repeating: 0, count: byteSize - n)
  }
}

/// `substr(s, start, length)`: empty when start is outside the string, as SystemTap's tapset.
final class SubstringValue: BytesNode {
  let source: BytesNode
  let start: IntNode
  let length: IntNode
  let scratch: Scratch
  init(_ source: BytesNode, start: IntNode, length: IntNode, type: ScryType) {
    self.source = source
    self.start = start
    self.length = length
    self.scratch = Scratch(source.byteSize)
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    source.eval(m, into: scratch.pointer)
    let total = StringBytes.length(scratch.pointer, source.byteSize)
    let from = Int(clamping: Int64(bitPattern: start.eval(m)))
    let wanted = Int(clamping: Int64(bitPattern: length.eval(m)))
    guard from >= 0, from < total, wanted > 0 else {
      destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
      return
    }
    let n = min(wanted, total - from, byteSize - 1)
    StringBytes.store(scratch.pointer + from, length: n, into: destination, capacity: byteSize)
  }
}

/// `strlen(s)`.
final class StringLength: IntNode {
  let source: BytesNode
  let scratch: Scratch
  init(_ source: BytesNode) {
    self.source = source
    self.scratch = Scratch(source.byteSize)
  }
  override func eval(_ m: Machine) -> UInt64 {
    source.eval(m, into: scratch.pointer)
    return UInt64(StringBytes.length(scratch.pointer, source.byteSize))
  }
}

/// `strtol(s, base)`: C's strtoll over the slot (which always holds a NUL: one byte more).
final class StringToInteger: IntNode {
  let source: BytesNode
  let base: IntNode
  let scratch: Scratch
  init(_ source: BytesNode, base: IntNode) {
    self.source = source
    self.base = base
    self.scratch = Scratch(source.byteSize + 1)
  }
  override func eval(_ m: Machine) -> UInt64 {
    source.eval(m, into: scratch.pointer)
    let base = Int64(bitPattern: self.base.eval(m))
    // strtoll takes bases 0 and 2 to 36; SystemTap passes others through, which C rejects with 0.
    guard base == 0 || (2...36).contains(base) else { return 0 }
    return UInt64(bitPattern: Int64(strtoll(scratch.pointer.assumingMemoryBound(to: CChar.self), nil, Int32(base))))
  }
}

/// `ctime(seconds)`: `Tue Dec  1 07:26:56 2026` in UTC, as SystemTap's tapset prints it;
/// `<invalid time>` for seconds C's calendar cannot hold.
final class CalendarTime: BytesNode {
  let seconds: IntNode
  let format: [CChar] = Array("%a %b %e %H:%M:%S %Y".utf8CString)
  let invalid: [UInt8] = Array("<invalid time>".utf8)
  init(_ seconds: IntNode, type: ScryType) {
    self.seconds = seconds
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    var time = time_t(Int64(bitPattern: seconds.eval(m)))
    var parts = tm()
    var n = 0
    if gmtime_r(&time, &parts) != nil {
      n = format.withUnsafeBufferPointer {
        strftime(destination.assumingMemoryBound(to: CChar.self), byteSize, $0.baseAddress!, &parts)
      }
    }
    if n == 0 {
      n = min(invalid.count, byteSize - 1)
      invalid.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: n) }
    }
    (destination + n).initializeMemory(as: UInt8.self, repeating: 0, count: byteSize - n)
  }
}

/// `str_replace(s, target, replacement)`: every occurrence of the target, left to right and not
/// overlapping, replaced; an empty target changes nothing. The result is cut to the slot.
final class ReplacedString: BytesNode {
  let source: BytesNode
  let target: BytesNode
  let replacement: BytesNode
  let scratch: Scratch
  init(_ source: BytesNode, target: BytesNode, replacement: BytesNode, type: ScryType) {
    self.source = source
    self.target = target
    self.replacement = replacement
    self.scratch = Scratch(source.byteSize + target.byteSize + replacement.byteSize)
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    let text = scratch.pointer
    let needle = text + source.byteSize
    let with = needle + target.byteSize
    source.eval(m, into: text)
    target.eval(m, into: needle)
    replacement.eval(m, into: with)
    let textLength = StringBytes.length(text, source.byteSize)
    let needleLength = StringBytes.length(needle, target.byteSize)
    let withLength = StringBytes.length(with, replacement.byteSize)
    let room = byteSize - 1
    var written = 0
    func put(_ p: UnsafeRawPointer, _ n: Int) {
      let k = min(n, room - written)
      if k > 0 { (destination + written).copyMemory(from: p, byteCount: k) }
      written += max(k, 0)
    }
    var i = 0
    while i < textLength && written < room {
      if needleLength > 0 && i + needleLength <= textLength && memcmp(text + i, needle, needleLength) == 0 {
        put(with, withLength)
        i += needleLength
      } else {
        put(text + i, 1)
        i += 1
      }
    }
    (destination + written).initializeMemory(as: UInt8.self, repeating: 0, count: byteSize - written)
  }
}

/// `stringat(s, position)`: the byte at a 0-based position; 0 outside the string (SystemTap
/// raises an error there, which Scry's actions do not have).
final class StringByte: IntNode {
  let source: BytesNode
  let position: IntNode
  let scratch: Scratch
  init(_ source: BytesNode, position: IntNode) {
    self.source = source
    self.position = position
    self.scratch = Scratch(source.byteSize)
  }
  override func eval(_ m: Machine) -> UInt64 {
    source.eval(m, into: scratch.pointer)
    let at = Int64(bitPattern: position.eval(m))
    guard at >= 0, at < Int64(StringBytes.length(scratch.pointer, source.byteSize)) else { return 0 }
    return UInt64(scratch.pointer.load(fromByteOffset: Int(at), as: UInt8.self))
  }
}
