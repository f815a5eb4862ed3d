import Glibc

/// What a fetch program reads for one tracepoint hit, and where each piece lands in the
/// sample it emits.
///
/// Sample layout (all offsets 8-byte aligned, every slot fixed-size):
/// - `[0, recordSize)`: the tracepoint record as laid out by its tracefs format, except
///   that its first 8 bytes are rewritten: the kernel puts a pt_regs pointer there before a
///   BPF program runs, so the program stores `common_type = commonType`, `common_flags =
///   common_preempt_count = 0` and `common_pid` = the current thread id.
/// - then each item in order, at `itemOffsets[i]`:
///   - `.string`: `maxLength` bytes holding a NUL-terminated string (cut to maxLength-1
///     bytes). Bytes after the NUL are NOT zeroed: they may hold an earlier event's bytes.
///     An unreadable pointer (NULL, paged out) gives an all-zero slot, i.e. "".
///   - `.bytes`: `length` bytes; all zero if the pointer could not be read.
///   - `.stringArray`: a u32 count of strings read, a u32 that is always 0, then `maxCount`
///     string slots of `maxLength` bytes each (as `.string`). Slots at or past the count
///     are stale. Reading stops at the array's NULL or at the first unreadable element.
/// - `sampleSize` is the end of the last slot, rounded up to 8.
///
/// Limits (checked by `validate()`): each pointer field lies inside the record, the
/// sample fits a per-CPU map value (32 KiB), and sizes are positive.
public struct TracepointFetch: Sendable, Hashable {
  /// One piece of memory a record field points to.
  public enum Item: Sendable, Hashable {
    /// A NUL-terminated string a record field points to (user or kernel memory).
    case string(pointerOffset: Int, maxLength: Int, userMemory: Bool)
    /// `length` bytes a record field points to.
    case bytes(pointerOffset: Int, length: Int, userMemory: Bool)
    /// A NULL-terminated array of user string pointers (execve's argv): up to maxCount
    /// strings of up to maxLength bytes each.
    case stringArray(pointerOffset: Int, maxCount: Int, maxLength: Int)

    /// Where the 8-byte pointer sits in the record.
    public var pointerOffset: Int {
      switch self {
      case .string(let offset, _, _), .bytes(let offset, _, _), .stringArray(let offset, _, _): offset
      }
    }

    /// Bytes the item's slot takes in the sample (before alignment).
    public var slotSize: Int {
      switch self {
      case .string(_, let maxLength, _): maxLength
      case .bytes(_, let length, _): length
      case .stringArray(_, let maxCount, let maxLength): 8 + maxCount * maxLength
      }
    }
  }

  /// Bytes of the raw record to copy first (the format's `fixedSize`).
  public var recordSize: Int
  /// What to fetch, in slot order.
  public var items: [Item]
  /// Written into the copy's `common_type` (the tracepoint id's low 16 bits), so the
  /// record decodes like the one perf would have sent.
  public var commonType: UInt16

  public init(recordSize: Int, items: [Item], commonType: UInt16 = 0) {
    self.recordSize = recordSize
    self.items = items
    self.commonType = commonType
  }

  /// The largest sample: a per-CPU array value is at most 32 KiB (PCPU_MIN_UNIT_SIZE).
  public static let maxSampleSize = 32768

  /// Byte offset of each item's slot in the emitted sample.
  public var itemOffsets: [Int] {
    var offsets: [Int] = []
    offsets.reserveCapacity(items.count)
    var at = Self.align8(recordSize)
    for item in items {
      offsets.append(at)
      at = Self.align8(at + item.slotSize)
    }
    return offsets
  }

  /// Total bytes of the sample (and of the per-CPU scratch value).
  public var sampleSize: Int {
    var at = Self.align8(recordSize)
    for item in items { at = Self.align8(at + item.slotSize) }
    return at
  }

  /// Throws when the fetch cannot be turned into a program the verifier accepts.
  public func validate() throws(KernelError) {
    func fail(_ why: String) throws(KernelError) -> Never {
      throw KernelError(operation: "BPF fetch program", errno: EINVAL, explanation: why)
    }
    if recordSize < 8 { try fail("the record size \(recordSize) is below the 8 common bytes") }
    for item in items {
      if item.pointerOffset < 8 || item.pointerOffset + 8 > recordSize {
        try fail("a pointer at offset \(item.pointerOffset) is outside the \(recordSize)-byte record")
      }
      switch item {
      case .string(_, let size, _), .bytes(_, let size, _):
        if size < 1 { try fail("an item needs at least 1 byte, not \(size)") }
      case .stringArray(_, let count, let size):
        if count < 1 || size < 1 { try fail("a string array needs at least 1 string of 1 byte") }
      }
    }
    if sampleSize > Self.maxSampleSize {
      try fail("the sample would take \(sampleSize) bytes; at most \(Self.maxSampleSize) fit a per-CPU buffer")
    }
  }

  static func align8(_ n: Int) -> Int { (n + 7) & ~7 }
}
