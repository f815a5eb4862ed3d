import ScryLanguage

/// Renders the action IR as indented text for `scry --plan` and tests: statements one per line,
/// expressions as `(operator operands…)` with maps by name, variables and record fields by offset.
public struct IRPrinter {
  /// Map names, by the index the IR uses.
  let mapNames: [String]

  public init(maps: [MapInfo]) { self.mapNames = maps.map(\.name) }

  /// One action: its predicate and statements, each line prefixed by `indent`.
  public func render(_ action: ProbeAction, indent: String = "") -> String {
    var lines: [String] = []
    if let predicate = action.predicate { lines.append(indent + "predicate " + int(predicate)) }
    append(action.body, indent: indent, to: &lines)
    return lines.map { $0 + "\n" }.joined()
  }

  /// ` sorted by value descending limit 5`
  static func describe(_ order: MapLoopOrder) -> String {
    var text = ""
    switch order.sortKey {
    case .value?: text += " sorted by value"
    case .key(let element)?: text += " sorted by key.\(element)"
    case nil: break
    }
    if order.sortKey != nil { text += order.descending ? " descending" : " ascending" }
    if let limit = order.limit { text += " limit \(limit)" }
    return text
  }

  func append(_ statements: [IRStatement], indent: String, to lines: inout [String]) {
    for statement in statements { append(statement, indent: indent, to: &lines) }
  }

  func append(_ statement: IRStatement, indent: String, to lines: inout [String]) {
    let inner = indent + "  "
    switch statement {
    case .ifElse(let condition, let then, let otherwise):
      lines.append(indent + "if " + int(condition))
      append(then, indent: inner, to: &lines)
      if let otherwise {
        lines.append(indent + "else")
        append(otherwise, indent: inner, to: &lines)
      }
    case .loop(let condition, let count, let body):
      lines.append(indent + (condition.map { "while " + int($0) } ?? "unroll " + (count.map { int($0) } ?? "?")))
      append(body, indent: inner, to: &lines)
    case .rangeLoop(let offset, let start, let end, let body):
      lines.append(indent + "for var+\(offset) in \(int(start)) ..< \(int(end))")
      append(body, indent: inner, to: &lines)
    case .mapLoop(let map, let offset, let body, let order):
      lines.append(indent + "for var+\(offset) in \(mapName(map))" + (order.map(Self.describe) ?? ""))
      append(body, indent: inner, to: &lines)
    case .block(let body):
      lines.append(indent + "block")
      append(body, indent: inner, to: &lines)
    default:
      lines.append(indent + simple(statement))
    }
  }

  /// A statement inside an expression, nested statements included, on one line.
  func inline(_ statement: IRStatement) -> String {
    var lines: [String] = []
    append(statement, indent: "", to: &lines)
    return "{" + lines.map { $0.trimmingPrefix(while: { $0 == " " }) }.joined(separator: "; ") + "}"
  }

  /// A statement without nested statements, on one line.
  func simple(_ statement: IRStatement) -> String {
    switch statement {
    case .evaluate(let e): return "eval " + int(e)
    case .storeVariable(let offset, let e): return "var+\(offset) = " + int(e)
    case .storeVariableBytes(let offset, let e): return "var+\(offset) = " + bytes(e)
    case .mapStore(let map, let key, let e): return element(map, key) + " = " + int(e)
    case .mapStoreBytes(let map, let key, let e): return element(map, key) + " = " + bytes(e)
    case .aggregate(let map, let key, let kind, let operand):
      return element(map, key) + " = \(kind.description)(" + (operand.map { int($0) } ?? "") + ")"
    case .mapDelete(let map, let key, _): return "delete " + element(map, key)
    case .mapDeleteMatching(let map, let key, let matched):
      let shown = zip(key, matched).map { $1 ? bytes($0) : "*" }
      return "delete " + mapName(map) + "[" + shown.joined(separator: ", ") + "]"
    case .mapReset(let map, let keepsKeys): return (keepsKeys ? "zero " : "clear ") + mapName(map)
    case .formatted(let format, let arguments, let effect):
      return "\(effect.rawValue) " + quoted(format.text) + list(arguments.map { bytes($0) })
    case .printMap(let map, let top, let divisor):
      return "print " + mapName(map) + (top.map { " top " + int($0) } ?? "") + (divisor.map { " div " + int($0) } ?? "")
    case .printValue(let e): return "print " + bytes(e)
    case .printRecord(let record): return "print record \(record.name)"
    case .exit(let code): return "exit" + (code.map { " " + int($0) } ?? "")
    case .time: return "time"
    case .signal(let e): return "signal " + int(e)
    case .unwatch(let e): return "unwatch " + int(e)
    case .join(let offset, let count, let length, _, _): return "join record+\(offset) (\(count) x \(length) bytes)"
    case .flow(let flow): return flow.rawValue
    case .ifElse, .loop, .rangeLoop, .mapLoop, .block: return "(nested)"
    }
  }

