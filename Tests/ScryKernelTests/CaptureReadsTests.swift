import Glibc
import Testing

@testable import ScryKernel

/// Byte offsets of `struct task_struct` members, from the kernel's BTF as bpftool dumps it: got
/// apart from Scry's own BTF reading, so the tests check the reads and not a parser. nil (and
/// the reason) without bpftool or BTF.
private enum TaskStructOffsets {
  static let parsed: Result<[String: Int], TestSkip> = parse()

  struct TestSkip: Error { var reason: String }

  static func offset(of member: String) throws(TestSkip) -> Int {
    let offsets = try parsed.get()
    guard let offset = offsets[member] else { throw TestSkip(reason: "no task_struct.\(member) in the BTF dump") }
    return offset
  }

  private static func parse() -> Result<[String: Int], TestSkip> {
    guard access("/sys/kernel/btf/vmlinux", R_OK) == 0 else { return .failure(TestSkip(reason: "no kernel BTF")) }
    guard let pipe = popen("bpftool btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null", "r") else {
      return .failure(TestSkip(reason: "cannot run bpftool"))
    }
    defer { pclose(pipe) }
    var offsets: [String: Int] = [:]
    var inTask = false
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, pipe) > 0, let line {
      let text = String(decoding: UnsafeRawBufferPointer(start: line, count: strlen(line)), as: UTF8.self)
      if text.hasPrefix("[") {
        if inTask { break }
        inTask = text.contains("] STRUCT 'task_struct' ")
      } else if inTask, let name = text.split(separator: "'").dropFirst().first,
        let bits = text.split(separator: " ").first(where: { $0.hasPrefix("bits_offset=") }),
        let offset = Int(bits.dropFirst("bits_offset=".count).trimmingSuffix())
      {
        offsets[String(name)] = offset / 8
      }
    }
    return offsets.isEmpty ? .failure(TestSkip(reason: "bpftool is not installed or gave no task_struct")) : .success(offsets)
  }
}

extension Substring {
  fileprivate func trimmingSuffix() -> Substring { prefix { $0.isNumber } }
}

/// Ring records of one capture program, attached to a tracepoint or to a perf event.
private struct CaptureHarness {
  let ring: BPFRing
  let counters: BPFMap
  let event: PerfEvent
  let program: BPFProgram
  let capture: CaptureProgram

  /// `capture` on the syscalls tracepoint `name`, for every task (one event carries it).
  init(tracepoint name: String, _ capture: CaptureProgram) throws {
    var capture = capture
    let format = try TraceFS.locate().format(category: "syscalls", name: name)
    capture.commonType = UInt16(truncatingIfNeeded: format.id)
    if capture.sampleType.contains(.raw) { capture.recordSize = format.fixedSize }
    try capture.validate()
    ring = try BPFRing(bytes: 1 << 20)
    counters = try CaptureProgram.makeCounters()
    program = try capture.load(ringFD: ring.map.fd, lostMapFD: counters.fd)
    var options = PerfEventOptions()
    options.countingOnly = true
    event = try PerfEvent.tracepoint(
      id: format.id, description: "tracepoint:syscalls:\(name)", cpu: SystemInfo.onlineCPUs()[0], pid: -1,
      options: options)
    try event.attach(program)
    self.capture = capture
  }

  /// `capture` on the overflows of a task-clock event of this thread, every `periodNanoseconds`.
  init(taskClockEvery periodNanoseconds: UInt64, _ capture: CaptureProgram) throws {
    try capture.validate()
    ring = try BPFRing(bytes: 1 << 20)
    counters = try CaptureProgram.makeCounters()
    program = try capture.load(ringFD: ring.map.fd, lostMapFD: counters.fd)
    let options = PerfEventOptions(samplePeriod: periodNanoseconds)
    event = try PerfEvent.software(.taskClock, cpu: -1, pid: SystemInfo.currentThreadID(), options: options)
    try event.attach(program)
    self.capture = capture
  }

  /// `capture` on a uprobe at libc's `function`, for every task (one event carries it).
  init(libcFunction function: String, _ capture: CaptureProgram) throws {
    try capture.validate()
    let libc = try #require(SharedLibraries.resolve("libc", pid: nil))
    let offset = try ELFFile(path: libc).uprobeOffset(ofFunction: function)
    ring = try BPFRing(bytes: 1 << 20)
    counters = try CaptureProgram.makeCounters()
    program = try capture.load(ringFD: ring.map.fd, lostMapFD: counters.fd)
    var options = PerfEventOptions()
    options.countingOnly = true
    event = try PerfEvent.uprobe(
      path: libc, fileOffset: offset, isReturn: false, description: "uprobe:libc:\(function)",
      cpu: SystemInfo.onlineCPUs()[0], pid: -1, options: options)
    try event.attach(program)
    self.capture = capture
  }

