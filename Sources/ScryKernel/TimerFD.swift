import CScrySystem
import Glibc

/// A periodic CLOCK_MONOTONIC timer readable through an fd (for an `Epoll`).
///
/// The first expiry is one period after creation. Non-blocking.
/// The corresponding kernel calls are `timerfd_create(2)` and `timerfd_settime(2)`.
public final class TimerFD {
  private let handle: OwnedFD

  /// The fd to add to an `Epoll`.
  public var fd: Int32 { handle.raw }

  /// Starts a timer firing every `periodNanoseconds` (must be > 0).
  public init(periodNanoseconds: UInt64) throws {
    guard periodNanoseconds > 0 else {
      throw KernelError(operation: "timerfd_create", errno: EINVAL, explanation: "the period must be positive")
    }
    handle = OwnedFD(try checkedCall("timerfd_create") { scry_timerfd_open(periodNanoseconds) })
  }

  /// The number of expirations since the last read (0 if none yet); resets the count.
  public func read() -> UInt64 {
    scry_timerfd_read(handle.raw)
  }
}