  public func int(_ e: IntExpr) -> String {
    switch e {
    case .constant(let v): return "\(Int64(bitPattern: v))"
    case .event(let field): return field.rawValue
    case .record(let offset, let count, let signed): return "record\(signed ? "s" : "u")\(count * 8)+\(offset)"
    case .variable(let offset): return "var+\(offset)"
    case .fromBytes(let source, let offset): return "(int " + bytes(source) + " +\(offset))"
    case .convert(let operand, let bits, let signed): return "(\(signed ? "int" : "uint")\(bits) " + int(operand) + ")"
    case .unary(let op, let operand): return "(\(op.rawValue) " + int(operand) + ")"
    case .binary(let op, let a, let b, let signed): return "(\(op.rawValue)\(signed ? "" : "u") " + int(a) + " " + int(b) + ")"
    case .logicalAnd(let a, let b): return "(&& " + int(a) + " " + int(b) + ")"
    case .logicalOr(let a, let b): return "(|| " + int(a) + " " + int(b) + ")"
    case .ternary(let c, let a, let b): return "(? " + int(c) + " " + int(a) + " " + int(b) + ")"
    case .bytesEqual(let a, let b, let negated): return "(\(negated ? "bytes!=" : "bytes==") " + bytes(a) + " " + bytes(b) + ")"
    case .stringCompare(let a, let b, let limit): return "(strncmp " + bytes(a) + " " + bytes(b) + " \(limit))"
    case .stringContains(let a, let b): return "(strcontains " + bytes(a) + " " + bytes(b) + ")"
    case .mapRead(let map, let key, _, _): return element(map, key)
    case .mapUpdate(let map, let key, let operation, let operand, let returnsOld):
      return update(element(map, key), operation, operand, returnsOld)
    case .variableUpdate(let offset, let operation, let operand, let returnsOld):
      return update("var+\(offset)", operation, operand, returnsOld)
    case .mapHasKey(let map, let key): return "(has_key " + element(map, key) + ")"
    case .mapLength(let map): return "(len " + mapName(map) + ")"
    case .byteSwap(let value, let bits): return "(bswap\(bits) " + int(value) + ")"
    case .stringLength(let value): return "(strlen " + bytes(value) + ")"
    case .stringToInteger(let value, let base): return "(strtol " + bytes(value) + " " + int(base) + ")"
    case .stringByte(let value, let position): return "(stringat " + bytes(value) + " " + int(position) + ")"
    case .sequence(let body, let value): return "(block" + list(body.map { inline($0) }) + " " + int(value) + ")"
    }
  }

