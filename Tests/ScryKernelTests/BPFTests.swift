import Glibc
import Testing

@testable import ScryKernel

/// The RAW payloads of every sample in `channel`'s rings, copied out.
private func drainPayloads(_ channel: BPFOutputChannel) -> [[UInt8]] {
  let decoder = PerfSampleDecoder(sampleType: channel.sampleType)
  var payloads: [[UInt8]] = []
  for ring in channel.rings {
    ring.drain { record in
      guard record.type == PerfRecordType.sample, let sample = decoder.decode(record.body) else { return }
      payloads.append(Array(sample.raw))
    }
  }
  return payloads
}

/// The NUL-terminated string at `offset` in `bytes`, reading at most `maxLength` bytes.
private func cString(_ bytes: [UInt8], at offset: Int, maxLength: Int) -> String {
  guard offset < bytes.count else { return "" }
  let slot = bytes[offset..<min(offset + maxLength, bytes.count)]
  let end = slot.firstIndex(of: 0) ?? slot.endIndex
  return String(decoding: slot[slot.startIndex..<end], as: UTF8.self)
}

private func hex(_ instructions: [BPFInstruction]) -> String {
  instructions.flatMap(\.bytes).map {
    String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16)
  }
  .joined(separator: " ")
}

/// Runs `arguments[0]` with `arguments` through posix_spawn and waits for it; returns its pid.
private func spawnAndWait(_ arguments: [String]) -> pid_t {
  var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
  cArguments.append(nil)
  defer { for pointer in cArguments { free(pointer) } }
  var pid: pid_t = 0
  guard posix_spawn(&pid, arguments[0], nil, nil, cArguments, environ) == 0 else { return -1 }
  var status: Int32 = 0
  waitpid(pid, &status, 0)
  return pid
}

private func uniqueToken() -> String {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return "scry\(getpid())x\(ts.tv_nsec)"
}

@Suite("BPF instruction encoding")
struct BPFEncodingTests {
  @Test func encodingMatchesTheISA() {
    // Opcodes from instruction-set.rst: class | source | code, regs = src << 4 | dst.
    #expect(hex([.mov64(.r0, 0)]) == "b7 00 00 00 00 00 00 00")
    #expect(hex([.exit]) == "95 00 00 00 00 00 00 00")
    #expect(hex([.mov64(.r6, .r1)]) == "bf 16 00 00 00 00 00 00")
    #expect(hex([.add64(.r2, -4)]) == "07 02 00 00 fc ff ff ff")
    #expect(hex([.mov32(.r3, -1)]) == "b4 03 00 00 ff ff ff ff")
    #expect(hex([.ldx(.double, .r3, .r7, 24)]) == "79 73 18 00 00 00 00 00")
    #expect(hex([.ldx(.byte, .r1, .r2, -1)]) == "71 21 ff ff 00 00 00 00")
    #expect(hex([.stx(.word, .r7, 4, .r0)]) == "63 07 04 00 00 00 00 00")
    #expect(hex([.stx(.half, .r10, -2, .r1)]) == "6b 1a fe ff 00 00 00 00")
    #expect(hex([.st(.word, .r10, -4, 0)]) == "62 0a fc ff 00 00 00 00")
    #expect(hex([.st(.double, .r1, 8, 7)]) == "7a 01 08 00 07 00 00 00")
    #expect(hex([.call(.perfEventOutput)]) == "85 00 00 00 19 00 00 00")
    #expect(hex([.call(.probeReadUserStr)]) == "85 00 00 00 72 00 00 00")
    #expect(hex([.jump(.equal, .r0, 0, 3)]) == "15 00 03 00 00 00 00 00")
    #expect(hex([.jump(.notEqual, .r1, .r2, -2)]) == "5d 21 fe ff 00 00 00 00")
    #expect(hex([.jump(5)]) == "05 00 05 00 00 00 00 00")
    #expect(hex(BPFInstruction.ldMapFD(.r1, 5)) == "18 11 00 00 05 00 00 00 00 00 00 00 00 00 00 00")
    #expect(
      hex(BPFInstruction.ldImm64(.r2, 0x1122_3344_5566_7788)) == "18 02 00 00 88 77 66 55 00 00 00 00 44 33 22 11")
  }

  @Test func sampleLayout() throws {
    let fetch = TracepointFetch(
      recordSize: 44,
      items: [
        .string(pointerOffset: 24, maxLength: 61, userMemory: true),
        .bytes(pointerOffset: 16, length: 4, userMemory: false),
        .stringArray(pointerOffset: 32, maxCount: 3, maxLength: 10),
      ])
    #expect(fetch.itemOffsets == [48, 112, 120])
    #expect(fetch.sampleSize == 160)  // 120 + 8 + 3 * 10 = 158, rounded to 8
    try fetch.validate()
    #expect(throws: KernelError.self) {
      try TracepointFetch(recordSize: 16, items: [.bytes(pointerOffset: 12, length: 4, userMemory: true)]).validate()
    }
    #expect(throws: KernelError.self) {
      try TracepointFetch(recordSize: 48, items: [.string(pointerOffset: 24, maxLength: 40000, userMemory: true)])
        .validate()
    }
  }

  @Test func programShape() {
    let fetch = TracepointFetch(
      recordSize: 48, items: [.stringArray(pointerOffset: 24, maxCount: 16, maxLength: 64)])
    let program = TracepointFetchProgram.instructions(for: fetch, outputMapFD: 3, scratchMapFD: 4)
    #expect(program.last == .exit)
    // Straight-line code plus forward jumps only: nothing can loop.
    for instruction in program where instruction.opcode & 0x07 == 0x05 && instruction.opcode & 0xf0 != 0x80 {
      #expect(instruction.opcode == 0x95 || instruction.offset >= 0)
    }
    #expect(program.count < 300)
  }
}

