/// The fields of one PERF_RECORD_SAMPLE that `PerfSampleDecoder` understands.
///
/// Fields the event did not ask for are 0 (and `raw` is empty). `raw` and `callchain`
/// point into the record and share its lifetime (the `drain` callback).
public struct PerfSample {
  public var identifier: UInt64 = 0
  public var ip: UInt64 = 0
  public var pid: UInt32 = 0
  public var tid: UInt32 = 0
  public var time: UInt64 = 0
  public var addr: UInt64 = 0
  public var id: UInt64 = 0
  public var streamID: UInt64 = 0
  public var cpu: UInt32 = 0
  public var period: UInt64 = 0
  /// The instruction pointers (UInt64 each) of PERF_SAMPLE_CALLCHAIN, context markers included.
  public var callchain = UnsafeRawBufferPointer(start: nil, count: 0)
  /// The PERF_SAMPLE_RAW bytes: for a tracepoint, the record laid out as its `EventFormat`.
  /// Its length is the kernel's raw size, which includes up to 7 bytes of padding.
  public var raw = UnsafeRawBufferPointer(start: nil, count: 0)
  /// PERF_SAMPLE_CGROUP: the task's cgroup v2 id.
  public var cgroup: UInt64 = 0

  public init() {}
}

/// Decodes PERF_RECORD_SAMPLE bodies for one `sampleType`, in place, without allocating.
///
/// Fields come in the kernel's fixed order (IDENTIFIER, IP, TID, TIME, ADDR, ID,
/// STREAM_ID, CPU, PERIOD, READ, CALLCHAIN, RAW, ...); PERF_SAMPLE_READ is not supported
/// (its size depends on read_format), so a layout with it decodes nothing.
public struct PerfSampleDecoder: Sendable {
  public let sampleType: PerfSampleType

  public init(sampleType: PerfSampleType) {
    self.sampleType = sampleType
  }

  /// The sample in `body` (a `PerfRecord.body` of type `PerfRecordType.sample`), or nil if
  /// it is shorter than its layout says.
  public func decode(_ body: UnsafeRawBufferPointer) -> PerfSample? {
    var sample = PerfSample()
    var at = 0
    let end = body.count
    @inline(__always) func u64() -> UInt64? {
      guard at + 8 <= end else { return nil }
      defer { at += 8 }
      return body.loadUnaligned(fromByteOffset: at, as: UInt64.self)
    }
    let type = sampleType
    if type.contains(.read) { return nil }
    if type.contains(.identifier) {
      guard let v = u64() else { return nil }
      sample.identifier = v
    }
    if type.contains(.ip) {
      guard let v = u64() else { return nil }
      sample.ip = v
    }
    if type.contains(.tid) {
      guard at + 8 <= end else { return nil }
      sample.pid = body.loadUnaligned(fromByteOffset: at, as: UInt32.self)
      sample.tid = body.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)
      at += 8
    }
    if type.contains(.time) {
      guard let v = u64() else { return nil }
      sample.time = v
    }
    if type.contains(.addr) {
      guard let v = u64() else { return nil }
      sample.addr = v
    }
    if type.contains(.id) {
      guard let v = u64() else { return nil }
      sample.id = v
    }
    if type.contains(.streamID) {
      guard let v = u64() else { return nil }
      sample.streamID = v
    }
    if type.contains(.cpu) {
      guard at + 8 <= end else { return nil }
      sample.cpu = body.loadUnaligned(fromByteOffset: at, as: UInt32.self)
      at += 8
    }
    if type.contains(.period) {
      guard let v = u64() else { return nil }
      sample.period = v
    }
    if type.contains(.callchain) {
      guard let count = u64(), count <= UInt64(end - at) / 8 else { return nil }
      let bytes = Int(count) * 8
      sample.callchain = UnsafeRawBufferPointer(rebasing: body[at..<(at + bytes)])
      at += bytes
    }
    if type.contains(.raw) {
      guard at + 4 <= end else { return nil }
      let size = Int(body.loadUnaligned(fromByteOffset: at, as: UInt32.self))
      at += 4
      guard at + size <= end else { return nil }
      sample.raw = UnsafeRawBufferPointer(rebasing: body[at..<(at + size)])
      at += size
    }
    // Between RAW and CGROUP come fields Scry never asks for (branch stack, registers, …).
    if type.contains(.cgroup) {
      guard let v = u64() else { return nil }
      sample.cgroup = v
    }
    return sample
  }
}

