import Glibc

/// The single owner of a file descriptor: it closes the fd when it goes away, so a
/// half-built object unwinds by itself and no `close()` is scattered around.
public struct OwnedFD: ~Copyable {
  /// The raw descriptor; valid for the owner's lifetime (-1 once handed over by `take()`).
  public private(set) var raw: Int32

  /// Takes ownership of `raw` (which must be an open fd).
  public init(_ raw: Int32) {
    self.raw = raw
  }

  /// Hands the fd to the caller, who closes it; this owner no longer does.
  public mutating func take() -> Int32 {
    defer { raw = -1 }
    return raw
  }

  deinit {
    if raw >= 0 { close(raw) }
  }
}