extension KernelSuites {
  @Suite("BPF programs")
  struct BPFTests {
    @Test func trivialProgramLoads() throws {
      guard KernelGate.check() else { return }
      let program = try BPFProgram.loadTracepointProgram([.mov64(.r0, 0), .exit], name: "scry_trivial")
      #expect(program.fd >= 0)
      #expect(program.instructionCount == 2)
    }

    @Test func verifierRefusalCarriesItsLog() throws {
      guard KernelGate.check() else { return }
      // r2 is never written before it is read.
      let error = #expect(throws: KernelError.self) {
        try BPFProgram.loadTracepointProgram([.mov64(.r0, .r2), .exit], name: "scry_bad")
      }
      let text = error?.description ?? ""
      #expect(text.contains("R2 !read_ok"), "\(text)")
      #expect(text.contains("verifier"))
      // No exit at all.
      let noExit = #expect(throws: KernelError.self) {
        try BPFProgram.loadTracepointProgram([.mov64(.r0, 0)], name: "scry_noexit")
      }
      let noExitText = noExit?.description ?? ""
      #expect(
        noExitText.contains("last insn is not an exit or jmp") || noExitText.contains("jump out of range"),
        "\(noExitText)")
    }

    @Test func openatFilenameArrives() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let tracefs = try TraceFS.locate()
        let format = try tracefs.format(category: "syscalls", name: "sys_enter_openat")
        let filename = try #require(format.field(named: "filename"))
        let fetch = TracepointFetch(
          recordSize: format.fixedSize,
          items: [.string(pointerOffset: filename.offset, maxLength: 256, userMemory: true)],
          commonType: UInt16(truncatingIfNeeded: format.id))
        let channel = try BPFOutputChannel(sampleType: [.tid, .raw])
        try channel.enable()
        let probe = try TracepointFetchProbe(
          tracepointID: format.id, description: "tracepoint:syscalls:sys_enter_openat", fetch: fetch,
          channel: channel)
        let path = "/nonexistent/\(uniqueToken())/file"
        let fd = open(path, O_RDONLY)
        #expect(fd < 0)
        let payloads = drainPayloads(channel)
        let ours = payloads.filter { cString($0, at: fetch.itemOffsets[0], maxLength: 256) == path }
        // Exactly one: the program runs once per hit, although several CPUs exist.
        #expect(ours.count == 1, "\(payloads.count) samples, none or several with the path")
        if let sample = ours.first {
          #expect(sample.count >= fetch.sampleSize)
          let commonType = sample.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) }
          let commonPid = sample.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
          let flags = sample.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) }
          #expect(UInt64(commonType) == format.id & 0xffff)
          #expect(commonPid == SystemInfo.currentThreadID())
          #expect(flags == UInt64(O_RDONLY))
        }
        _ = probe
      }
      #expect(openFDs() == before)
    }

    @Test func execveArgvArrives() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      let format = try tracefs.format(category: "syscalls", name: "sys_enter_execve")
      let argvField = try #require(format.field(named: "argv"))
      let fileField = try #require(format.field(named: "filename"))
      let maxCount = 16
      let maxLength = 64
      let fetch = TracepointFetch(
        recordSize: format.fixedSize,
        items: [
          .string(pointerOffset: fileField.offset, maxLength: 128, userMemory: true),
          .stringArray(pointerOffset: argvField.offset, maxCount: maxCount, maxLength: maxLength),
        ],
        commonType: UInt16(truncatingIfNeeded: format.id))
      let channel = try BPFOutputChannel()
      try channel.enable()
      let probe = try TracepointFetchProbe(
        tracepointID: format.id, description: "tracepoint:syscalls:sys_enter_execve", fetch: fetch, channel: channel)
      #expect(probe.program.instructionCount < 400)
      let token = uniqueToken()
      let arguments = ["/bin/true", token, "second-\(token)", "", "with space", String(repeating: "y", count: 100)]
      let pid = spawnAndWait(arguments)
      #expect(pid > 0)
      let payloads = drainPayloads(channel)
      let arrayOffset = fetch.itemOffsets[1]
      let ours = payloads.filter { cString($0, at: arrayOffset + 8 + maxLength, maxLength: maxLength) == token }
      #expect(ours.count == 1, "\(payloads.count) samples")
      if let sample = ours.first {
        #expect(cString(sample, at: fetch.itemOffsets[0], maxLength: 128) == "/bin/true")
        let count = sample.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: arrayOffset, as: UInt32.self) }
        #expect(count == UInt32(arguments.count))
        let read = (0..<Int(count)).map { cString(sample, at: arrayOffset + 8 + $0 * maxLength, maxLength: maxLength) }
        var expected = arguments
        expected[5] = String(repeating: "y", count: maxLength - 1)  // cut to fit the slot, NUL included
        #expect(read == expected)
        let commonPid = sample.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
        #expect(commonPid == pid)
      }
    }

    @Test func argvStopsAtMaxCount() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      let format = try tracefs.format(category: "syscalls", name: "sys_enter_execve")
      let argvField = try #require(format.field(named: "argv"))
      let fetch = TracepointFetch(
        recordSize: format.fixedSize, items: [.stringArray(pointerOffset: argvField.offset, maxCount: 2, maxLength: 32)]
      )
      let channel = try BPFOutputChannel()
      try channel.enable()
      let probe = try TracepointFetchProbe(
        tracepointID: format.id, description: "tracepoint:syscalls:sys_enter_execve", fetch: fetch, channel: channel)
      let token = uniqueToken()
      #expect(spawnAndWait(["/bin/true", token, "c", "d"]) > 0)
      let slot = fetch.itemOffsets[0]
      let ours = drainPayloads(channel).filter { cString($0, at: slot + 8 + 32, maxLength: 32) == token }
      #expect(ours.count == 1)
      if let sample = ours.first {
        #expect(sample.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: slot, as: UInt32.self) } == 2)
      }
      _ = probe
    }

    @Test func everyFDIsClosed() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let tracefs = try TraceFS.locate()
        let format = try tracefs.format(category: "syscalls", name: "sys_enter_openat")
        let filename = try #require(format.field(named: "filename"))
        let fetch = TracepointFetch(
          recordSize: format.fixedSize,
          items: [.string(pointerOffset: filename.offset, maxLength: 64, userMemory: true)])
        let channel = try BPFOutputChannel()
        try channel.enable()
        let probe = try TracepointFetchProbe(
          tracepointID: format.id, description: "tracepoint:syscalls:sys_enter_openat", fetch: fetch, channel: channel)
        let trivial = try BPFProgram.loadTracepointProgram([.mov64(.r0, 0), .exit], name: "scry_trivial")
        _ = try? BPFProgram.loadTracepointProgram([.mov64(.r0, .r2), .exit], name: "scry_bad")
        let during = openFDs()
        // maps (2), program, carrier event, and one bpf-output event per CPU, plus the trivial program.
        #expect(during.count - before.count == 4 + channel.events.count + 1)
        _ = (probe, trivial)
      }
      #expect(openFDs() == before)
    }
  }
}