/// PERF_RECORD_COMM: a task's name changed (`isExec`: because it exec'd).
public struct PerfCommRecord {
  public var pid: UInt32
  public var tid: UInt32
  /// The name bytes without the terminating NUL (at most 16); valid in the callback only.
  public var name: UnsafeRawBufferPointer
  public var isExec: Bool

  /// Decodes a COMM record; nil if malformed.
  public init?(_ record: PerfRecord) {
    let body = record.body
    guard record.type == PerfRecordType.comm, body.count >= 8 else { return nil }
    pid = body.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
    tid = body.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    var length = 0
    while 8 + length < body.count && length < 16 && body[8 + length] != 0 { length += 1 }
    name = UnsafeRawBufferPointer(rebasing: body[8..<(8 + length)])
    isExec = record.misc & (1 << 13) != 0  // PERF_RECORD_MISC_COMM_EXEC
  }

  /// The name as a String (allocates: for the process table, not the hot path).
  public var nameString: String { String(decoding: name, as: UTF8.self) }
}

/// PERF_RECORD_FORK or PERF_RECORD_EXIT.
public struct PerfTaskRecord {
  public var isExit: Bool
  public var pid: UInt32
  public var ppid: UInt32
  public var tid: UInt32
  public var ptid: UInt32
  public var time: UInt64

  /// Decodes a FORK/EXIT record; nil for other types or if malformed.
  public init?(_ record: PerfRecord) {
    let body = record.body
    guard record.type == PerfRecordType.fork || record.type == PerfRecordType.exit, body.count >= 24 else {
      return nil
    }
    isExit = record.type == PerfRecordType.exit
    pid = body.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
    ppid = body.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    tid = body.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    ptid = body.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
    time = body.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
  }
}

/// PERF_RECORD_LOST ({id, lost}) or PERF_RECORD_LOST_SAMPLES ({lost}): samples dropped
/// because the ring was full.
public struct PerfLostRecord {
  public var lost: UInt64

  /// Decodes a LOST/LOST_SAMPLES record; nil for other types or if malformed.
  public init?(_ record: PerfRecord) {
    let body = record.body
    if record.type == PerfRecordType.lost, body.count >= 16 {
      lost = body.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    } else if record.type == PerfRecordType.lostSamples, body.count >= 8 {
      lost = body.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
    } else {
      return nil
    }
  }
}

/// PERF_RECORD_MMAP2: a process mapped part of a file (executable mappings only, unless data
/// mappings were asked for).
public struct PerfMappingRecord {
  public var pid: UInt32
  public var mapping: ProcessMappings.Mapping

  /// Decodes an MMAP2 record; nil if malformed. `{u32 pid, tid; u64 addr, len, pgoff; 24 bytes of
  /// device and inode or build id; u32 prot, flags; char filename[]}`: the name at byte 64.
  public init?(_ record: PerfRecord) {
    let body = record.body
    guard record.type == PerfRecordType.mmap2, body.count > 64 else { return nil }
    pid = body.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
    let start = body.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    let length = body.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
    let offset = body.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
    var end = 64
    while end < body.count && body[end] != 0 { end += 1 }
    let path = String(decoding: UnsafeRawBufferPointer(rebasing: body[64..<end]), as: UTF8.self)
    mapping = ProcessMappings.Mapping(start: start, end: start &+ length, fileOffset: offset, path: path)
  }
}
