import CScrySystem
import Glibc

/// The user-space side of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF, kernel 5.8 and later): one
/// ring for every CPU, in which programs reserve, fill and submit records.
///
/// Records appear in the order they were reserved (the kernel serialises reservations), so
/// the ring is already in event order across CPUs. The data area is mapped twice in a row,
/// so a record that wraps the end reads as one piece and nothing is copied. A record still
/// being written (busy bit) stops the drain there: the next drain resumes at it. Records a
/// program discarded are skipped. Unmapped in deinit; the map closes with the last owner.
/// The layout is the kernel's (kernel/bpf/ringbuf.c): a consumer page the reader writes, a
/// producer page it only reads, then the data twice.
public final class BPFRing {
  /// The ring's map, for `ldMapFD` in the programs that write into it.
  public let map: BPFMap
  /// Bytes of data area (a power of two pages).
  public let size: Int
  private let consumerPage: UnsafeMutableRawPointer
  private let producerPages: UnsafeMutableRawPointer
  private let producerLength: Int
  private let data: UnsafeRawPointer
  private let mask: UInt64

  private static let busyBit: UInt32 = 1 << 31
  private static let discardBit: UInt32 = 1 << 30
  private static let headerSize = 8

  /// Creates a ring of at least `bytes` (rounded up to a power of two pages) and maps it.
  public init(bytes: Int) throws(KernelError) {
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    var size = pageSize
    while size < bytes { size <<= 1 }
    map = try BPFMap.ringBuffer(bytes: size)
    guard let consumer = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0), consumer != MAP_FAILED else {
      throw BPFRing.mappingError(errno, bytes: size)
    }
    let length = pageSize + 2 * size
    guard let producer = mmap(nil, length, PROT_READ, MAP_SHARED, map.fd, off_t(pageSize)), producer != MAP_FAILED else {
      let code = errno
      munmap(consumer, pageSize)
      throw BPFRing.mappingError(code, bytes: size)
    }
    self.size = size
    consumerPage = consumer
    producerPages = producer
    producerLength = length
    data = UnsafeRawPointer(producer + pageSize)
    mask = UInt64(size - 1)
  }

  deinit {
    munmap(consumerPage, Int(sysconf(Int32(_SC_PAGESIZE))))
    munmap(producerPages, producerLength)
  }

  private static func mappingError(_ code: Int32, bytes: Int) -> KernelError {
    KernelError(
      operation: "mmap", subject: "BPF ring buffer of \(bytes) bytes", errno: code,
      explanation: code == EPERM || code == ENOMEM ? "over RLIMIT_MEMLOCK or the memory cgroup's limit" : nil)
  }

  /// Hands the body of every submitted record, oldest first, to `body`, then frees their space;
  /// returns how many it handed over. `body` must not keep the buffer. When `yieldingToSignals`,
  /// a caught signal (`CaughtSignals.arePending`) stops it before the next record, which the next
  /// drain starts at.
  @discardableResult
  public func drain(yieldingToSignals: Bool = true, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows -> Int {
    let producer = scry_load_acquire_u64(producerPages)
    var consumer = scry_load_acquire_u64(consumerPage)
    var count = 0
    defer { scry_store_release_u64(consumerPage, consumer) }
    while consumer < producer {
      if yieldingToSignals && scry_signals_pending() != 0 { break }
      let header = data + Int(consumer & mask)
      let word = scry_load_acquire_u32(header)
      if word & Self.busyBit != 0 { break }
      let length = Int(word & ~(Self.busyBit | Self.discardBit))
      consumer += UInt64((Self.headerSize + length + 7) & ~7)
      if word & Self.discardBit != 0 { continue }
      count += 1
      try body(UnsafeRawBufferPointer(start: header + Self.headerSize, count: length))
    }
    return count
  }
}