  /// The bodies of this thread's records, copied out.
  func ownRecords() -> [[UInt8]] {
    let decoder = PerfSampleDecoder(sampleType: capture.sampleType)
    let me = UInt32(SystemInfo.currentThreadID())
    var records: [[UInt8]] = []
    ring.drain { body in
      #expect(body.count == capture.sampleSize)
      if let sample = decoder.decode(body), sample.tid == me { records.append(Array(body)) }
    }
    return records
  }

  func failedReads() throws -> UInt64 { try CaptureProgram.total(of: .failedReads, in: counters) }

  /// Where read `index` sits in a body.
  func slot(_ index: Int) -> Int { capture.readsOffset + capture.reads.slotOffsets[index] }
}

private func u64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
  bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
}

/// Burns `milliseconds` of this thread's CPU time (what a task clock counts, however loaded the machine).
private func spin(milliseconds: Int) {
  var start = timespec()
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
  var now = start
  var sink = 0
  while (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1_000_000 < milliseconds {
    for i in 0..<10_000 { sink &+= i }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
  }
  #expect(sink != 1)
}

@Suite("Capture reads layout")
struct CaptureReadsLayoutTests {
  @Test func slotsFollowInOrderOnEightBytes() throws {
    let reads = CaptureReads([
      MemoryRead(.read(.currentTask, offset: 100, byteCount: 4), space: .kernel),
      MemoryRead(.string(.contextWord(offset: 24), offset: 0, maxLength: 13), space: .user),
      MemoryRead(.operand(.currentTask, byteCount: 8), space: .kernel),
      MemoryRead(.bytes(.memory(.currentTask, offset: 8), offset: 0, count: 3), space: .kernel),
    ])
    #expect(reads.slotOffsets == [0, 8, 24, 32])
    #expect(reads.size == 40)
    var program = CaptureProgram(sampleType: [.tid], identifier: 0, recordSize: 0, commonType: 0, includesComm: true)
    program.userStackDepth = 4
    let before = program.sampleSize
    program.reads = reads
    #expect(program.readsOffset == before)
    #expect(program.sampleSize == before + 40)
    try program.validate()
  }

  /// `-kk`: one failure code per read after the last slot, the area still on 8 bytes.
  @Test func failureCodesFollowTheSlots() throws {
    let reads = [
      MemoryRead(.read(.constant(0), offset: 0, byteCount: 4), space: .user),
      MemoryRead(.string(.currentTask, offset: 8, maxLength: 13), space: .kernel),
    ]
    #expect(CaptureReads(reads).size == 24)
    let reporting = CaptureReads(reads, reportsFailures: true)
    #expect(reporting.failureCodesOffset == 24)
    #expect(reporting.size == 32)
    try reporting.validate(for: .onDemand)
  }

  @Test func refusesWhatTheProgramCannotRead() {
    func refused(_ read: MemoryRead, _ kind: CaptureProgram.Kind) -> Bool {
      (try? CaptureReads([read]).validate(for: kind)) == nil
    }
    #expect(refused(MemoryRead(.operand(.contextWord(offset: 0), byteCount: 8), space: .kernel), .tracepoint))
    #expect(refused(MemoryRead(.operand(.contextWord(offset: 12), byteCount: 8), space: .kernel), .tracepoint))
    #expect(!refused(MemoryRead(.operand(.contextWord(offset: 176), byteCount: 8), space: .kernel), .perfEvent))
    #expect(!refused(MemoryRead(.operand(.contextWord(offset: 168), byteCount: 8), space: .kernel), .tracepoint))
    #expect(refused(MemoryRead(.read(.stackEntry(1), offset: 0, byteCount: 8), space: .user), .tracepoint))
    #expect(refused(MemoryRead(.read(.currentTask, offset: 0, byteCount: 3), space: .kernel), .perfEvent))
    #expect(refused(MemoryRead(.string(.currentTask, offset: 0, maxLength: 5000), space: .kernel), .perfEvent))
    #expect(refused(MemoryRead(.read(.currentTask, offset: 1 << 40, byteCount: 8), space: .kernel), .perfEvent))
    var deep = CaptureOperand.currentTask
    for _ in 0..<9 { deep = .memory(deep, offset: 8) }
    #expect(refused(MemoryRead(.operand(deep, byteCount: 8), space: .kernel), .perfEvent))
  }
}

extension KernelSuites {
  @Suite("Capture reads at the event")
  struct CaptureReadsTests {
    @Test func syscallStringThroughARecordField() throws {
      guard KernelGate.check() else { return }
      let format = try TraceFS.locate().format(category: "syscalls", name: "sys_enter_openat")
      let filename = try #require(format.field(named: "filename"))
      let flags = try #require(format.field(named: "flags"))
      var capture = CaptureProgram(sampleType: [.tid, .raw], identifier: 0, recordSize: 0, commonType: 0)
      capture.reads = CaptureReads([
        MemoryRead(.string(.contextWord(offset: Int16(filename.offset)), offset: 0, maxLength: 256), space: .user),
        MemoryRead(.operand(.contextWord(offset: Int16(flags.offset)), byteCount: 8), space: .kernel),
      ])
      let harness = try CaptureHarness(tracepoint: "sys_enter_openat", capture)
      let path = "/nonexistent/scry-\(getpid())-\(harness.program.fd)/reads"
      try harness.event.enable()
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      try harness.event.disable()
      #expect(fd < 0)
      let ours = harness.ownRecords().filter {
        String(decoding: $0[harness.slot(0)..<harness.slot(0) + 256].prefix { $0 != 0 }, as: UTF8.self) == path
      }
      try #require(ours.count == 1, "no record or several with the path")
      let record = ours[0]
      // The record copy is first and whole: common_type, common_pid, then the fields.
      let raw = 8 + 4
      #expect(record.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: raw, as: UInt16.self) } == harness.capture.commonType)
      #expect(record.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: raw + 4, as: Int32.self) } == SystemInfo.currentThreadID())
      #expect(u64(record, at: raw + flags.offset) == UInt64(O_RDONLY | O_CLOEXEC))
      // The context word at a field's tracefs offset is that field.
      #expect(u64(record, at: harness.slot(1)) == UInt64(O_RDONLY | O_CLOEXEC))
      // NUL-padded to the slot's end.
      #expect(record[(harness.slot(0) + path.utf8.count)..<harness.slot(1)].allSatisfy { $0 == 0 })
    }

    @Test func currentTaskChains() throws {
      guard KernelGate.check() else { return }
      let tgid: Int
      let realParent: Int
      do {
        tgid = try TaskStructOffsets.offset(of: "tgid")
        realParent = try TaskStructOffsets.offset(of: "real_parent")
      } catch {
        print("skipping \(#function): \(error.reason) (the task_struct offsets come from bpftool)")
        return
      }
      var capture = CaptureProgram(sampleType: [.tid], identifier: 0, recordSize: 0, commonType: 0)
      capture.reads = CaptureReads([
        MemoryRead(.read(.currentTask, offset: Int64(tgid), byteCount: 4), space: .kernel),
        MemoryRead(.read(.memory(.currentTask, offset: Int64(realParent)), offset: Int64(tgid), byteCount: 4), space: .kernel),
      ])
      let harness = try CaptureHarness(tracepoint: "sys_enter_getppid", capture)
      try harness.event.enable()
      let parent = getppid()
      try harness.event.disable()
      let ours = harness.ownRecords()
      try #require(ours.count == 1)
      #expect(u64(ours[0], at: harness.slot(0)) == UInt64(getpid()))
      #expect(u64(ours[0], at: harness.slot(1)) == UInt64(parent))
      #expect(try harness.failedReads() == 0)
    }

    @Test func failedReadsAreZeroAndCounted() throws {
      guard KernelGate.check() else { return }
      let format = try TraceFS.locate().format(category: "syscalls", name: "sys_enter_openat")
      let filename = CaptureOperand.contextWord(offset: Int16(try #require(format.field(named: "filename")).offset))
      var capture = CaptureProgram(sampleType: [.tid, .raw], identifier: 0, recordSize: 0, commonType: 0)
      capture.reads = CaptureReads([
        // Fails at the string: the pointer is a bogus 16.
        MemoryRead(.string(filename, offset: 0, maxLength: 64), space: .user),
        // Fails at the first load of two (address 24), counted once.
        MemoryRead(.read(.memory(filename, offset: 8), offset: 16, byteCount: 8), space: .user),
        // Fails before its bytes: their slot is cleared by the failure path.
        MemoryRead(.bytes(.memory(filename, offset: 0), offset: 0, count: 12), space: .user),
        // A user address read as kernel memory fails for every task.
        MemoryRead(.read(filename, offset: 0, byteCount: 4), space: .kernel),
        MemoryRead(.operand(.currentTask, byteCount: 8), space: .kernel),
      ])
      let harness = try CaptureHarness(tracepoint: "sys_enter_openat", capture)
      try harness.event.enable()
      let bogus = try #require(UnsafePointer<CChar>(bitPattern: 16))
      let fd = openat(AT_FDCWD, bogus, O_RDONLY)
      try harness.event.disable()
      #expect(fd < 0)
      let ours = harness.ownRecords().filter { u64($0, at: 12 + 24) == 16 }
      try #require(ours.count == 1)
      let record = ours[0]
      #expect(record[harness.slot(0)..<harness.slot(4)].allSatisfy { $0 == 0 })
      #expect(u64(record, at: harness.slot(4)) != 0)
      // Ours fail 4 times; other tasks' openat at least once (the kernel read of a user pointer).
      let failed = try harness.failedReads()
      #expect(failed >= 4, "\(failed) failed reads")
    }

    @Test func probeReadsThroughRegistersAndTheStack() throws {
      guard KernelGate.check() else { return }
      let tgid = try? TaskStructOffsets.offset(of: "tgid")
      if tgid == nil { print("\(#function): no task_struct offsets from bpftool: tgid left unchecked") }
      let record = ProbeRecord(isKernel: false, isReturn: false, fields: [], fixedSize: 16, stringCapacity: 0)
      var capture = CaptureProgram(sampleType: [.tid], identifier: 0, recordSize: 0, commonType: 0, kind: .probe(record))
      let di = try #require(PTRegs.offset(of: "di"))
      capture.reads = CaptureReads([
        MemoryRead(.string(.register(ptRegsOffset: di), offset: 0, maxLength: 64), space: .user),
        // At the function's first instruction, the word at sp is the return address.
        MemoryRead(.operand(.stackEntry(0), byteCount: 8), space: .user),
        MemoryRead(.read(.currentTask, offset: Int64(tgid ?? 0), byteCount: 4), space: .kernel),
      ])
      let harness = try CaptureHarness(libcFunction: "getenv", capture)
      let name = "SCRY_READS_\(getpid())_\(harness.program.fd)"
      try harness.event.enable()
      #expect(getenv(name) == nil)
      try harness.event.disable()
      let ours = harness.ownRecords().filter {
        String(decoding: $0[harness.slot(0)..<harness.slot(0) + 64].prefix { $0 != 0 }, as: UTF8.self) == name
      }
      try #require(ours.count == 1)
      #expect(u64(ours[0], at: harness.slot(1)) != 0)
      if tgid != nil { #expect(u64(ours[0], at: harness.slot(2)) == UInt64(getpid())) }
    }

    @Test func theLargestReadsLoadForEveryKind() throws {
      guard KernelGate.check() else { return }
      // As large as allowed: bytes (not a multiple of 8) fill what the string and numbers leave.
      let bytes = CaptureReads.maximumSize - CaptureReads.maximumSlotSize - 8 * (CaptureReads.maximumCount - 2) - 3
      var deep = CaptureOperand.currentTask
      for _ in 0..<CaptureReads.maximumDepth - 1 { deep = .memory(deep, offset: 16) }
      let reads = CaptureReads([
        MemoryRead(.string(deep, offset: 8, maxLength: CaptureReads.maximumSlotSize), space: .kernel),
        MemoryRead(.bytes(.contextWord(offset: 8), offset: -8, count: bytes), space: .user),
      ] + (0..<(CaptureReads.maximumCount - 2)).map { _ in MemoryRead(.operand(.contextWord(offset: 8), byteCount: 2), space: .kernel) })
      let record = ProbeRecord(isKernel: false, isReturn: false, fields: [], fixedSize: 16, stringCapacity: 0)
      for kind in [CaptureProgram.Kind.tracepoint, .perfEvent, .probe(record)] {
        var capture = CaptureProgram(sampleType: [.tid, .time], identifier: 0, recordSize: 0, commonType: 0, kind: kind)
        capture.kernelStackDepth = 127
        capture.userStackDepth = 127
        capture.reads = reads
        try capture.validate()
        #expect(capture.reads.size == CaptureReads.maximumSize)
        let ring = try BPFRing(bytes: 1 << 20)
        let counters = try CaptureProgram.makeCounters()
        let program = try capture.load(ringFD: ring.map.fd, lostMapFD: counters.fd)
        #expect(program.instructionCount < 4096, "\(kind)")
      }
    }

    @Test func perfEventReadsTheInterruptedTask() throws {
      guard KernelGate.check() else { return }
      let tgid = try? TaskStructOffsets.offset(of: "tgid")
      if tgid == nil { print("\(#function): no task_struct offsets from bpftool: tgid left unchecked") }
      var capture = CaptureProgram(sampleType: [.tid, .time], identifier: 0, recordSize: 0, commonType: 0, kind: .perfEvent)
      capture.reads = CaptureReads([
        MemoryRead(.operand(.currentTask, byteCount: 8), space: .kernel),
        // bpf_perf_event_data.sample_period, a user-space number as a kernel address: two failing
        // loads, counted once. (Not .addr: a clock event leaves it unset, whatever the stack held.)
        MemoryRead(.read(.memory(.contextWord(offset: 168), offset: 8), offset: 16, byteCount: 4), space: .kernel),
        MemoryRead(.read(.currentTask, offset: Int64(tgid ?? 0), byteCount: 4), space: .kernel),
        MemoryRead(.operand(.contextWord(offset: 168), byteCount: 8), space: .kernel),
      ])
      let harness = try CaptureHarness(taskClockEvery: 1_000_000, capture)
      try harness.event.enable()
      spin(milliseconds: 50)
      try harness.event.disable()
      let ours = harness.ownRecords()
      #expect(ours.count >= 5, "\(ours.count) samples in 50 ms of a 1 ms task clock")
      let tasks = Set(ours.map { u64($0, at: harness.slot(0)) })
      #expect(tasks.count == 1 && !tasks.contains(0))
      for record in ours {
        #expect(u64(record, at: harness.slot(1)) == 0)
        if tgid != nil { #expect(u64(record, at: harness.slot(2)) == UInt64(getpid())) }
        #expect(u64(record, at: harness.slot(3)) == 1_000_000)
      }
      // The event is this thread's: every record, and only they, counted a failed read.
      #expect(try harness.failedReads() == UInt64(ours.count))
      #expect(try CaptureProgram.total(of: .lostRecords, in: harness.counters) == 0)
    }

    /// An on-demand program (a raw tracepoint run by BPF_PROG_TEST_RUN) runs on the calling
    /// thread: its current task is this one, read as a tracepoint's program reads it.
    @Test func onDemandProgramReadsTheCallersTask() throws {
      guard KernelGate.check() else { return }
      let tgid: Int
      let realParent: Int
      do {
        tgid = try TaskStructOffsets.offset(of: "tgid")
        realParent = try TaskStructOffsets.offset(of: "real_parent")
      } catch {
        print("skipping \(#function): \(error.reason) (the task_struct offsets come from bpftool)")
        return
      }
      var capture = CaptureProgram(sampleType: [.tid, .raw], identifier: 0, recordSize: 0, commonType: 0, kind: .onDemand)
      capture.reads = CaptureReads([
        MemoryRead(.read(.currentTask, offset: Int64(tgid), byteCount: 4), space: .kernel),
        MemoryRead(.read(.memory(.currentTask, offset: Int64(realParent)), offset: Int64(tgid), byteCount: 4), space: .kernel),
      ])
      capture.readsInRecordAt = 0
      try capture.validate()
      let ring = try BPFRing(bytes: 4096)
      let counters = try CaptureProgram.makeCounters()
      let program = try capture.load(ringFD: ring.map.fd, lostMapFD: counters.fd)
      try program.runNow()
      try program.runNow()
      let decoder = PerfSampleDecoder(sampleType: capture.sampleType)
      var bodies: [[UInt8]] = []
      ring.drain { bodies.append(Array($0)) }
      try #require(bodies.count == 2)
      for body in bodies {
        let sample = try #require(body.withUnsafeBytes { decoder.decode($0) })
        #expect(sample.tid == UInt32(SystemInfo.currentThreadID()) && sample.pid == UInt32(getpid()))
        #expect(u64(body, at: capture.readsOffset + capture.reads.slotOffsets[0]) == UInt64(getpid()))
        #expect(u64(body, at: capture.readsOffset + capture.reads.slotOffsets[1]) == UInt64(getppid()))
      }
      #expect(try CaptureProgram.total(of: .failedReads, in: counters) == 0)
    }
  }
}
