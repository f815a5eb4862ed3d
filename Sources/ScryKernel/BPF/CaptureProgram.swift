/// The capture compiler: a BPF program that writes what one probe's block needs at the moment of
/// the event into a `BPFRing`, instead of a perf sample. One family for the program types that
/// hang on perf events: a tracepoint's (the record is at hand), and a software or timer event's
/// (`perf_event` programs: the task, time and CPU, no record).
///
/// Each hit becomes one ring record whose body is laid out exactly as perf lays out a
/// PERF_RECORD_SAMPLE body of `sampleType` (IDENTIFIER, TID, TIME, CPU, RAW, in that order),
/// so the reader decodes both alike. The program fills the fields from helpers:
/// IDENTIFIER is the constant `identifier` (the reader's route), TID from
/// `bpf_get_current_pid_tgid`, TIME from `bpf_ktime_get_ns` (CLOCK_MONOTONIC, as the perf
/// events' clock), CPU from `bpf_get_smp_processor_id`, RAW from the record (`recordSize`
/// bytes, with the common fields rewritten as `TracepointFetch` describes). With `includesComm`,
/// the task's name follows (16 bytes, `bpf_get_current_comm`): the name at the moment of the
/// event, where a perf sample leaves it to the reader's process table. Then the credentials and
/// stacks asked for, then the reads area (`reads`, at `readsOffset`): memory behind pointers read
/// at the event, whatever the kind.
///
/// Why: a perf sample costs the traced task its whole output path (about +460 ns a hit with
/// RAW and TIME on this kind of VM), a ring record about +170 ns; and since the ring is one for
/// every CPU, records come in event order without a merge. Submitted without a wakeup: the
/// reader drains the ring on its own clock. A failed reservation (ring full) adds one to the
/// per-CPU counter `Counter.lostRecords` of the counters map, a failed read to `Counter.failedReads`.
public struct CaptureProgram: Sendable, Hashable {
  public static let supportedFields: PerfSampleType = [.identifier, .tid, .time, .cpu, .raw]

  /// The program type, which decides what the context holds and what the return value means.
  public enum Kind: Sendable, Hashable {
    /// BPF_PROG_TYPE_TRACEPOINT: the context is the record.
    case tracepoint
    /// BPF_PROG_TYPE_PERF_EVENT on a software or timer event (`profile`, `software:*`): no record.
    case perfEvent
    /// BPF_PROG_TYPE_KPROBE on a uprobe or kprobe: the context is the registers, and the record
    /// is built from them as tracefs would with the same fetch arguments.
    case probe(ProbeRecord)
    /// BPF_PROG_TYPE_RAW_TRACEPOINT attached to nothing, run by the caller (`BPFProgram.runNow`)
    /// on its own thread: an event the caller makes itself, whose task is the caller. No record.
    case onDemand
    /// BPF_PROG_TYPE_RAW_TRACEPOINT linked to a tracepoint by name (`RawTracepointLink`): the
    /// context is the tracepoint's arguments, not its record, so it serves programs that read
    /// no field (counting per task). The kernel builds no perf record before running it.
    case rawTracepoint
  }

  public var kind: Kind = .tracepoint

  public var sampleType: PerfSampleType
  /// Written as PERF_SAMPLE_IDENTIFIER when `sampleType` has it.
  public var identifier: UInt64
  /// Bytes of the record to copy for RAW (the format's fixed size, plus room for `__data_loc` data).
  public var recordSize: Int
  /// Written into the copy's `common_type` (the tracepoint id's low 16 bits).
  public var commonType: UInt16
  /// The task's 16-byte name follows the perf fields, at `commOffset`.
  public var includesComm: Bool
  /// The task's user and group ids at the event follow (u32 uid, u32 gid), at `credentialsOffset`:
  /// a `setuid` between two events is seen, where /proc read once per task would miss it.
  public var includesCredentials = false
  /// Frames of the kernel and user stacks copied at the event (`bpf_get_stack`), 0 for none; each
  /// is a u64 byte count, then the frames, at `kernelStackOffset` and `userStackOffset`.
  public var kernelStackDepth = 0
  public var userStackDepth = 0
  /// Memory read at the event into the reads area, after everything else (none by default).
  public var reads = CaptureReads()

