/// The text of one script (a file, an `-e` argument or a REPL entry) and its name.
/// Owns the bytes; builds the line table lazily, only when something is rendered.
public final class SourceFile: Sendable {
  /// How the file is named in diagnostics: a path, `-e`, `stdin` or `repl`.
  public let name: String
  public let text: String
  public let bytes: [UInt8]
  private let lineStarts: [UInt32]

  public init(name: String, text: String) {
    self.name = name
    self.text = text
    self.bytes = Array(text.utf8)
    var starts: [UInt32] = [0]
    for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
      starts.append(UInt32(i + 1))
    }
    self.lineStarts = starts
  }

  /// One-based line and column (in bytes) of a byte offset.
  public func location(of offset: UInt32) -> (line: Int, column: Int) {
    var lo = 0
    var hi = lineStarts.count - 1
    while lo < hi {
      let mid = (lo + hi + 1) / 2
      if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
    }
    return (lo + 1, Int(offset - lineStarts[lo]) + 1)
  }

  /// The text of a one-based line, without its newline.
  public func line(_ number: Int) -> String {
    guard number >= 1, number <= lineStarts.count else { return "" }
    let start = Int(lineStarts[number - 1])
    var end = number < lineStarts.count ? Int(lineStarts[number]) - 1 : bytes.count
    if end > start, end <= bytes.count, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
    return String(decoding: bytes[start..<max(start, end)], as: UTF8.self)
  }

  /// The source text a span covers.
  public func text(of span: SourceSpan) -> String {
    let s = min(Int(span.start), bytes.count)
    let e = min(Int(span.end), bytes.count)
    return String(decoding: bytes[s..<e], as: UTF8.self)
  }
}
