/// Printing: every SystemTap print call becomes one Scry `printf`. Concatenation (`a . b`),
/// `sprintf` and `sprint` inside what is printed are spliced into the one format, since Scry's
/// strings are fixed-size slots with no concatenation; conversions follow each value's kind.
extension StapLowering {
  enum Piece {
    case text([UInt8])
    /// A value and its conversion (`%d`, `%-10s`).
    case value(Expr, conversion: [UInt8])
  }

  mutating func lowerPrint(_ f: TapsetFunction, args: [StapExpr], span: SourceSpan, prelude: inout [Stmt]) -> Expr {
    var pieces: [Piece] = []
    switch f {
    case .printf:
      guard let format = args.first, case .string(let bytes) = format.kind else {
        return missing(args.first?.span ?? span, "printf() needs a literal format string")
      }
      pieces = formatPieces(bytes, args: Array(args.dropFirst()), span: span, prelude: &prelude)
    case .print, .println:
      // `print(@hist_log(x))`: the histogram, as Scry prints one.
      if args.count == 1, case .extractor(let name, _, let inner) = args[0].kind, name.hasPrefix("hist"),
        let first = inner.first, let g = globalName(first), globals[g]?.isStatistic == true
      {
        var keys: [Expr] = []
        if case .index(_, _, let list) = first.kind { keys = list.map { lowerExpr($0, prelude: &prelude) } }
        return expr(.call(name: "print", nameSpan: span, args: [globalRef(g, extractor: name, keys: keys, span: args[0].span)]), span)
      }
      // `println(x)` of one value of a kind not known here: Scry's print(x) adds the newline.
      if f == .println, args.count == 1, kind(args[0]) == .unknown, !isSpliced(args[0]) {
        return expr(.call(name: "print", nameSpan: span, args: [lowerExpr(args[0], prelude: &prelude)]), span)
      }
      for arg in args { pieces += valuePieces(arg, prelude: &prelude) }
      if f == .println { pieces.append(.text([0x0A])) }
    case .printd, .printdln:
      guard let delimiter = args.first else { return missing(span, "\(f.rawValue)() needs a delimiter") }
      for (i, arg) in args.dropFirst().enumerated() {
        if i > 0 { pieces += valuePieces(delimiter, prelude: &prelude) }
        pieces += valuePieces(arg, prelude: &prelude)
      }
      if f == .printdln { pieces.append(.text([0x0A])) }
    default: return missing(span, "'\(f.rawValue)' does not print")
    }
    return formatCall("printf", pieces, span: span)
  }

  /// A string built at the event (`sprintf`, `a . b` outside printing): Scry's `sprintf` of the
  /// pieces, into a slot of SystemTap's MAXSTRINGLEN.
  mutating func buildString(_ pieces: [Piece], span: SourceSpan) -> Expr {
    // A lone string value needs no formatting.
    if pieces.count == 1, case .value(let value, let conversion) = pieces[0], conversion == Array("%s".utf8) { return value }
    return formatCall("sprintf", pieces, span: span)
  }

  /// One call of a printf-like function whose format is the pieces' text and conversions.
  mutating func formatCall(_ name: String, _ pieces: [Piece], span: SourceSpan) -> Expr {
    var format: [UInt8] = []
    var values: [Expr] = []
    for piece in pieces {
      switch piece {
      case .text(let bytes): for b in bytes { format += b == UInt8(ascii: "%") ? [b, b] : [b] }
      case .value(let value, let conversion):
        format += conversion
        values.append(value)
      }
    }
    return expr(.call(name: name, nameSpan: span, args: [expr(.string(format), span)] + values), span)
  }

  func isSpliced(_ e: StapExpr) -> Bool {
    switch e.kind {
    case .binary(".", _, _), .string: return true
    case .call(let name, _, _): return name == "sprintf" || name == "sprint"
    case .target(let n): return n.hasPrefix("$")
    default: return false
    }
  }

  /// A printed value as pieces: literals as text, concatenations and sprintf spliced.
  mutating func valuePieces(_ e: StapExpr, prelude: inout [Stmt]) -> [Piece] {
    switch e.kind {
    case .string(let bytes): return [.text(bytes)]
    case .binary(".", let a, let b): return valuePieces(a, prelude: &prelude) + valuePieces(b, prelude: &prelude)
    case .call("sprint", _, let args): return args.flatMap { valuePieces($0, prelude: &prelude) }
    case .call("sprintf", _, let args):
      guard let format = args.first, case .string(let bytes) = format.kind else {
        return [.value(missing(e.span, "sprintf() needs a literal format string"), conversion: Array("%d".utf8))]
      }
      return formatPieces(bytes, args: Array(args.dropFirst()), span: e.span, prelude: &prelude)
    case .target(let n) where n == "$vars" || n == "$parms": return targetVariables(span: e.span)
    case .name("argstr") where locals["argstr"] == nil && mapping?.syscall != nil && mapping?.isReturn == false && record != nil:
      return argumentPieces(span: e.span)
    default:
      // SystemTap's numbers are 64-bit longs; Scry's printf follows C, where `%d` is an int.
      let conversion = kind(e) == .string ? "%s" : "%ld"
      return [.value(lowerExpr(e, prelude: &prelude), conversion: Array(conversion.utf8))]
    }
  }

