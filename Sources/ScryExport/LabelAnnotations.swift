/// Label names a script gives its map keys, in a comment the language itself ignores:
///
///     // scry:labels @lat=pid,comm @calls=comm
///
/// Each `@map=name,…` names the map's key components in order. Being a comment, it changes
/// nothing for bpftrace or for a run without an exporter.
public struct LabelAnnotation: Sendable, Equatable {
  public var map: String
  public var labels: [String]
  /// Byte range of `@map=…` in the source, for diagnostics.
  public var start: Int
  public var end: Int

  public static let marker = "scry:labels"

  /// Every annotation in `source`, in order. Only `//` comments count.
  public static func find(in source: [UInt8]) -> [LabelAnnotation] {
    var found: [LabelAnnotation] = []
    let marker = Array(("//").utf8)
    var lineStart = 0
    while lineStart < source.count {
      let lineEnd = source[lineStart...].firstIndex(of: 10) ?? source.count
      if let comment = firstRange(of: marker, in: source, from: lineStart, to: lineEnd) {
        var i = comment + 2
        while i < lineEnd && (source[i] == 32 || source[i] == 9) { i += 1 }
        let word = Array(Self.marker.utf8)
        if i + word.count <= lineEnd && Array(source[i..<i + word.count]) == word {
          found += parseItems(source, from: i + word.count, to: lineEnd)
        }
      }
      lineStart = lineEnd + 1
    }
    return found
  }

  static func firstRange(of needle: [UInt8], in bytes: [UInt8], from: Int, to: Int) -> Int? {
    guard to - from >= needle.count else { return nil }
    return (from...(to - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle }
  }

  /// `@map=a,b` items separated by blanks.
  static func parseItems(_ source: [UInt8], from: Int, to: Int) -> [LabelAnnotation] {
    var items: [LabelAnnotation] = []
    var i = from
    while i < to {
      while i < to && (source[i] == 32 || source[i] == 9 || source[i] == 13) { i += 1 }
      let start = i
      while i < to && source[i] != 32 && source[i] != 9 && source[i] != 13 { i += 1 }
      guard i > start else { break }
      let item = String(decoding: source[start..<i], as: UTF8.self)
      let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let labels = parts.count == 2 ? parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
      items.append(LabelAnnotation(map: String(parts[0]), labels: labels, start: start, end: i))
    }
    return items
  }

  /// What is wrong with this annotation for a map with `keyCount` keys (nil: nothing).
  public func problem(keyCount: Int?) -> (message: String, hint: String)? {
    guard let keyCount else {
      return ("'\(map)' is not a map of this script", "write '// \(Self.marker) @map=label,…' with a map the script uses")
    }
    if labels.isEmpty || labels.contains(where: { !Exposition.isValidLabelName($0) }) {
      return (
        "label names must match [a-zA-Z_][a-zA-Z0-9_]*, not start with '__' and not be 'le'",
        "write '\(map)=name' or '\(map)=name0,name1'"
      )
    }
    if labels.count != keyCount {
      return (
        "'\(map)' has \(keyCount) key \(keyCount == 1 ? "component" : "components"), but \(labels.count) label names are given",
        "give one label name per key component, in order"
      )
    }
    if Set(labels).count != labels.count { return ("label names of '\(map)' repeat", "give each key its own name") }
    return nil
  }
}