extension KernelSuites {
  @Suite("BPF ring delivery")
  struct BPFRingTests {
    /// A delivery program for sys_enter_getppid attached to one counting event (it runs for every CPU's hits).
    private func attach(
      _ delivery: inout CaptureProgram, ring: BPFRing, lost: BPFMap
    ) throws -> (PerfEvent, BPFProgram) {
      let format = try TraceFS.locate().format(category: "syscalls", name: "sys_enter_getppid")
      delivery.commonType = UInt16(truncatingIfNeeded: format.id)
      delivery.recordSize = format.fixedSize
      try delivery.validate()
      let program = try BPFProgram.loadTracepointProgram(
        delivery.instructions(ringFD: ring.map.fd, lostMapFD: lost.fd), name: "scry_test_ring")
      var options = PerfEventOptions()
      options.countingOnly = true
      let event = try PerfEvent.tracepoint(
        id: format.id, description: "tracepoint:syscalls:sys_enter_getppid", cpu: SystemInfo.onlineCPUs()[0], pid: -1,
        options: options)
      try event.attach(program)
      try event.enable()
      return (event, program)
    }

    private func monotonicNow() -> UInt64 {
      var ts = timespec()
      clock_gettime(CLOCK_MONOTONIC, &ts)
      return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    private func lostCount(_ map: BPFMap) throws -> UInt64 {
      try map.perCPUValues(index: 0).reduce(0) { $0 + $1.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
    }

    @Test func recordsDecodeLikePerfSamples() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let ring = try BPFRing(bytes: 1 << 20)
        let lost = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
        var delivery = CaptureProgram(
          sampleType: [.identifier, .tid, .time, .cpu, .raw], identifier: 0xfeed_0001, recordSize: 0, commonType: 0,
          includesComm: true)
        let attached = try attach(&delivery, ring: ring, lost: lost)
        let start = monotonicNow()
        for _ in 0..<5 { _ = getppid() }
        let end = monotonicNow()
        try attached.0.disable()
        let decoder = PerfSampleDecoder(sampleType: delivery.sampleType)
        let me = UInt32(SystemInfo.currentThreadID())
        var ours: [(PerfSample, String)] = []
        var previousTime: UInt64 = 0
        var ordered = true
        ring.drain { body in
          #expect(body.count == delivery.sampleSize)
          guard let sample = decoder.decode(body) else { return }
          if sample.time < previousTime { ordered = false }
          previousTime = sample.time
          #expect(body.loadUnaligned(as: UInt64.self) == 0xfeed_0001)
          guard sample.tid == me else { return }
          let comm = UnsafeRawBufferPointer(rebasing: body[delivery.commOffset..<delivery.commOffset + 16])
          ours.append((sample, String(decoding: comm.prefix { $0 != 0 }, as: UTF8.self)))
        }
        #expect(ours.count == 5)
        #expect(ordered, "one ring for all CPUs comes in event order")
        let ownName = try FileSystem.readText("/proc/thread-self/comm").split(separator: "\n").first.map(String.init)
        for (sample, comm) in ours {
          #expect(sample.pid == UInt32(getpid()))
          #expect(sample.time >= start && sample.time <= end)
          #expect(comm == ownName)
          #expect(sample.raw.count == delivery.rawSize)
          #expect(UInt64(sample.raw.loadUnaligned(as: UInt16.self)) == UInt64(delivery.commonType))
          #expect(sample.raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self) == me)
        }
        #expect(try lostCount(lost) == 0)
        _ = attached
      }
      #expect(openFDs() == before)
    }

    @Test func aFullRingCountsWhatItDrops() throws {
      guard KernelGate.check() else { return }
      let ring = try BPFRing(bytes: 4096)
      let lost = try BPFMap.perCPUArray(valueSize: 8, entries: 1)
      var delivery = CaptureProgram(sampleType: [.tid, .raw], identifier: 0, recordSize: 0, commonType: 0)
      let attached = try attach(&delivery, ring: ring, lost: lost)
      for _ in 0..<1000 { _ = getppid() }
      try attached.0.disable()
      let kept = ring.drain { _ in }
      let dropped = try lostCount(lost)
      #expect(kept > 0 && kept < 1000)
      #expect(UInt64(kept) + dropped >= 1000, "kept \(kept), lost \(dropped)")
      // Drained, it takes records again.
      try attached.0.enable()
      _ = getppid()
      try attached.0.disable()
      #expect(ring.drain { _ in } >= 1)
    }
  }
}