  public init(
    sampleType: PerfSampleType, identifier: UInt64, recordSize: Int, commonType: UInt16, includesComm: Bool = false,
    kind: Kind = .tracepoint
  ) {
    self.kind = kind
    self.sampleType = sampleType
    self.identifier = identifier
    self.recordSize = recordSize
    self.commonType = commonType
    self.includesComm = includesComm
  }

  /// Where the task's name sits in a record's body: after the fields perf would have written.
  public var commOffset: Int {
    var size = 0
    for field in [PerfSampleType.identifier, .tid, .time, .cpu] where sampleType.contains(field) { size += 8 }
    if sampleType.contains(.raw) { size += 4 + rawSize }
    return size
  }

  /// perf's RAW size word: the data padded so that size word plus data end on 8 bytes.
  public var rawSize: Int { ((rawDataSize + 4 + 7) & ~7) - 4 }

  /// Bytes of RAW data before padding: the record copy, and the reads when they are part of it.
  private var rawDataSize: Int { readsInRecordAt.map { $0 + reads.size } ?? recordSize }

  /// With a tracepoint's record, the reads can be part of RAW instead of following everything:
  /// at this offset into the RAW data (at or after the record's end), where a reader finds them
  /// as it finds the record's own fields. nil: the reads area is at the end of the body.
  public var readsInRecordAt: Int?

  /// Bytes of each record's body.
  public var sampleSize: Int {
    readsInRecordAt == nil ? readsOffset + reads.size : userStackOffset + Self.stackSize(userStackDepth)
  }

  /// Where the reads area sits in the body: in RAW (see `readsInRecordAt`), else after the user
  /// stack, if any. Read i's slot is at `readsOffset + reads.slotOffsets[i]`.
  public var readsOffset: Int {
    if let inRecord = readsInRecordAt { return rawDataOffset + inRecord }
    return userStackOffset + Self.stackSize(userStackDepth)
  }

  /// Where the RAW data starts in the body: after the fields before it and its size word.
  var rawDataOffset: Int {
    var size = 4
    for field in [PerfSampleType.identifier, .tid, .time, .cpu] where sampleType.contains(field) { size += 8 }
    return size
  }

  /// The largest body: the instructions address the record with 16-bit offsets.
  static let maximumSampleSize = 32760

  /// Where the kernel stack sits in a record's body: after the credentials, if any.
  public var kernelStackOffset: Int { credentialsOffset + (includesCredentials ? 8 : 0) }

  /// Where the user stack sits: after the kernel stack, if any.
  public var userStackOffset: Int { kernelStackOffset + Self.stackSize(kernelStackDepth) }

  /// A stack's bytes: its byte count, then the frames.
  static func stackSize(_ depth: Int) -> Int { depth > 0 ? 8 + 8 * depth : 0 }

  /// BPF_F_USER_STACK.
  static let userStackFlag: Int32 = 1 << 8

  /// Where the task's uid and gid sit in a record's body: after its name, if any.
  public var credentialsOffset: Int { commOffset + (includesComm ? 16 : 0) }

  /// Refuses what the program cannot produce: other sample fields, a RAW copy too small to
  /// hold the common fields or larger than a tracepoint record can be (PERF_MAX_TRACE_SIZE),
  /// reads it cannot make, or a record too large.
  public func validate() throws(KernelError) {
    try reads.validate(for: kind)
    guard sampleSize <= Self.maximumSampleSize else {
      throw KernelError(
        operation: "build capture program", subject: "record", errno: 0,
        explanation: "a record of \(sampleSize) bytes is over \(Self.maximumSampleSize)")
    }
    let unsupported = sampleType.subtracting(Self.supportedFields)
    guard unsupported.isEmpty else {
      throw KernelError(
        operation: "build delivery program", subject: "tracepoint", errno: 0,
        explanation: "sample fields 0x\(String(unsupported.rawValue, radix: 16)) cannot come from a BPF program")
    }
    if case .probe(let layout) = kind {
      // Without RAW the record is not written, whatever its layout.
      guard !sampleType.contains(.raw) || (layout.recordSize == recordSize && recordSize <= 16384) else {
        throw KernelError(
          operation: "build capture program", subject: "probe", errno: 0,
          explanation: "a probe record of \(layout.recordSize) bytes (planned \(recordSize)) is over 16 KiB or misplanned")
      }
      return
    }
    if sampleType.contains(.raw) && kind.hasNoRecord && (recordSize != 0 || readsInRecordAt != 0) {
      throw KernelError(
        operation: "build capture program", subject: "perf event", errno: 0,
        explanation: "only a tracepoint or a probe has a record to copy; a perf event's RAW data is its reads")
    }
    if let inRecord = readsInRecordAt, isProbe || !sampleType.contains(.raw) || inRecord < recordSize || inRecord > 2048 {
      throw KernelError(
        operation: "build capture program", subject: "memory reads", errno: 0,
        explanation: "reads in RAW at \(inRecord) need a tracepoint's record of at most that size (\(recordSize))")
    }
    if sampleType.contains(.raw) && kind == .tracepoint && !(8...2048).contains(recordSize) {
      throw KernelError(
        operation: "build delivery program", subject: "tracepoint", errno: 0,
        explanation: "a record copy of \(recordSize) bytes is outside 8...2048")
    }
  }

