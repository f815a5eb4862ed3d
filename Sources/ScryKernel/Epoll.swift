import CScrySystem
import Glibc

/// An epoll instance that reports readable fds as caller-chosen 64-bit tokens.
///
/// Every fd is registered for `EPOLLIN`, level-triggered. The epoll fd is closed in deinit;
/// the registered fds are not (their owners close them, which also unregisters them).
/// The corresponding kernel calls are `epoll_create1(2)`, `epoll_ctl(2)`, `epoll_wait(2)`.
public final class Epoll {
  private let handle: OwnedFD

  /// The epoll fd itself (so it can be nested in another epoll).
  public var fd: Int32 { handle.raw }

  public init() throws {
    handle = OwnedFD(try checkedCall("epoll_create1") { scry_epoll_create() })
  }

  /// Watches `fd` for readability; `token` comes back from `wait` when it is readable.
  public func add(_ fd: Int32, token: UInt64) throws {
    _ = try checkedCall("epoll_ctl(ADD)", "fd \(fd)") { scry_epoll_add(handle.raw, fd, token) }
  }

  /// Stops watching `fd`.
  public func remove(_ fd: Int32) throws {
    _ = try checkedCall("epoll_ctl(DEL)", "fd \(fd)") { scry_epoll_del(handle.raw, fd) }
  }

  /// Waits up to `timeoutMilliseconds` (-1 forever, 0 poll) and writes the tokens of the
  /// ready fds into the start of `tokens`, returning how many it wrote.
  ///
  /// `tokens` must already have room (its count is the maximum reported, at most 64); it is
  /// not resized, so the event loop can reuse one array without allocating. An interrupted
  /// wait (EINTR) returns 0.
  public func wait(into tokens: inout [UInt64], timeoutMilliseconds: Int32) -> Int {
    let capacity = Int32(min(tokens.count, 64))
    if capacity == 0 { return 0 }
    let n = tokens.withUnsafeMutableBufferPointer { buffer in
      scry_epoll_wait(handle.raw, buffer.baseAddress, capacity, timeoutMilliseconds)
    }
    return n < 0 ? 0 : Int(n)
  }
}
