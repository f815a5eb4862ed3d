import CScrySystem
import Glibc

/// A BPF map (one fd), the kernel-side storage a BPF program reads and writes.
///
/// ScryKernel uses three kinds: a perf event array (index = CPU, value = a `bpf-output` perf
/// event fd) that `bpf_perf_event_output` writes samples into, a per-CPU array used as a
/// scratch buffer larger than the 512-byte BPF stack or as counters, and a ring buffer. Closes its fd in deinit (a program
/// that uses the map keeps the map alive in the kernel). The kernel call is `bpf(2)`.
public final class BPFMap {
  private let handle: OwnedFD
  /// The map fd (what `ldMapFD` puts into a program).
  public var fd: Int32 { handle.raw }
  /// What the map is for, used in messages.
  public let description: String
  /// Bytes of each value.
  public let valueSize: Int
  /// How many entries it holds.
  public let entries: Int

  private init(fd: Int32, description: String, valueSize: Int, entries: Int) {
    handle = OwnedFD(fd)
    self.description = description
    self.valueSize = valueSize
    self.entries = entries
  }

  /// A BPF_MAP_TYPE_PERF_EVENT_ARRAY of `entries` slots (one per possible CPU: the program
  /// writes with BPF_F_CURRENT_CPU, i.e. index = the CPU it runs on).
  public static func perfEventArray(entries: Int) throws(KernelError) -> BPFMap {
    try create(
      type: SCRY_BPF_MAP_TYPE_PERF_EVENT_ARRAY, valueSize: 4, entries: entries, name: "scry_output",
      description: "perf event array")
  }

  /// A BPF_MAP_TYPE_PERCPU_ARRAY of `entries` values of `valueSize` bytes each, zero-filled
  /// (the kernel caps a per-CPU value at 32 KiB).
  public static func perCPUArray(valueSize: Int, entries: Int) throws(KernelError) -> BPFMap {
    try create(
      type: SCRY_BPF_MAP_TYPE_PERCPU_ARRAY, valueSize: valueSize, entries: entries, name: "scry_scratch",
      description: "per-CPU array")
  }

  /// A BPF_MAP_TYPE_PERCPU_HASH of at most `entries` keys of `keySize` bytes, each with one value
  /// of `valueSize` bytes per CPU (what a program counts into without atomics).
  /// Not preallocated: preallocating a million per-CPU elements took Scry 1-2 s of system time at
  /// every start, for maps that mostly hold a few keys; a new key now allocates when first counted.
  public static func perCPUHash(keySize: Int, valueSize: Int, entries: Int) throws(KernelError) -> BPFMap {
    try create(
      type: SCRY_BPF_MAP_TYPE_PERCPU_HASH, keySize: UInt32(keySize), valueSize: valueSize, entries: entries,
      flags: SCRY_BPF_F_NO_PREALLOC, name: "scry_counts", description: "per-CPU hash")
  }

  /// Every key of a hash map with the sum over CPUs of its per-CPU u64 value, in the map's order.
  /// A key removed while walking is skipped; allocates (read at exit and at each `print`).
  public func perCPUSums(keySize: Int) throws(KernelError) -> [(key: [UInt8], total: UInt64)] {
    var result: [(key: [UInt8], total: UInt64)] = []
    var key = [UInt8](repeating: 0, count: keySize)
    var next = [UInt8](repeating: 0, count: keySize)
    let stride = (valueSize + 7) & ~7
    var values = [UInt8](repeating: 0, count: stride * BPFMap.possibleCPUCount())
    var first = true
    while true {
      let moved = key.withUnsafeBytes { k in
        next.withUnsafeMutableBytes { scry_bpf_map_next_key(handle.raw, first ? nil : k.baseAddress, $0.baseAddress) }
      }
      if moved != 0 {
        if Glibc.errno == ENOENT { return result }
        throw BPFMap.error(operation: "bpf(BPF_MAP_GET_NEXT_KEY)", subject: description, errno: Glibc.errno)
      }
      first = false
      key = next
      let found = key.withUnsafeBytes { k in values.withUnsafeMutableBytes { scry_bpf_map_lookup(handle.raw, k.baseAddress, $0.baseAddress) } }
      guard found == 0 else { continue }
      let total = stride == 8
        ? values.withUnsafeBytes { raw in (0..<(raw.count / 8)).reduce(UInt64(0)) { $0 &+ raw.loadUnaligned(fromByteOffset: $1 * 8, as: UInt64.self) } }
        : 0
      result.append((key, total))
    }
  }

  /// A BPF_MAP_TYPE_STACK_TRACE of `entries` buckets (a power of two), each holding one stack of at
  /// most `depth` frames; `bpf_get_stackid` returns a stack's bucket. Preallocated by the kernel.
  public static func stackTrace(depth: Int, entries: Int) throws(KernelError) -> BPFMap {
    try create(
      type: SCRY_BPF_MAP_TYPE_STACK_TRACE, valueSize: 8 * depth, entries: entries, name: "scry_stacks",
      description: "stack trace map")
  }

  /// The frames of stack `id` of a stack trace map, innermost first (the kernel zero-fills the
  /// value after the last frame); empty when the id holds no stack.
  public func stackFrames(id: UInt32) -> [UInt64] {
    var frames = [UInt64](repeating: 0, count: valueSize / 8)
    var key = id
    let found = frames.withUnsafeMutableBytes { scry_bpf_map_lookup(handle.raw, &key, $0.baseAddress) }
    guard found == 0 else { return [] }
    if let end = frames.firstIndex(of: 0) { frames.removeSubrange(end...) }
    return frames
  }

