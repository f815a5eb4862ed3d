/// A half-open range of byte offsets into one `SourceFile`.
/// Line and column exist only when a diagnostic is rendered.
public struct SourceSpan: Hashable, Sendable, CustomStringConvertible {
  public var start: UInt32
  public var end: UInt32

  public init(start: UInt32, end: UInt32) {
    self.start = start
    self.end = max(start, end)
  }

  public init(start: Int, end: Int) {
    self.init(start: UInt32(clamping: start), end: UInt32(clamping: end))
  }

  /// An empty span at `offset`, for things that are missing (an expected `}`).
  public static func at(_ offset: UInt32) -> SourceSpan { SourceSpan(start: offset, end: offset) }

  public var length: Int { Int(end - start) }

  /// The smallest span that covers both.
  public func merged(with other: SourceSpan) -> SourceSpan {
    SourceSpan(start: min(start, other.start), end: max(end, other.end))
  }

  public var description: String { "\(start)..<\(end)" }
}
