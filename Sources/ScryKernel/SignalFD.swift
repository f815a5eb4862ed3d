import CScrySystem
import Glibc

/// A signalfd delivering some signals as readable data instead of handlers.
///
/// `init` blocks the signals with `sigprocmask` (in the calling thread, so create it before
/// starting other threads). They stay blocked after deinit, which only closes the fd: a
/// SIGINT arriving during teardown must not kill the process half-way. Non-blocking.
/// The corresponding kernel call is `signalfd(2)`.
public final class SignalFD {
  private let handle: OwnedFD

  /// The fd to add to an `Epoll`.
  public var fd: Int32 { handle.raw }

  /// Blocks `signals` (e.g. `[SIGINT, SIGTERM]`) and opens a signalfd for them.
  public init(blocking signals: [Int32]) throws {
    let raw = try checkedCall("signalfd", "signals \(signals)") {
      signals.withUnsafeBufferPointer { scry_signalfd_open($0.baseAddress, Int32($0.count)) }
    }
    handle = OwnedFD(raw)
  }

  /// The next pending signal's number, or nil if none is pending.
  public func read() -> Int32? {
    let signal = scry_signalfd_read(handle.raw)
    return signal > 0 ? signal : nil
  }
}