  /// `argstr` of `syscall.NAME`: the syscall's arguments in order, `, ` between them: integers in
  /// decimal, `const char *` as a quoted, escaped string, other pointers in hex. SystemTap's tapset writes
  /// each syscall's own (flags by name, `AT_FDCWD`), which this does not.
  mutating func argumentPieces(span: SourceSpan) -> [Piece] {
    guard let record else { return [] }
    var pieces: [Piece] = []
    for field in record.fields where !field.name.hasPrefix("common_") && field.name != "__syscall_nr" {
      if !pieces.isEmpty { pieces.append(.text(Array(", ".utf8))) }
      let read = expr(.field(expr(.identifier("args"), span), name: field.name, isArrow: false), span)
      if isCharPointer(field.type) && field.cType.hasPrefix("const char") {
        // Quoted and escaped, as the tapset's user_string_quoted() writes it.
        let text = expr(.call(name: "str", nameSpan: span, args: [read]), span)
        let quoted = expr(.call(name: "text_strn", nameSpan: span, args: [text, expr(.integer(0), span), expr(.integer(1), span)]), span)
        pieces.append(.value(quoted, conversion: Array("%s".utf8)))
      } else if case .pointer = field.type {
        pieces.append(.value(read, conversion: Array("0x%lx".utf8)))
      } else {
        // Syscall fields are 8 bytes wide whatever their C type: an `int` (`dfd` of -100) prints as one.
        let isInt = field.cType.hasSuffix("int") && !field.cType.contains("long")
        pieces.append(.value(read, conversion: Array((isInt ? "%d" : "%ld").utf8)))
      }
    }
    return pieces
  }

  /// `$$vars`: every field of the tracepoint's record, `name=value` separated by spaces.
  mutating func targetVariables(span: SourceSpan) -> [Piece] {
    guard let record else {
      _ = missing(span, "'$$vars' needs one tracepoint whose fields are known", hint: "name the tracepoint in full: kernel.trace(\"sched:sched_switch\")")
      return []
    }
    var pieces: [Piece] = []
    for field in record.fields where !field.name.hasPrefix("common_") && (field.type.isInteger || field.type.isString) {
      pieces.append(.text(Array(((pieces.isEmpty ? "" : " ") + field.name + "=").utf8)))
      let read = expr(.field(expr(.identifier("args"), span), name: field.name, isArrow: false), span)
      pieces.append(.value(read, conversion: Array((field.type.isString ? "%s" : "%#lx").utf8)))
    }
    return pieces
  }

  /// A format's text and conversions: a `%s` whose argument is a concatenation or `sprintf` is
  /// spliced; `%s` of an integer prints it as `%d` (SystemTap converts), `%d` of a string as `%s`.
  mutating func formatPieces(_ format: [UInt8], args: [StapExpr], span: SourceSpan, prelude: inout [Stmt]) -> [Piece] {
    var pieces: [Piece] = []
    var text: [UInt8] = []
    var i = 0
    var next = 0
    while i < format.count {
      let c = format[i]
      guard c == UInt8(ascii: "%") else {
        text.append(c)
        i += 1
        continue
      }
      if i + 1 < format.count && format[i + 1] == UInt8(ascii: "%") {
        text.append(c)
        i += 2
        continue
      }
      var j = i + 1
      var spec: [UInt8] = [c]
      while j < format.count, "-+ #0123456789.".utf8.contains(format[j]) {
        spec.append(format[j])
        j += 1
      }
      while j < format.count, "lhzjt".utf8.contains(format[j]) { j += 1 }
      guard j < format.count else {
        error(span, "the format ends inside a conversion")
        return pieces
      }
      let verb = format[j]
      i = j + 1
      guard next < args.count else {
        error(span, "the format has more conversions than arguments")
        return pieces
      }
      let arg = args[next]
      next += 1
      if !text.isEmpty {
        pieces.append(.text(text))
        text = []
      }
      if verb == UInt8(ascii: "s") && spec.count == 1 && isSpliced(arg) {
        pieces += valuePieces(arg, prelude: &prelude)
        continue
      }
      var v = verb
      let k = kind(arg)
      if v == UInt8(ascii: "s") && k == .integer { v = UInt8(ascii: "d") }
      if "dixXuo".utf8.contains(v) && k == .string { v = UInt8(ascii: "s") }
      if v == UInt8(ascii: "i") { v = UInt8(ascii: "d") }
      // SystemTap's integers are 64-bit whatever the conversion's length modifier says.
      let long: [UInt8] = "dxXuo".utf8.contains(v) ? [UInt8(ascii: "l")] : []
      pieces.append(.value(lowerExpr(arg, prelude: &prelude), conversion: spec + long + [v]))
    }
    if !text.isEmpty { pieces.append(.text(text)) }
    if next < args.count { error(args[next].span, "the format has fewer conversions than arguments") }
    return pieces
  }