  public func bytes(_ e: BytesExpr) -> String {
    switch e {
    case .constant(let value, _): return quoted(value)
    case .comm: return "comm"
    case .probeName: return "probe"
    case .probeFunction: return "func"
    case .recordChars(let offset, let count, _): return "record.chars\(count)+\(offset)"
    case .recordDataLocationString(let offset, _): return "record.data_loc+\(offset)"
    case .recordBuffer(let offset, let count, _): return "record.bytes\(count)+\(offset)"
    case .recordBytes(let offset, let type): return "record.value(\(type))+\(offset)"
    case .capturedString(let offset, let length, _, _): return "captured.string\(length)+\(offset)"
    case .variable(let offset, let type): return "var+\(offset):\(type)"
    case .fromInt(let value, let type): return int(value) + ":\(type)"
    case .tuple(let elements, _): return "(tuple" + list(elements.map { bytes($0) }) + ")"
    case .slice(let source, let offset, let type): return "(slice " + bytes(source) + " +\(offset) \(type))"
    case .convert(let source, let type): return "(as \(type) " + bytes(source) + ")"
    case .ternary(let c, let a, let b, _): return "(? " + int(c) + " " + bytes(a) + " " + bytes(b) + ")"
    case .truncate(let source, let length, _): return "(truncate " + bytes(source) + " " + int(length) + ")"
    case .digits(let value, _, _): return "(digits " + int(value) + ")"
    case .strftime(_, let ns): return "(strftime " + int(ns) + ")"
    case .mapRead(let map, let key, _, _): return element(map, key)
    case .inetAddress(let family, let address): return "(ntop " + (family.map { int($0) + " " } ?? "") + bytes(address) + ")"
    case .errorText(let value, _): return "(strerror " + int(value) + ")"
    case .cgroupPath(let id, let filter, _): return "(cgroup_path " + int(id) + (filter.map { " \"\($0)\"" } ?? "") + ")"
    case .macAddress(let value, _): return "(macaddr " + bytes(value) + ")"
    case .username: return "username"
    case .stack(let stack): return (stack.isKernel ? "kstack" : "ustack") + "(\(stack.mode.rawValue), \(stack.depth))"
    case .userSymbol(let address): return "(usym " + int(address) + ")"
    case .formatted(_, let arguments, let type): return "(sprintf:\(type)" + list(arguments.map { bytes($0) }) + ")"
    case .escapedText(let value, let length, let quoted, _): return "(text_strn " + bytes(value) + " \(length) \(quoted ? 1 : 0))"
    case .calendarTime(let seconds, _): return "(ctime " + int(seconds) + ")"
    case .substring(let value, let start, let length, _): return "(substr " + bytes(value) + " " + int(start) + " " + int(length) + ")"
    case .replaced(let value, let target, let replacement, _):
      return "(str_replace " + bytes(value) + " " + bytes(target) + " " + bytes(replacement) + ")"
    case .sequence(let body, let value): return "(block" + list(body.map { inline($0) }) + " " + bytes(value) + ")"
    }
  }

  func mapName(_ index: Int) -> String { index < mapNames.count ? mapNames[index] : "map#\(index)" }

  func element(_ map: Int, _ key: [BytesExpr]) -> String {
    key.isEmpty ? mapName(map) : mapName(map) + "[" + key.map { bytes($0) }.joined(separator: ", ") + "]"
  }

  /// Text in double quotes, with control characters, quotes and backslashes escaped as in a script.
  func quoted(_ text: [UInt8]) -> String {
    var out = "\""
    for byte in text {
      switch byte {
      case UInt8(ascii: "\n"): out += "\\n"
      case UInt8(ascii: "\t"): out += "\\t"
      case UInt8(ascii: "\""): out += "\\\""
      case UInt8(ascii: "\\"): out += "\\\\"
      case 0x20..<0x7f: out.unicodeScalars.append(Unicode.Scalar(byte))
      default: out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
      }
    }
    return out + "\""
  }

  func list(_ items: [String]) -> String { items.map { " " + $0 }.joined() }

  func update(_ target: String, _ operation: UpdateOperation, _ operand: IntExpr?, _ returnsOld: Bool) -> String {
    let by = operand.map { int($0) } ?? "1"
    return "(\(returnsOld ? "post" : "pre")-\(operation.op.rawValue)\(operation.isSigned ? "" : "u") \(target) \(by))"
  }
}
