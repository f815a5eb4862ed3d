import CScrySystem
import Glibc

/// Signals caught by a handler that only sets the signal's bit and wakes an eventfd.
///
/// Unlike a signalfd, the bit is visible at once to a plain load (`arePending`), so a long drain
/// of the rings can stop between two records when the user asks the run to stop, instead of
/// finishing first. The handler stays installed after deinit: a signal arriving during teardown
/// must not kill the process half-way. It runs with SA_RESTART, so a blocking write or wait goes
/// on. Process-wide: every instance shares the one handler, bit set and eventfd.
/// The corresponding kernel calls are `sigaction(2)`, `eventfd(2)` and `setitimer(2)`.
public final class CaughtSignals {
  /// The fd to add to an `Epoll`: readable once a caught signal waits to be read.
  public let fd: Int32
  /// Signals taken from the handler's bits and not yet handed out by `read()`.
  private var taken: UInt32 = 0

  /// Installs the handler for `signals` (e.g. `[SIGINT, SIGTERM]`; SIGALRM is always caught, for
  /// `interrupt(afterNanoseconds:)`). `unblocking` unblocks them in the calling thread: a parent
  /// may have left them blocked (test runners do), and a blocked signal never reaches a handler.
  /// Without it (the REPL blocks them into a signalfd of its own), only SIGALRM is unblocked.
  public init(catching signals: [Int32], unblocking: Bool) throws {
    let all = signals.contains(SIGALRM) ? signals : signals + [SIGALRM]
    fd = try checkedCall("sigaction", "signals \(all)") {
      all.withUnsafeBufferPointer { scry_signals_catch($0.baseAddress, Int32($0.count)) }
    }
    let unblocked = unblocking ? all : [SIGALRM]
    _ = try checkedCall("sigprocmask", "signals \(unblocked)") {
      unblocked.withUnsafeBufferPointer { scry_signals_unblock($0.baseAddress, Int32($0.count)) }
    }
  }

  /// Some caught signal waits to be read: a drain stops at the next record when it does.
  @inline(__always)
  public static var arePending: Bool { scry_signals_pending() != 0 }

  /// The next caught signal's number, lowest first, or nil when none waits.
  public func read() -> Int32? {
    if taken == 0 { taken = scry_signals_take() }
    guard taken != 0 else { return nil }
    let signal = Int32(taken.trailingZeroBitCount)
    taken &= taken - 1
    return signal
  }

  /// Raises SIGALRM after `nanoseconds` (0: cancels the one armed), so that a drain with no other
  /// way to be stopped ends by then.
  public func interrupt(afterNanoseconds nanoseconds: UInt64) {
    _ = scry_signals_alarm(nanoseconds)
  }
}
