/// One field of a tracepoint record, as the kernel's tracefs `format` file declares it.
///
/// `offset`/`size` locate it in the raw record (PERF_SAMPLE_RAW bytes). A `__data_loc`
/// field holds a UInt32 whose low 16 bits are the data's offset from the record start and
/// high 16 bits its length; `__rel_loc` is the same but relative to the end of the field.
public struct EventField: Sendable, Equatable, CustomStringConvertible {
  /// The field name, e.g. "prev_comm".
  public var name: String
  /// The C type as written without the name and array suffix: "char" for
  /// `char comm[16]`, "const char *" for `const char * filename`, "char" for
  /// `__data_loc char[] name`.
  public var cType: String
  public var offset: Int
  public var size: Int
  public var isSigned: Bool
  /// `__data_loc TYPE[] name`: a UInt32 (offset | length << 16) pointing into the record.
  public var isDataLocation: Bool
  /// `__rel_loc TYPE[] name`: like `__data_loc`, offset relative to the field's end.
  public var isRelativeLocation: Bool
  /// N for `TYPE name[N]`, 0 for `TYPE name[]`, nil when not an array.
  public var arrayCount: Int?
  /// Whether the declared type is a pointer (a kernel or user address, not its contents).
  public var isPointer: Bool
  /// Whether it is one of the `common_*` fields every tracepoint record starts with.
  public var isCommon: Bool

  public init(
    name: String, cType: String, offset: Int, size: Int, isSigned: Bool,
    isDataLocation: Bool = false, isRelativeLocation: Bool = false, arrayCount: Int? = nil,
    isPointer: Bool = false, isCommon: Bool = false
  ) {
    self.name = name
    self.cType = cType
    self.offset = offset
    self.size = size
    self.isSigned = isSigned
    self.isDataLocation = isDataLocation
    self.isRelativeLocation = isRelativeLocation
    self.arrayCount = arrayCount
    self.isPointer = isPointer
    self.isCommon = isCommon
  }

  public var description: String {
    var declaration =
      isDataLocation ? "__data_loc \(cType)[] " : isRelativeLocation ? "__rel_loc \(cType)[] " : "\(cType) "
    declaration += name
    if let arrayCount { declaration += arrayCount == 0 ? "[]" : "[\(arrayCount)]" }
    return "\(declaration) @\(offset) size \(size)\(isSigned ? " signed" : "")"
  }

  /// For a `__data_loc`/`__rel_loc` field: where its data lies in `record`, given the
  /// field's raw UInt32 value. Returns nil if the range falls outside `recordSize`.
  public func dynamicRange(locator: UInt32, recordSize: Int) -> Range<Int>? {
    var start = Int(locator & 0xffff)
    let length = Int(locator >> 16)
    if isRelativeLocation { start += offset + size }
    guard start + length <= recordSize else { return nil }
    return start..<(start + length)
  }
}

/// A tracepoint's record layout, parsed from tracefs `events/CATEGORY/NAME/format`.
public struct EventFormat: Sendable, Equatable {
  /// The event name (e.g. "sched_switch").
  public var name: String
  /// The tracepoint id (the `ID:` line; the perf_event_attr `config`).
  public var id: UInt64
  /// All fields in file order, `common_*` first.
  public var fields: [EventField]
  /// The `print fmt:` line after the colon, as the kernel formats the event.
  public var printFormat: String

  public init(name: String, id: UInt64, fields: [EventField], printFormat: String = "") {
    self.name = name
    self.id = id
    self.fields = fields
    self.printFormat = printFormat
  }

  /// The field called `name`, if any.
  public func field(named name: String) -> EventField? {
    fields.first { $0.name == name }
  }

  /// The event-specific fields (without `common_*`).
  public var eventFields: [EventField] { fields.filter { !$0.isCommon } }

  /// The smallest record size that holds every fixed part of every field.
  public var fixedSize: Int { fields.map { $0.offset + $0.size }.max() ?? 0 }

