import ScryLanguage

/// A printf format bound to its checked argument types, ready to format packed arguments with C's rules
/// (as bpftrace 0.17 hands them to the C library): no length modifier means `int`, so `%x` of -1 is
/// `ffffffff`; `h`/`hh` truncate to 16/8 bits; `l`/`ll`/`z`/`j`/`t` keep 64. Formats without allocating.
public final class CompiledPrintf {
  /// One piece of the format. Plain data (no arrays, strings or indirect enums inside), so
  /// walking the steps of every event costs no reference counting: with the literals inline and
  /// the types in the steps, retain and release were 40 % of a printf-heavy consumer's time.
  enum Step {
    /// `count` bytes of `literals` from `start`.
    case literal(start: Int, count: Int)
    case conversion(PrintfFormat.Conversion, offset: Int, argument: Argument)
  }

  /// How an argument is read, settled from its type once.
  enum Argument {
    /// A NUL-padded string slot of `capacity` bytes.
    case string(capacity: Int)
    /// An integer in an 8-byte slot.
    case integer
    /// Anything else (a symbol, a stack, a tuple…): formatted by `ValueFormatter` from
    /// `types[index]`, off the common path.
    case other(index: Int)
  }

  let steps: [Step]
  let literals: [UInt8]
  let types: [ScryType]
  /// json mode formats here first, then escapes into the output; also holds %s of non-string values.
  private let scratch = OutputBuffer(capturing: ())
  private let jsonScratch = OutputBuffer(capturing: ())

  public init(format: PrintfFormat, argumentTypes: [ScryType]) {
    var steps: [Step] = []
    var literals: [UInt8] = []
    var argument = 0
    var offset = 0
    for piece in format.pieces {
      switch piece {
      case .literal(let bytes):
        steps.append(.literal(start: literals.count, count: bytes.count))
        literals += bytes
      case .conversion(let c):
        let type = argument < argumentTypes.count ? argumentTypes[argument] : ScryType.int64
        let kind: Argument
        switch type {
        case .string(let capacity): kind = .string(capacity: capacity)
        case .integer(let integer) where integer.enumeration != nil && c.verb == UInt8(ascii: "s"):
          kind = .other(index: argument)
        case _ where type.isInteger: kind = .integer
        default: kind = .other(index: argument)
        }
        steps.append(.conversion(c, offset: offset, argument: kind))
        offset += argument < argumentTypes.count ? type.byteSize : 0
        argument += 1
      }
    }
    self.steps = steps
    self.literals = literals
    self.types = argumentTypes
  }

  /// Writes one printf call; json mode wraps it as `{"type": "printf", "data": "…"}`.
  public func write(arguments: UnsafeRawPointer, to out: OutputBuffer) {
    switch out.format {
    case .text:
      format(arguments, to: out)
    case .json:
      jsonScratch.reset()
      format(arguments, to: jsonScratch)
      out.append("{\"type\": \"printf\", \"data\": \"")
      out.append(ValueFormatter.jsonEscaped(jsonScratch.capturedString))
      out.append("\"}\n")
    }
  }

  func format(_ arguments: UnsafeRawPointer, to out: OutputBuffer) {
    steps.withUnsafeBufferPointer { steps in
      literals.withUnsafeBufferPointer { literals in
        for step in steps {
          switch step {
          case .literal(let start, let count):
            out.appendBytes(literals.baseAddress! + start, count)
          case .conversion(let c, let offset, let argument):
            convert(c, arguments + offset, argument: argument, to: out)
          }
        }
      }
    }
  }

  private func pad(_ n: Int, _ out: OutputBuffer) {
    if n > 0 { out.appendRepeated(UInt8(ascii: " "), count: n) }
  }

