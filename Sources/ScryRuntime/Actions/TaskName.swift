#if canImport(Glibc)
  import Glibc
#endif

/// A task's `comm`: 16 NUL-padded bytes held inline as two words, so it is copied,
/// compared and hashed without touching the heap.
public struct TaskName: Hashable, Sendable {
  public var low: UInt64
  public var high: UInt64

  public init(low: UInt64, high: UInt64) {
    self.low = low
    self.high = high
  }

  /// Up to 15 bytes of a name (the kernel's TASK_COMM_LEN - 1), NUL-padded.
  public init(bytes: UnsafeRawBufferPointer) {
    var words: (UInt64, UInt64) = (0, 0)
    withUnsafeMutableBytes(of: &words) { destination in
      var n = 0
      while n < min(15, bytes.count), bytes[n] != 0 { n += 1 }
      if n > 0 { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<n])) }
    }
    self.init(low: words.0, high: words.1)
  }

  public init(string: String) {
    let utf8 = Array(string.utf8)
    self = utf8.withUnsafeBytes { TaskName(bytes: $0) }
  }

  /// Writes the 16 bytes at `destination`.
  @inline(__always)
  public func store(to destination: UnsafeMutableRawPointer) {
    destination.storeBytes(of: low, as: UInt64.self)
    destination.storeBytes(of: high, toByteOffset: 8, as: UInt64.self)
  }

  /// This process's own name, for BEGIN/END/interval, where bpftrace reports its own comm.
  public static func ofCurrentProcess() -> TaskName {
    var bytes = [UInt8](repeating: 0, count: 16)
    let fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
      let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, 15) }
      close(fd)
      if n > 0 {
        for i in 0..<n where bytes[i] == UInt8(ascii: "\n") { bytes[i] = 0 }
      }
    }
    return bytes.withUnsafeBytes {
      TaskName(low: $0.loadUnaligned(as: UInt64.self), high: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }
  }
}

/// Monotonic time, as bpftrace's `nsecs` and perf's `use_clockid = CLOCK_MONOTONIC` give it.
public enum Clock {
  public static func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
  }

  public static func realtimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
  }
}
