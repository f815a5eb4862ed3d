import Glibc

/// A buffered writer to one fd (or to memory, for `cat`/`system` command lines).
/// Invariant: `count <= capacity`; bytes reach the fd only in `flush()` or when the buffer fills,
/// so a burst of events costs one `write(2)` per 64 KiB instead of one per line.
public final class OutputBuffer {
  public let fd: Int32
  /// Read as each record is written, so the REPL can switch it between two events.
  public var format: OutputFormat
  private let isCapturing: Bool
  private let capacity: Int
  private var storage: UnsafeMutablePointer<UInt8>
  private var count = 0
  /// Capturing mode only: text that overflowed the fixed buffer.
  private var captured: [UInt8] = []

  public init(fd: Int32, format: OutputFormat) {
    self.fd = fd
    self.format = format
    self.isCapturing = false
    self.capacity = 64 * 1024
    self.storage = .allocate(capacity: capacity)
  }

  /// Collects text in memory instead of writing it to an fd (json only for tests of json output).
  public init(capturing: Void, format: OutputFormat = .text) {
    self.fd = -1
    self.format = format
    self.isCapturing = true
    self.capacity = 4 * 1024
    self.storage = .allocate(capacity: capacity)
  }

  deinit {
    flush()
    storage.deallocate()
  }

  /// Capturing mode: forgets the captured text.
  public func reset() {
    count = 0
    captured.removeAll(keepingCapacity: true)
  }

  /// Everything written so far (capturing mode), or what is still unflushed (fd mode).
  public var capturedString: String {
    var bytes = captured
    bytes.append(contentsOf: UnsafeBufferPointer(start: storage, count: count))
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Capturing mode: copies the first `capacity` bytes captured so far to `destination` without
  /// allocating; returns how many were copied.
  func copyCaptured(into destination: UnsafeMutableRawPointer, capacity: Int) -> Int {
    let fromOverflow = Swift.min(captured.count, capacity)
    if fromOverflow > 0 { captured.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: fromOverflow) } }
    let fromStorage = Swift.min(count, capacity - fromOverflow)
    if fromStorage > 0 { (destination + fromOverflow).copyMemory(from: storage, byteCount: fromStorage) }
    return fromOverflow + fromStorage
  }

  /// Raw output text; in json mode the caller decides how to wrap it.
  public func appendText(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    appendBytes(base.assumingMemoryBound(to: UInt8.self), bytes.count)
  }

  public func appendBytes(_ bytes: UnsafePointer<UInt8>, _ n: Int) {
    if n > capacity - count {
      flush()
      if n > capacity {
        drain(bytes, n)
        return
      }
    }
    (storage + count).update(from: bytes, count: n)
    count += n
  }

  public func append(_ s: StaticString) {
    if s.hasPointerRepresentation {
      appendBytes(s.utf8Start, s.utf8CodeUnitCount)
    } else {
      append(String(describing: s))
    }
  }

  public func append(_ s: String) {
    var s = s
    s.withUTF8 { if let b = $0.baseAddress { appendBytes(b, $0.count) } }
  }

  public func appendByte(_ b: UInt8) {
    if count == capacity { flush() }
    storage[count] = b
    count += 1
  }

  /// Appends `n` copies of `b` (padding, histogram bars).
  public func appendRepeated(_ b: UInt8, count n: Int) {
    var left = n
    while left > 0 {
      if count == capacity { flush() }
      let chunk = Swift.min(left, capacity - count)
      (storage + count).update(repeating: b, count: chunk)
      count += chunk
      left -= chunk
    }
  }

  public func appendUnsigned(_ v: UInt64) {
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits, no heap
    withUnsafeMutableBytes(of: &digits) { raw in
      let p = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
      var i = 24
      var x = v
      repeat {
        i -= 1
        p[i] = UInt8(truncatingIfNeeded: x % 10) &+ 48
        x /= 10
      } while x != 0
      appendBytes(UnsafePointer(p + i), 24 - i)
    }
  }

  public func appendDecimal(_ v: Int64) {
    if v < 0 {
      appendByte(UInt8(ascii: "-"))
      appendUnsigned(UInt64(bitPattern: 0 &- v))
    } else {
      appendUnsigned(UInt64(v))
    }
  }

  public func flush() {
    guard count > 0 else { return }
    if isCapturing {
      captured.append(contentsOf: UnsafeBufferPointer(start: storage, count: count))
    } else {
      drain(UnsafePointer(storage), count)
    }
    count = 0
  }

  private func drain(_ bytes: UnsafePointer<UInt8>, _ n: Int) {
    if isCapturing {
      captured.append(contentsOf: UnsafeBufferPointer(start: bytes, count: n))
      return
    }
    guard !isClosed else { return }
    var done = 0
    while done < n {
      let r = Glibc.write(fd, bytes + done, n - done)
      if r < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        // A closed pipe (EPIPE, whose SIGPIPE the event loop turns into the end of the run) or
        // a failed device: nothing sensible is left to do with this text or any later one.
        isClosed = true
        return
      }
      done += r
    }
  }

  /// A write failed for good (the reader closed the pipe): later output is dropped.
  public private(set) var isClosed = false

  /// Text of one kind of record (`time`, `cat`, `syscall`, `join`): written as it is in text mode;
  /// in json mode collected in `scratch` and written as `{"type": "KIND", "data": "…"}`, as bpftrace does.
  /// `lineEnd` ends the text in text mode only (bpftrace's `join` record has no newline in its data).
  public func record(_ kind: StaticString, scratch: OutputBuffer, lineEnd: Bool = false, _ body: (OutputBuffer) -> Void) {
    switch format {
    case .text:
      body(self)
      if lineEnd { appendByte(UInt8(ascii: "\n")) }
    case .json:
      scratch.reset()
      body(scratch)
      append("{\"type\": \"")
      append(kind)
      append("\", \"data\": \"")
      append(ValueFormatter.jsonEscaped(scratch.capturedString))
      append("\"}\n")
    }
  }

  /// bpftrace's first line once probes are attached.
  public func attachedProbes(_ n: Int) {
    switch format {
    case .text:
      append("Attaching ")
      appendDecimal(Int64(n))
      append(n == 1 ? " probe...\n" : " probes...\n")
    case .json:
      append("{\"type\": \"attached_probes\", \"data\": {\"probes\": ")
      appendDecimal(Int64(n))
      append("}}\n")
    }
  }
}
