import Glibc
import Testing

@testable import ScryKernel

/// One tracepoint opened on every online CPU, each with its own ring.
private struct PerCPUTracepoint {
  var events: [PerfEvent] = []
  var rings: [PerfRing] = []

  init(_ tracefs: TraceFS, _ category: String, _ name: String, options: PerfEventOptions, pages: Int = 64) throws {
    let id = try tracefs.eventID(category: category, name: name)
    for cpu in SystemInfo.onlineCPUs() {
      let event = try PerfEvent.tracepoint(
        id: id, description: "tracepoint:\(category):\(name)", cpu: cpu, options: options)
      rings.append(try PerfRing(event: event, dataPages: pages))
      events.append(event)
    }
  }

  func enable() throws { for e in events { try e.enable() } }
  func disable() throws { for e in events { try e.disable() } }
}

/// Counts of what drained rings contained.
private struct Tally {
  var samples = 0
  var ours = 0
  var rawOK = 0
  var lost: UInt64 = 0
  var lastTime: UInt64 = 0
  var timeOrdered = true
}

private func drain(
  _ rings: [PerfRing], decoder: PerfSampleDecoder, tid: Int32, eventID: UInt64?, into tally: inout Tally
) {
  for ring in rings {
    var perRingLast: UInt64 = 0
    ring.drain { record in
      if let lost = PerfLostRecord(record) {
        tally.lost += lost.lost
        return
      }
      guard record.type == PerfRecordType.sample, let sample = decoder.decode(record.body) else { return }
      tally.samples += 1
      guard Int32(bitPattern: sample.tid) == tid else { return }
      tally.ours += 1
      if sample.time < perRingLast { tally.timeOrdered = false }
      perRingLast = sample.time
      if let eventID, sample.raw.count >= 8 {
        let commonType = sample.raw.loadUnaligned(fromByteOffset: 0, as: UInt16.self)
        let commonPid = sample.raw.loadUnaligned(fromByteOffset: 4, as: Int32.self)
        if UInt64(commonType) == eventID & 0xffff && commonPid == tid { tally.rawOK += 1 }
      }
    }
  }
}

private func callGetppid(_ n: Int) {
  var sink: Int32 = 0
  for _ in 0..<n { sink &+= getppid() }
  #expect(sink != 0)
}

/// How many perf ring mappings this process has (from /proc/self/maps).
private func perfMappings() -> Int {
  guard let maps = try? FileSystem.readText("/proc/self/maps") else { return -1 }
  return maps.split(separator: "\n").filter { $0.contains("perf_event") }.count
}