  /// The `end` SystemTap adds for globals written and never read (its `add_global_var_display`):
  /// `name=0x5`, `arr["k",1]=0x3` by decreasing value, `s="text"`,
  /// `x @count=3 @min=1 @max=3 @sum=6 @avg=2` (`x @count=0x0` when empty), in declaration order.
  mutating func exitPrinter() -> ProbeBlock? {
    let printed = globalOrder.filter { globals[$0]!.isWritten && !globals[$0]!.isRead }
    guard !printed.isEmpty else { return nil }
    let span = globals[printed[0]]!.span
    locals = [:]
    mapping = nil
    record = nil
    var statements: [Stmt] = []
    for name in printed {
      let use = globals[name]!
      let keyCount = use.keyKinds.count
      temporaries += 1
      let pair = "$__kv\(temporaries)"
      var format = Array(name.utf8)
      var values: [Expr] = []
      if use.isArray {
        format += Array("[".utf8)
        for i in 0..<keyCount {
          if i > 0 { format.append(UInt8(ascii: ",")) }
          format += Array((use.keyKinds[i] == .string ? "\"%s\"" : "%ld").utf8)
          var key = expr(.tupleIndex(expr(.variable(pair), use.span), 0), use.span)
          if keyCount > 1 { key = expr(.tupleIndex(key, i), use.span) }
          values.append(key)
        }
        format += Array("]".utf8)
      }
      if use.isStatistic {
        for extractor in ["count", "min", "max", "sum", "avg"] {
          format += Array(" @\(extractor)=%ld".utf8)
          func keys() -> [Expr] {
            (0..<keyCount).map { i in
              let key = expr(.tupleIndex(expr(.variable(pair), use.span), 0), use.span)
              return keyCount > 1 ? expr(.tupleIndex(key, i), use.span) : key
            }
          }
          if extractor == "avg" {
            let sum = globalRef(name, extractor: "sum", keys: keys(), span: use.span)
            values.append(expr(.binary(.divide, sum, globalRef(name, extractor: "count", keys: keys(), span: use.span)), use.span))
          } else {
            values.append(globalRef(name, extractor: extractor, keys: keys(), span: use.span))
          }
        }
      } else {
        format += Array((use.kind == .string ? "=\"%s\"" : "=0x%lx").utf8)
        values.append(use.isArray ? expr(.tupleIndex(expr(.variable(pair), use.span), 1), use.span) : globalRef(name, keys: [], span: use.span))
      }
      format.append(0x0A)
      let print = stmt(.expression(expr(.call(name: "printf", nameSpan: use.span, args: [expr(.string(format), use.span)] + values), use.span)), use.span)
      if use.isArray {
        let map = globalRef(name, extractor: use.isStatistic ? "count" : nil, keys: [], span: use.span)
        let loop = stmt(.forMap(variable: pair, variableSpan: use.span, map: map, body: Block(span: use.span, statements: [print])), use.span)
        mapLoopOrders[loop.id] = MapLoopOrder(sortKey: .value, descending: true, limit: nil)
        statements.append(loop)
      } else if use.isStatistic {
        let empty = expr(.binary(.equal, globalRef(name, extractor: "count", keys: [], span: use.span), expr(.integer(0), use.span)), use.span)
        let none = expr(.call(name: "printf", nameSpan: use.span, args: [expr(.string(Array("\(name) @count=0x0\n".utf8)), use.span)]), use.span)
        statements.append(stmt(.ifElse(condition: empty, then: Block(span: use.span, statements: [stmt(.expression(none), use.span)]),
          elseBranch: Block(span: use.span, statements: [print])), use.span))
      } else {
        statements.append(print)
      }
    }
    return block([ProbeSpec(span: span, provider: "END", parts: [], partSpans: [])],
      guardedByErrors(statements, isErrorProbe: false, span: span), span: span)
  }
}