  private var isProbe: Bool {
    if case .probe = kind { return true }
    return false
  }

  /// BPF_RB_NO_WAKEUP: the reader polls.
  static let noWakeup: Int32 = 1

  /// The program: r6 = ctx, r8 = pid_tgid, r7 = the reserved record. `lostMapFD` is the counters
  /// map (see `Counter`, `makeCounters`): with `reads`, a map without the failed-read entry
  /// leaves failed reads uncounted.
  public func instructions(ringFD: Int32, lostMapFD: Int32) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let lost = asm.newLabel()
    let done = asm.newLabel()
    asm.emit(.mov64(.r6, .r1))
    if sampleType.contains(.tid) || sampleType.contains(.raw) {
      asm.emit(.call(.getCurrentPidTgid))
      asm.emit(.mov64(.r8, .r0))
    }
    asm.emit(BPFInstruction.ldMapFD(.r1, ringFD))
    asm.emit(.mov64(.r2, Int32(sampleSize)))
    asm.emit(.mov64(.r3, 0))
    asm.emit(.call(.ringbufReserve))
    asm.jump(.equal, .r0, 0, to: lost)
    asm.emit(.mov64(.r7, .r0))

    var offset: Int16 = 0
    if sampleType.contains(.identifier) {
      asm.emit(BPFInstruction.ldImm64(.r1, identifier))
      asm.emit(.stx(.double, .r7, offset, .r1))
      offset += 8
    }
    if sampleType.contains(.tid) {
      // perf's layout: u32 pid (the process), u32 tid; pid_tgid is tgid << 32 | tid.
      asm.emit(.mov64(.r1, .r8))
      asm.emit(.rsh64(.r1, 32))
      asm.emit(.stx(.word, .r7, offset, .r1))
      asm.emit(.stx(.word, .r7, offset + 4, .r8))
      offset += 8
    }
    if sampleType.contains(.time) {
      // Taken after the reservation, so the ring's order and the times agree but for an interrupt between.
      asm.emit(.call(.ktimeGetNs))
      asm.emit(.stx(.double, .r7, offset, .r0))
      offset += 8
    }
    if sampleType.contains(.cpu) {
      asm.emit(.call(.getSmpProcessorID))
      asm.emit(.stx(.word, .r7, offset, .r0))
      asm.emit(.st(.word, .r7, offset + 4, 0))
      offset += 8
    }
    if sampleType.contains(.raw), case .probe(let layout) = kind {
      asm.emit(.st(.word, .r7, offset, Int32(rawSize)))
      emitProbeRecord(layout, at: offset + 4, countersMapFD: lostMapFD, into: &asm)
    } else if sampleType.contains(.raw) && kind.hasNoRecord {
      // No record: the RAW data is the reads alone, written after the stacks are.
      asm.emit(.st(.word, .r7, offset, Int32(rawSize)))
    } else if sampleType.contains(.raw) {
      asm.emit(.st(.word, .r7, offset, Int32(rawSize)))
      // The padding after the record is copied too (the perf trace buffer goes on), so no
      // byte of the record is left unwritten.
      asm.emit(.mov64(.r1, .r7))
      asm.emit(.add64(.r1, Int32(offset + 4)))
      // Up to the reads when they are part of RAW (they write every byte of their slots).
      asm.emit(.mov64(.r2, Int32(readsInRecordAt ?? rawSize)))
      asm.emit(.mov64(.r3, .r6))
      asm.emit(.call(.probeReadKernel))
      // Bytes 0..<8 of ctx hold a pt_regs pointer here: put back common_type and common_pid.
      asm.emit(.st(.word, .r7, offset + 4, Int32(commonType)))
      asm.emit(.stx(.word, .r7, offset + 8, .r8))
    }
    if includesComm {
      asm.emit(.mov64(.r1, .r7))
      asm.emit(.add64(.r1, Int32(commOffset)))
      asm.emit(.mov64(.r2, 16))
      asm.emit(.call(.getCurrentComm))
    }
    if includesCredentials {
      // bpf_get_current_uid_gid gives gid << 32 | uid: as stored, u32 uid then u32 gid.
      asm.emit(.call(.getCurrentUidGid))
      asm.emit(.stx(.double, .r7, Int16(credentialsOffset), .r0))
    }
    if kernelStackDepth > 0 {
      emitStack(at: kernelStackOffset, depth: kernelStackDepth, flags: 0, into: &asm)
    }
    if userStackDepth > 0 {
      emitStack(at: userStackOffset, depth: userStackDepth, flags: Self.userStackFlag, into: &asm)
    }
    emitReads(countersMapFD: lostMapFD, into: &asm)
    asm.emit(.mov64(.r1, .r7))
    asm.emit(.mov64(.r2, Self.noWakeup))
    asm.emit(.call(.ringbufSubmit))
    asm.jump(to: done)

