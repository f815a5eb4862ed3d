import Glibc

/// The single owner of a file descriptor: it closes the fd when it goes away, so a
/// half-built object unwinds by itself and no `close()` is scattered around.
public struct OwnedFD: ~Copyable {
  /// The raw descriptor; valid for the owner's lifetime.
  public let raw: Int32

  /// Takes ownership of `raw` (which must be an open fd).
  public init(_ raw: Int32) {
    self.raw = raw
  }

  deinit {
    close(raw)
  }
}