  private func convert(_ c: PrintfFormat.Conversion, _ p: UnsafeRawPointer, argument: Argument, to out: OutputBuffer) {
    let width = c.width ?? 0
    switch c.verb {
    case UInt8(ascii: "r") where c.bufferStyle != 0:
      guard case .other(let index) = argument, case .buffer(let capacity) = types[index] else { return }
      let n = Int(Swift.min(p.loadUnaligned(as: UInt64.self), UInt64(capacity)))
      let bytes = (p + 8).assumingMemoryBound(to: UInt8.self)
      for i in 0..<n {
        if c.bufferStyle == UInt8(ascii: "x") {
          out.append("\\x")
        } else if i > 0 {
          out.appendByte(UInt8(ascii: " "))
        }
        if bytes[i] < 16 { out.appendByte(UInt8(ascii: "0")) }
        ValueFormatter.appendHex(UInt64(bytes[i]), to: out)
      }
    case UInt8(ascii: "s"), UInt8(ascii: "r"):
      var bytes: UnsafePointer<UInt8>
      var n: Int
      var text = ""
      if case .string(let capacity) = argument {
        bytes = p.assumingMemoryBound(to: UInt8.self)
        n = ValueFormatter.stringLength(p, capacity: capacity)
      } else {
        scratch.reset()
        let type: ScryType
        switch argument {
        case .other(let index): type = types[index]
        case .integer, .string: type = .int64
        }
        if case .integer(let integer) = type, let enumeration = integer.enumeration {
          // An enum value as its enumerator's name; a value no enumerator has prints as a number.
          let value = Int64(bitPattern: p.loadUnaligned(as: UInt64.self))
          if let name = enumeration.names[value] { scratch.append(name) } else { scratch.appendDecimal(value) }
        } else {
          ValueFormatter.appendText(p, type: type, to: scratch)
        }
        text = scratch.capturedString
        n = text.utf8.count
        bytes = UnsafePointer<UInt8>(bitPattern: 1)!
      }
      if let precision = c.precision { n = Swift.min(n, precision) }
      if !c.leftAlign { pad(width - n, out) }
      if text.isEmpty {
        out.appendBytes(bytes, n)
      } else {
        out.append(String(decoding: Array(text.utf8.prefix(n)), as: UTF8.self))
      }
      if c.leftAlign { pad(width - n, out) }
    case UInt8(ascii: "c"):
      if !c.leftAlign { pad(width - 1, out) }
      out.appendByte(p.load(as: UInt8.self))
      if c.leftAlign { pad(width - 1, out) }
    default:
      convertInteger(c, p.loadUnaligned(as: UInt64.self), to: out)
    }
  }

  private func convertInteger(_ c: PrintfFormat.Conversion, _ raw: UInt64, to out: OutputBuffer) {
    let bits = c.integerBits
    let isSigned = c.verb == UInt8(ascii: "d") || c.verb == UInt8(ascii: "i")
    var magnitude = raw
    var negative = false
    var isPointer = false
    if c.verb == UInt8(ascii: "p") {
      isPointer = true
    } else if bits < 64 {
      let shift = UInt64(64 - bits)
      if isSigned {
        let s = Int64(bitPattern: raw << shift) >> Int64(shift)
        negative = s < 0
        magnitude = negative ? UInt64(bitPattern: 0 &- s) : UInt64(s)
      } else {
        magnitude = (raw << shift) >> shift
      }
    } else if isSigned {
      let s = Int64(bitPattern: raw)
      negative = s < 0
      magnitude = negative ? UInt64(bitPattern: 0 &- s) : UInt64(s)
    }
    if isPointer && magnitude == 0 {
      let nilText: StaticString = "(nil)"
      if !c.leftAlign { pad(c.width.map { $0 - 5 } ?? 0, out) }
      out.append(nilText)
      if c.leftAlign { pad(c.width.map { $0 - 5 } ?? 0, out) }
      return
    }
    let base: UInt64
    var upper = false
    switch c.verb {
    case UInt8(ascii: "x"), UInt8(ascii: "p"): base = 16
    case UInt8(ascii: "X"): (base, upper) = (16, true)
    case UInt8(ascii: "o"): base = 8
    default: base = 10
    }
    // Digits, most significant last, in a fixed stack buffer (22 octal digits at most).
    var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)
    withUnsafeMutableBytes(of: &buffer) { raw in
      let d = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
      let hex: StaticString = upper ? "0123456789ABCDEF" : "0123456789abcdef"
      var n = 0
      var v = magnitude
      while v != 0 {
        d[n] = hex.utf8Start[Int(v % base)]
        v /= base
        n += 1
      }
      var precision = c.precision ?? 1
      if c.verb == UInt8(ascii: "o") && c.alternate && precision <= n { precision = n + 1 }
      let zeros = Swift.max(precision - n, 0)
      var prefix: StaticString = ""
      if negative {
        prefix = "-"
      } else if isSigned && c.plusSign {
        prefix = "+"
      } else if isSigned && c.spaceSign {
        prefix = " "
      } else if isPointer || (c.alternate && magnitude != 0 && base == 16) {
        prefix = upper ? "0X" : "0x"
      }
      let body = prefix.utf8CodeUnitCount + zeros + n
      let fill = Swift.max((c.width ?? 0) - body, 0)
      let zeroFill = c.zeroPad && !c.leftAlign && c.precision == nil
      if !c.leftAlign && !zeroFill { pad(fill, out) }
      out.append(prefix)
      if zeroFill { out.appendRepeated(UInt8(ascii: "0"), count: fill) }
      out.appendRepeated(UInt8(ascii: "0"), count: zeros)
      var i = n - 1
      while i >= 0 {
        out.appendByte(d[i])
        i -= 1
      }
      if c.leftAlign { pad(fill, out) }
    }
  }
}