  /// Parses the text of a `format` file; `source` names it in errors.
  public static func parse(_ text: String, source: String = "format") throws(KernelError) -> EventFormat {
    var name = ""
    var id: UInt64?
    var fields: [EventField] = []
    var printFormat = ""
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
      let line = rawLine.drop { $0 == " " || $0 == "\t" }
      if line.hasPrefix("name:") {
        name = trimmed(line.dropFirst(5))
      } else if line.hasPrefix("ID:") {
        id = UInt64(trimmed(line.dropFirst(3)))
      } else if line.hasPrefix("print fmt:") {
        printFormat = trimmed(line.dropFirst(10))
      } else if line.hasPrefix("field:") {
        guard let field = parseField(line) else {
          throw KernelError(
            operation: "parse", subject: source, errno: 0, explanation: "cannot read field line '\(line)'")
        }
        fields.append(field)
      }
    }
    guard let id, !name.isEmpty else {
      throw KernelError(operation: "parse", subject: source, errno: 0, explanation: "no 'name:' or 'ID:' line")
    }
    return EventFormat(name: name, id: id, fields: fields, printFormat: printFormat)
  }

  /// Parses `field:DECL;\toffset:N;\tsize:N;\tsigned:N;`.
  static func parseField(_ line: Substring) -> EventField? {
    var declaration: Substring?
    var offset: Int?
    var size: Int?
    var isSigned = false
    for part in line.split(separator: ";") {
      let item = part.drop { $0 == " " || $0 == "\t" }
      guard let colon = item.firstIndex(of: ":") else { continue }
      let key = item[..<colon]
      let value = item[item.index(after: colon)...]
      switch key {
      case "field": declaration = value
      case "offset": offset = Int(trimmed(value))
      case "size": size = Int(trimmed(value))
      case "signed": isSigned = trimmed(value) == "1"
      default: break
      }
    }
    guard let declaration, let offset, let size else { return nil }
    return parseDeclaration(trimmed(declaration), offset: offset, size: size, isSigned: isSigned)
  }

  /// Splits a C declaration such as `const char * filename`, `char comm[16]`,
  /// `__data_loc char[] name` into its parts.
  static func parseDeclaration(_ text: String, offset: Int, size: Int, isSigned: Bool) -> EventField? {
    var rest = Substring(text)
    var isDataLocation = false
    var isRelativeLocation = false
    if rest.hasPrefix("__data_loc ") {
      isDataLocation = true
      rest = rest.dropFirst("__data_loc ".count)
    } else if rest.hasPrefix("__rel_loc ") {
      isRelativeLocation = true
      rest = rest.dropFirst("__rel_loc ".count)
    }
    rest = Substring(trimmed(rest))
    // Array suffix after the name: `name[16]` or `name[]`.
    var arrayCount: Int?
    if rest.hasSuffix("]"), let open = rest.lastIndex(of: "[") {
      let inside = rest[rest.index(after: open)..<rest.index(before: rest.endIndex)]
      arrayCount = inside.isEmpty ? 0 : Int(trimmed(inside))
      rest = rest[..<open]
      rest = Substring(trimmed(rest))
    }
    // The name is the trailing identifier.
    var nameStart = rest.endIndex
    while nameStart > rest.startIndex {
      let before = rest.index(before: nameStart)
      let c = rest[before]
      guard c.isLetter || c.isNumber || c == "_" else { break }
      nameStart = before
    }
    let name = String(rest[nameStart...])
    guard !name.isEmpty else { return nil }
    var type = trimmed(rest[..<nameStart])
    if isDataLocation || isRelativeLocation {
      // `char[]` is the element type of the dynamic array, not a fixed array.
      if type.hasSuffix("[]") { type = trimmed(type.dropLast(2)) }
      arrayCount = nil
    }
    if type.isEmpty { return nil }
    return EventField(
      name: name, cType: type, offset: offset, size: size, isSigned: isSigned,
      isDataLocation: isDataLocation, isRelativeLocation: isRelativeLocation,
      arrayCount: arrayCount, isPointer: type.hasSuffix("*"), isCommon: name.hasPrefix("common_"))
  }

  private static func trimmed(_ s: Substring) -> String {
    var t = s
    while let c = t.first, c == " " || c == "\t" { t = t.dropFirst() }
    while let c = t.last, c == " " || c == "\t" || c == "\r" { t = t.dropLast() }
    return String(t)
  }

  private static func trimmed(_ s: String) -> String { trimmed(Substring(s)) }
}