  /// A BPF_MAP_TYPE_ARRAY of `entries` u32 values, zero-filled (a table a program looks up by index).
  public static func array(entries: Int, name: String) throws(KernelError) -> BPFMap {
    try create(type: SCRY_BPF_MAP_TYPE_ARRAY, valueSize: 4, entries: entries, name: name, description: "array")
  }

  /// A BPF_MAP_TYPE_PROG_ARRAY of `entries` slots, each empty or a program fd (`bpf_tail_call`'s table).
  public static func programArray(entries: Int, name: String) throws(KernelError) -> BPFMap {
    try create(type: SCRY_BPF_MAP_TYPE_PROG_ARRAY, valueSize: 4, entries: entries, name: name, description: "program array")
  }

  /// A BPF_MAP_TYPE_RINGBUF of `bytes` (a power of two pages): one ring shared by every CPU,
  /// in which records appear in the order they were reserved (see `BPFRing`).
  public static func ringBuffer(bytes: Int) throws(KernelError) -> BPFMap {
    try create(
      type: SCRY_BPF_MAP_TYPE_RINGBUF, keySize: 0, valueSize: 0, entries: bytes, name: "scry_ring",
      description: "BPF ring buffer")
  }

  private static func create(
    type: UInt32, keySize: UInt32 = 4, valueSize: Int, entries: Int, flags: UInt32 = 0, name: String,
    description: String
  ) throws(KernelError) -> BPFMap {
    guard valueSize > 0 || keySize == 0, valueSize <= Int(UInt32.max), entries > 0, entries <= Int(UInt32.max) else {
      throw KernelError(
        operation: "bpf(BPF_MAP_CREATE)", subject: description, errno: EINVAL,
        explanation: "a map needs a positive value size and entry count (got \(valueSize) bytes, \(entries) entries)")
    }
    let fd = scry_bpf_map_create(type, keySize, UInt32(valueSize), UInt32(entries), flags, name)
    guard fd >= 0 else {
      throw BPFMap.error(operation: "bpf(BPF_MAP_CREATE)", subject: description, errno: Glibc.errno)
    }
    return BPFMap(fd: fd, description: description, valueSize: valueSize, entries: entries)
  }

  /// Stores `fd` at `index`: a perf event's in a perf event array, a program's in a program array
  /// (the kernel keeps its own reference, so the fd may be closed afterwards), or a plain u32 value.
  public func update(index: UInt32, fd value: Int32) throws(KernelError) {
    var key = index
    var fdValue = UInt32(bitPattern: value)
    let result = scry_bpf_map_update(handle.raw, &key, &fdValue, 0)
    guard result == 0 else {
      throw BPFMap.error(operation: "bpf(BPF_MAP_UPDATE_ELEM)", subject: "\(description)[\(index)]", errno: Glibc.errno)
    }
  }

  /// The values of a per-CPU array at `index`, one per possible CPU (for tests and
  /// debugging; allocates).
  public func perCPUValues(index: UInt32) throws(KernelError) -> [[UInt8]] {
    let stride = (valueSize + 7) & ~7
    let cpus = BPFMap.possibleCPUCount()
    var buffer = [UInt8](repeating: 0, count: stride * cpus)
    var key = index
    let result = buffer.withUnsafeMutableBytes { scry_bpf_map_lookup(handle.raw, &key, $0.baseAddress) }
    guard result == 0 else {
      throw BPFMap.error(operation: "bpf(BPF_MAP_LOOKUP_ELEM)", subject: "\(description)[\(index)]", errno: Glibc.errno)
    }
    return (0..<cpus).map { Array(buffer[($0 * stride)..<($0 * stride + valueSize)]) }
  }

  /// The sum over every CPU of the u64 at `index` of a per-CPU array of counters.
  public func perCPUSum(index: UInt32) throws(KernelError) -> UInt64 {
    try perCPUValues(index: index).reduce(0) { sum, bytes in
      sum &+ bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
  }

  /// The number of possible CPUs (/sys/devices/system/cpu/possible): the size of per-CPU
  /// values and the entries a perf event array needs to cover every CPU.
  public static func possibleCPUCount() -> Int {
    if let text = try? FileSystem.readText("/sys/devices/system/cpu/possible"),
      let cpus = SystemInfo.parseCPUList(text.filter { $0 != "\n" }), let last = cpus.max()
    {
      return Int(last) + 1
    }
    return max(Int(sysconf(Int32(_SC_NPROCESSORS_CONF))), 1)
  }

  /// A bpf(2) errno as a sentence with the usual cause.
  static func error(operation: String, subject: String, errno code: Int32) -> KernelError {
    let explanation: String?
    switch code {
    case EPERM, EACCES:
      explanation = "loading BPF needs root (or CAP_BPF and CAP_PERFMON)"
    case ENOSYS:
      explanation = "this kernel has no bpf(2) (CONFIG_BPF_SYSCALL is off)"
    case ENOMEM:
      explanation = "the kernel could not allocate the map or program (memory cgroup or RLIMIT_MEMLOCK)"
    case E2BIG:
      explanation = "the value or program is too large for this kernel"
    default:
      explanation = nil
    }
    return KernelError(operation: operation, subject: subject, errno: code, explanation: explanation)
  }
}
