import ScryKernel
import ScryLanguage

/// The front end's view of tracefs: tracepoint names and their records, typed for the checker.
/// Reads lazily and caches, so a script that names no tracepoint never touches tracefs.
public final class TraceFSCatalog: ProbeCatalog, @unchecked Sendable {
  // @unchecked: used from one thread (the CLI or the REPL), the caches are only touched there.
  private var tracefs: TraceFS?
  private var triedTracefs = false
  private var names: [(category: String, name: String)]?
  private var records: [String: RecordType?] = [:]

  public init() {}

  private func fs() -> TraceFS? {
    if !triedTracefs {
      triedTracefs = true
      tracefs = try? TraceFS.locate()
    }
    return tracefs
  }

  public func tracepoints(category: String, name: String) -> [(category: String, name: String)] {
    if names == nil {
      let fs = fs()
      names = (fs?.categories() ?? []).sorted().flatMap { category in
        (fs?.events(in: category) ?? []).sorted().map { (category, $0) }
      }
    }
    return names!.filter { Glob.matches(category, $0.category) && Glob.matches(name, $0.name) }
  }

  public func record(category: String, name: String) -> RecordType? {
    let key = category + ":" + name
    if let cached = records[key] { return cached }
    let record = (try? fs()?.format(category: category, name: name)).flatMap { $0.map { Self.record(of: $0, category: category) } }
    records[key] = record
    return record
  }

  /// A tracefs format as the language types it: `common_*` fields are left out, as bpftrace's `args` does.
  public static func record(of format: EventFormat, category: String) -> RecordType {
    var fields: [RecordField] = []
    var size = 0
    for field in format.fields {
      size = max(size, field.offset + field.size)
      if field.isCommon { continue }
      let type: ScryType
      var storage = RecordField.Storage.inline
      let isChar = field.cType.hasPrefix("char") || field.cType.hasPrefix("const char") || field.cType.hasPrefix("unsigned char")
      if field.isDataLocation || field.isRelativeLocation {
        storage = .dataLocation
        type = isChar ? .defaultString : .array(.integer(.uint64), count: 0)
      } else if field.isPointer {
        type = .pointer(isChar ? .integer(IntegerType(bits: 8, isSigned: true)) : .uint64)
      } else if let count = field.arrayCount, count > 0 {
        if isChar {
          type = .string(capacity: count)
        } else {
          let elementSize = field.size / count
          let bits = [1, 2, 4, 8].contains(elementSize) ? elementSize * 8 : 8
          type = .array(.integer(IntegerType(bits: bits, isSigned: field.isSigned)), count: count)
        }
      } else {
        let bits = [1, 2, 4, 8].contains(field.size) ? field.size * 8 : 64
        type = .integer(IntegerType(bits: bits, isSigned: field.isSigned))
      }
      fields.append(
        RecordField(name: field.name, cType: field.cType, type: type, offset: field.offset, size: field.size, storage: storage))
    }
    return RecordType(name: category + ":" + format.name, fields: fields, size: size)
  }
}

/// Shell-style wildcards as probe specs use them: `*` any run, `?` one character.
public enum Glob {
  public static func matches(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern.utf8)
    let t = Array(text.utf8)
    var pi = 0
    var ti = 0
    var star = -1
    var mark = 0
    while ti < t.count {
      if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
        pi += 1
        ti += 1
      } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
        star = pi
        mark = ti
        pi += 1
      } else if star >= 0 {
        pi = star + 1
        mark += 1
        ti = mark
      } else {
        return false
      }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
  }
}
