import ScryLanguage
import ScryRuntime

/// Builds maps and packed values for the runtime tests.
enum Fixture {
  static func map(_ name: String, keys: [ScryType] = [], value: ScryType, maxEntries: Int = 4096) -> MapStorage {
    MapStorage(info: MapInfo(name: name, keyTypes: keys, valueType: value, declaration: SourceSpan(start: 0, end: 0)),
               maxEntries: maxEntries)
  }

  /// A packed field: an integer or a NUL-padded string of the given capacity.
  enum Field {
    case int(Int64)
    case str(String, Int)
  }

  static func pack(_ fields: [Field]) -> [UInt8] {
    var bytes: [UInt8] = []
    for f in fields {
      switch f {
      case .int(let v): withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
      case .str(let s, let cap):
        var b = Array(s.utf8.prefix(cap - 1))
        b += [UInt8](repeating: 0, count: cap - b.count)
        bytes += b
      }
    }
    return bytes
  }

  /// The value slot for `key`, created if absent.
  static func slot(_ map: MapStorage, _ key: [Field]) -> UnsafeMutableRawPointer {
    let k = pack(key)
    return k.withUnsafeBytes { raw in
      let base = raw.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
      return map.lookup(key: base, hash: MapStorage.hash(base, count: raw.count), insert: true)!
    }
  }

  static func set(_ map: MapStorage, _ key: [Field], _ value: [Field]) {
    let v = pack(value)
    let p = slot(map, key)
    v.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
  }

  static func text(_ format: OutputFormat = .text, _ body: (OutputBuffer) -> Void) -> String {
    let out = OutputBuffer(capturing: (), format: format)
    body(out)
    return out.capturedString
  }
}