    // The ring is full: count the hit as lost.
    asm.place(lost)
    asm.incrementElement(Counter.lostRecords.rawValue, ofMapFD: lostMapFD)

    asm.place(done)
    switch kind {
    case .tracepoint: asm.emit(.mov64(.r0, BPFProgram.tracepointPassesOn))
    // The perf event (and a probe made through a PMU) is Scry's own and has no ring: 0 skips
    // writing a sample nobody reads.
    case .perfEvent, .probe, .onDemand, .rawTracepoint: asm.emit(.mov64(.r0, 0))
    }
    asm.emit(.exit)
    return asm.finish()
  }

  /// Loads the program for this kind of event (a probe's for an `UprobeLink` when `forUprobeLink`).
  public func load(ringFD: Int32, lostMapFD: Int32, forUprobeLink: Bool = false) throws(KernelError) -> BPFProgram {
    let code = instructions(ringFD: ringFD, lostMapFD: lostMapFD)
    switch kind {
    case .tracepoint: return try BPFProgram.loadTracepointProgram(code, name: "scry_capture")
    case .perfEvent: return try BPFProgram.loadPerfEventProgram(code, name: "scry_capture")
    case .probe: return try BPFProgram.loadProbeProgram(code, name: "scry_capture", forUprobeLink: forUprobeLink)
    case .onDemand: return try BPFProgram.loadOnDemandProgram(code, name: "scry_capture_now")
    case .rawTracepoint: return try BPFProgram.loadRawTracepointProgram(code, name: "scry_capture")
    }
  }

  /// bpf_get_stack(ctx, record + offset + 8, 8 * depth, flags), its byte count (0 on failure) first.
  private func emitStack(at offset: Int, depth: Int, flags: Int32, into asm: inout BPFAssembler) {
    let ok = asm.newLabel()
    asm.emit(.mov64(.r1, .r6))
    asm.emit(.mov64(.r2, .r7))
    asm.emit(.add64(.r2, Int32(offset + 8)))
    asm.emit(.mov64(.r3, Int32(8 * depth)))
    asm.emit(.mov64(.r4, flags))
    asm.emit(.call(.getStack))
    asm.jump(.signedGreaterOrEqual, .r0, 0, to: ok)
    asm.emit(.mov64(.r0, 0))
    asm.place(ok)
    asm.emit(.stx(.double, .r7, Int16(offset), .r0))
  }
}

extension CaptureProgram.Kind {
  /// Events without a record of their own: the RAW data is the reads alone.
  var hasNoRecord: Bool { self == .perfEvent || self == .onDemand }
}