private func monotonicNanoseconds() -> UInt64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension KernelSuites {
  @Suite("perf events and rings")
  struct PerfEventTests {
    let n = 1000
    let sampleType: PerfSampleType = [.tid, .time, .raw]

    @Test func tracepointSamplesEveryCall() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let tracefs = try TraceFS.locate()
        let id = try tracefs.eventID(category: "syscalls", name: "sys_enter_getppid")
        let format = try tracefs.format(category: "syscalls", name: "sys_enter_getppid")
        let probe = try PerCPUTracepoint(
          tracefs, "syscalls", "sys_enter_getppid", options: .init(sampleType: sampleType))
        let tid = SystemInfo.currentThreadID()
        try probe.enable()
        callGetppid(n)
        try probe.disable()
        var tally = Tally()
        drain(probe.rings, decoder: PerfSampleDecoder(sampleType: sampleType), tid: tid, eventID: id, into: &tally)
        #expect(tally.ours == n)
        #expect(tally.rawOK == n)
        #expect(tally.lost == 0)
        #expect(tally.timeOrdered)
        #expect(format.fixedSize <= 16)
        #expect(probe.rings.allSatisfy { $0.pendingBytes == 0 })
        #expect(probe.rings.allSatisfy { $0.drain { _ in } == 0 })
        #expect(perfMappings() > 0)
      }
      #expect(openFDs() == before)
      #expect(perfMappings() == 0)
    }

    @Test func timestampsAreMonotonicClock() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      let probe = try PerCPUTracepoint(
        tracefs, "syscalls", "sys_enter_getppid", options: .init(sampleType: [.tid, .time]))
      let tid = SystemInfo.currentThreadID()
      let start = monotonicNanoseconds()
      try probe.enable()
      callGetppid(10)
      try probe.disable()
      let end = monotonicNanoseconds()
      let decoder = PerfSampleDecoder(sampleType: [.tid, .time])
      var inWindow = 0
      for ring in probe.rings {
        ring.drain { record in
          guard let s = decoder.decode(record.body), Int32(bitPattern: s.tid) == tid else { return }
          if s.time >= start && s.time <= end { inWindow += 1 }
        }
      }
      #expect(inWindow == 10)
    }

    @Test func smallRingWrapsWithoutLosingRecords() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      let id = try tracefs.eventID(category: "syscalls", name: "sys_enter_getppid")
      let probe = try PerCPUTracepoint(
        tracefs, "syscalls", "sys_enter_getppid", options: .init(sampleType: sampleType), pages: 1)
      let tid = SystemInfo.currentThreadID()
      var tally = Tally()
      let decoder = PerfSampleDecoder(sampleType: sampleType)
      try probe.enable()
      // 40-byte records through a 4096-byte ring: drained every 20 calls, they wrap often.
      for _ in 0..<(n / 20) {
        callGetppid(20)
        drain(probe.rings, decoder: decoder, tid: tid, eventID: id, into: &tally)
      }
      try probe.disable()
      drain(probe.rings, decoder: decoder, tid: tid, eventID: id, into: &tally)
      #expect(tally.lost == 0)
      #expect(tally.ours == n)
      #expect(tally.rawOK == n)
      #expect(probe.rings.allSatisfy { $0.corruptRecords == 0 })
      #expect(probe.rings.reduce(0) { $0 + $1.wrappedRecords } > 0)
    }

    @Test func filterIsApplied() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      let tid = SystemInfo.currentThreadID()
      let decoder = PerfSampleDecoder(sampleType: sampleType)
      for (filter, expected) in [("common_pid == \(tid)", n), ("common_pid == 1", 0)] {
        let probe = try PerCPUTracepoint(
          tracefs, "syscalls", "sys_enter_getppid", options: .init(sampleType: sampleType))
        for event in probe.events { try event.setFilter(filter) }
        try probe.enable()
        callGetppid(n)
        try probe.disable()
        var tally = Tally()
        drain(probe.rings, decoder: decoder, tid: tid, eventID: nil, into: &tally)
        #expect(tally.ours == expected, "\(filter)")
        #expect(tally.samples == expected, "\(filter): no other task's samples pass")
      }
      let probe = try PerCPUTracepoint(tracefs, "syscalls", "sys_enter_getppid", options: .init(sampleType: sampleType))
      do {
        try probe.events[0].setFilter("no_such_field == 3")
        Issue.record("a bad filter should be rejected")
      } catch let error as KernelError {
        #expect(error.description.contains("tracepoint:syscalls:sys_enter_getppid"))
        #expect(error.description.contains("no_such_field == 3"))
      }
    }

    @Test func sharedRingWithSetOutput() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      let enter = try PerCPUTracepoint(tracefs, "syscalls", "sys_enter_getppid", options: .init(sampleType: sampleType))
      let exitID = try tracefs.eventID(category: "syscalls", name: "sys_exit_getppid")
      var exits: [PerfEvent] = []
      for (index, cpu) in SystemInfo.onlineCPUs().enumerated() {
        let event = try PerfEvent.tracepoint(
          id: exitID, description: "tracepoint:syscalls:sys_exit_getppid", cpu: cpu,
          options: .init(sampleType: sampleType))
        try event.setOutput(to: enter.events[index])
        exits.append(event)
      }
      let tid = SystemInfo.currentThreadID()
      try enter.enable()
      for e in exits { try e.enable() }
      callGetppid(n)
      for e in exits { try e.disable() }
      try enter.disable()
      var tally = Tally()
      drain(enter.rings, decoder: PerfSampleDecoder(sampleType: sampleType), tid: tid, eventID: nil, into: &tally)
      #expect(tally.ours == 2 * n)
    }

    @Test func countingModeCountsExactly() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let tracefs = try TraceFS.locate()
        let id = try tracefs.eventID(category: "syscalls", name: "sys_enter_getppid")
        let event = try PerfEvent.tracepoint(
          id: id, description: "tracepoint:syscalls:sys_enter_getppid", cpu: -1, pid: SystemInfo.currentThreadID(),
          options: .init(countingOnly: true, readLostCount: true))
        try event.enable()
        callGetppid(n)
        try event.disable()
        #expect((try? event.readCount()) == UInt64(n))
        #expect(event.readCounts().lost == 0)
        try event.reset()
        #expect((try? event.readCount()) == 0)
      }
      #expect(openFDs() == before)
    }

    @Test func softwareClockSamples() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let tid = SystemInfo.currentThreadID()
        let types: PerfSampleType = [.ip, .tid, .time, .cpu, .period]
        let event = try PerfEvent.software(
          named: "cpu-clock", cpu: -1, pid: tid, options: .init(sampleType: types, samplePeriod: 100_000))
        let ring = try PerfRing(event: event, dataPages: 16)
        try event.enable()
        let start = monotonicNanoseconds()
        var spin: UInt64 = 0
        while monotonicNanoseconds() - start < 30_000_000 { spin &+= 1 }
        try event.disable()
        let decoder = PerfSampleDecoder(sampleType: types)
        var samples = 0
        var periods: UInt64 = 0
        ring.drain { record in
          guard record.type == PerfRecordType.sample, let s = decoder.decode(record.body) else { return }
          if Int32(bitPattern: s.tid) == tid && s.ip != 0 { samples += 1 }
          periods += s.period
        }
        #expect(samples > 10)
        #expect(periods > 0)
        #expect(((try? event.readCount()) ?? 0) > 10_000_000)
        #expect(spin > 0)
        #expect(throws: KernelError.self) { try PerfEvent.software(named: "no-such-thing", cpu: 0) }
      }
      #expect(openFDs() == before)
    }

    @Test func hardwareEventsFailClearlyWithoutPMU() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      for name in ["cpu-cycles", "instructions", "cache-misses", "branch-misses"] {
        do {
          let event = try PerfEvent.hardware(named: name, cpu: 0, options: .init(countingOnly: true))
          print("hardware:\(name) opened: this machine has a PMU (count \((try? event.readCount())))")
        } catch let error as KernelError {
          #expect(
            error.description.contains(
              "this machine has no hardware performance counters (no PMU); hardware:\(name) cannot be counted here"),
            "\(error)")
        }
      }
      #expect(openFDs() == before)
    }

    @Test func launchedCommandIsTracedFromItsFirstEvent() throws {
      guard KernelGate.check() else { return }
      let before = openFDs()
      do {
        let tracefs = try TraceFS.locate()
        let id = try tracefs.eventID(category: "sched", name: "sched_process_exec")
        let process = try TracedProcess(launching: "sh -c /bin/true")
        let event = try PerfEvent.tracepoint(
          id: id, description: "tracepoint:sched:sched_process_exec", cpu: -1, pid: process.pid,
          options: .init(countingOnly: true, inherit: true))
        try event.enable()
        usleep(20_000)
        #expect((try? event.readCount()) == 0, "the command must wait at the gate")
        try process.start()
        let epoll = try Epoll()
        try epoll.add(process.exitFD, token: 1)
        var tokens = [UInt64](repeating: 0, count: 2)
        #expect(epoll.wait(into: &tokens, timeoutMilliseconds: 5000) == 1)
        #expect(process.finish() == 0)
        #expect(((try? event.readCount()) ?? 0) >= 1)
      }
      #expect(openFDs() == before)
    }

    @Test func errorsNameTheEvent() throws {
      guard KernelGate.check() else { return }
      do {
        _ = try PerfEvent.tracepoint(id: 0x7fff_fff0, description: "tracepoint:x:y", cpu: 0)
        Issue.record("expected an error")
      } catch let error as KernelError {
        #expect(error.description.contains("tracepoint:x:y"))
        #expect(error.cpu == 0)
      }
      do {
        _ = try PerfEvent.software(.cpuClock, cpu: -1, pid: -1)
        Issue.record("expected an error")
      } catch let error as KernelError {
        #expect(error.description.contains("software:cpu-clock"))
      }
      let permission = PerfEvent.openError(
        errno: EACCES, kind: .tracepoint, description: "tracepoint:a:b", cpu: 1, pid: -1)
      #expect(permission.description.contains("needs root or CAP_PERFMON (kernel.perf_event_paranoid is"))
      let files = PerfEvent.openError(errno: EMFILE, kind: .tracepoint, description: "tracepoint:a:b", cpu: 1, pid: -1)
      #expect(files.description.contains("too many open files: raise the limit with `ulimit -n`"))
    }
  }
}

@Suite("system info")
struct SystemInfoTests {
  @Test func parsesCPULists() {
    #expect(SystemInfo.parseCPUList("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8])
    #expect(SystemInfo.parseCPUList("0\n") == [0])
    #expect(SystemInfo.parseCPUList("3-1") == nil)
    #expect(SystemInfo.parseCPUList("a") == nil)
    #expect(!SystemInfo.onlineCPUs().isEmpty)
  }

  @Test func raisesFileLimit() throws {
    let limit = try SystemInfo.raiseFileLimit()
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    #expect(UInt64(limit) == UInt64(rl.rlim_cur))
    #expect(rl.rlim_cur == rl.rlim_max)
  }
}
