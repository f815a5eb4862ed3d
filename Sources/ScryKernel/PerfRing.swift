import CScrySystem
import Glibc

/// One record read from a perf ring: its header fields and the bytes after the header.
///
/// `body` points into the ring (or the ring's scratch buffer for a record that wraps the
/// end) and is valid only inside the `drain` callback.
public struct PerfRecord {
  /// PERF_RECORD_* (see `PerfRecordType`).
  public var type: UInt32
  /// PERF_RECORD_MISC_* bits.
  public var misc: UInt16
  /// The record without its 8-byte header.
  public var body: UnsafeRawBufferPointer

  public init(type: UInt32, misc: UInt16, body: UnsafeRawBufferPointer) {
    self.type = type
    self.misc = misc
    self.body = body
  }
}

/// The PERF_RECORD_* values ScryKernel decodes.
public enum PerfRecordType {
  public static let mmap: UInt32 = 1
  public static let lost: UInt32 = 2
  public static let comm: UInt32 = 3
  public static let exit: UInt32 = 4
  public static let throttle: UInt32 = 5
  public static let unthrottle: UInt32 = 6
  public static let fork: UInt32 = 7
  public static let read: UInt32 = 8
  public static let sample: UInt32 = 9
  public static let mmap2: UInt32 = 10
  public static let lostSamples: UInt32 = 13
}

/// The memory-mapped ring buffer of one perf event: 1 header page + 2^n data pages.
///
/// The kernel appends records and advances `data_head`; `drain` reads from `data_tail` to
/// the head and then publishes the new tail (acquire/release, see the C shim), so the
/// kernel may reuse the space. No allocation per record: a record that wraps around the
/// end is copied into one scratch buffer owned by the ring. Unmapped in deinit.
/// The corresponding kernel calls are `mmap(2)` on a perf fd, see `perf_event_open(2)`.
public final class PerfRing {
  /// The event whose fd is mapped (kept alive as long as the ring).
  public let event: PerfEvent
  private let mapping: UnsafeMutableRawPointer
  private let mappingLength: Int
  private let data: UnsafeRawPointer
  /// Bytes of data area (a power of two).
  public let dataSize: Int
  private let mask: UInt64
  /// Holds one wrapped record; records are at most 65535 bytes (the header's u16 size).
  private let scratch: UnsafeMutableRawPointer
  /// Records with an impossible size seen so far (the ring was then skipped to its head).
  public private(set) var corruptRecords: UInt64 = 0
  /// Records that wrapped around the end and were copied to the scratch buffer.
  public private(set) var wrappedRecords: UInt64 = 0

  /// Maps `dataPages` (a power of two) pages of ring on `event`.
  public init(event: PerfEvent, dataPages: Int = 64) throws {
    guard dataPages > 0, dataPages & (dataPages - 1) == 0 else {
      throw KernelError(
        operation: "mmap", subject: event.description, errno: EINVAL,
        explanation: "ring size must be a power of two pages, not \(dataPages)")
    }
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    let length = (dataPages + 1) * pageSize
    guard let pointer = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, event.fd, 0),
      pointer != MAP_FAILED
    else {
      let code = errno
      throw KernelError(
        operation: "mmap", subject: event.description, errno: code,
        explanation: code == EPERM || code == ENOMEM
          ? "cannot map a \(dataPages)-page ring: over kernel.perf_event_mlock_kb or RLIMIT_MEMLOCK; run as root or use fewer pages"
          : nil,
        cpu: event.cpu >= 0 ? event.cpu : nil)
    }
    self.event = event
    mapping = pointer
    mappingLength = length
    let offset = Int(scry_ring_data_offset(pointer))
    let size = Int(scry_ring_data_size(pointer))
    // Kernels before 4.1 leave data_offset/data_size zero: the data starts one page in.
    data = UnsafeRawPointer(pointer + (offset != 0 ? offset : pageSize))
    dataSize = size != 0 ? size : dataPages * pageSize
    mask = UInt64(dataSize - 1)
    scratch = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 8)
  }

  deinit {
    munmap(mapping, mappingLength)
    scratch.deallocate()
  }

  /// Bytes written by the kernel and not yet drained.
  public var pendingBytes: Int {
    Int(scry_ring_load_head(mapping) &- scry_ring_load_tail(mapping))
  }

  /// Hands every complete record in the ring to `body`, oldest first, then frees their
  /// space; returns how many it handed over. `body` must not keep `record.body`. When
  /// `yieldingToSignals`, a caught signal (`CaughtSignals.arePending`) stops it before the next
  /// record, which the next drain starts at.
  @discardableResult
  public func drain(yieldingToSignals: Bool = true, _ body: (PerfRecord) throws -> Void) rethrows -> Int {
    let head = scry_ring_load_head(mapping)
    var tail = scry_ring_load_tail(mapping)
    var count = 0
    // Publish whatever was consumed even if `body` throws, so records are not re-read.
    defer { scry_ring_store_tail(mapping, tail) }
    while tail < head {
      if yieldingToSignals && scry_signals_pending() != 0 { break }
      let offset = Int(tail & mask)
      // Headers are 8-byte aligned and 8 bytes long, so a header never straddles the end.
      let type = data.load(fromByteOffset: offset, as: UInt32.self)
      let misc = data.load(fromByteOffset: offset + 4, as: UInt16.self)
      let size = Int(data.load(fromByteOffset: offset + 6, as: UInt16.self))
      if size < 8 || UInt64(size) > head - tail {
        corruptRecords += 1
        tail = head
        break
      }
      let start: UnsafeRawPointer
      if offset + size > dataSize {
        let first = dataSize - offset
        scratch.copyMemory(from: data + offset, byteCount: first)
        (scratch + first).copyMemory(from: data, byteCount: size - first)
        wrappedRecords &+= 1
        start = UnsafeRawPointer(scratch)
      } else {
        start = data + offset
      }
      let record = PerfRecord(
        type: type, misc: misc, body: UnsafeRawBufferPointer(start: start + 8, count: size - 8))
      tail += UInt64(size)
      count += 1
      try body(record)
    }
    return count
  }
}
