import Glibc
import Testing

@testable import ScryKernel

extension KernelSuites {
  @Suite("BPF stack counter")
  struct BPFStackCounterTests {
    /// Every part the planner may put in a key passes the verifier, for both program types.
    @Test func everyKeyShapeLoads() throws {
      guard KernelGate.check() else { return }
      let shapes: [[BPFStackCounter.Part]] = [
        [.stack(.init(isKernel: true, depth: 127))],
        [.stack(.init(isKernel: false, depth: 1))],
        [.threadID, .stack(.init(isKernel: true, depth: 3)), .stack(.init(isKernel: false, depth: 127)), .comm, .processID],
      ]
      for shape in shapes {
        for kind in [CaptureProgram.Kind.tracepoint, .perfEvent] {
          let counter = try BPFStackCounter(kind: kind, parts: shape, maxKeys: 1024, name: "scry_test_stk")
          #expect(counter.program.fd >= 0)
        }
      }
      #expect(throws: KernelError.self) {
        try BPFStackCounter(kind: .tracepoint, parts: [.stack(.init(isKernel: true, depth: 128))], maxKeys: 16, name: "scry_test_stk")
      }
    }

    /// getppid from this thread: one key, its count, its kernel stack through the syscall path,
    /// its thread id and name, and this process in the pid slot.
    @Test func countsEachHitUnderItsStack() throws {
      guard KernelGate.check() else { return }
      let format = try TraceFS.locate().format(category: "syscalls", name: "sys_enter_getppid")
      let parts: [BPFStackCounter.Part] = [.stack(.init(isKernel: true, depth: 127)), .stack(.init(isKernel: false, depth: 127)), .threadID, .comm]
      let counter = try BPFStackCounter(kind: .tracepoint, parts: parts, maxKeys: 1024, name: "scry_test_stk")
      var options = PerfEventOptions()
      options.countingOnly = true
      let event = try PerfEvent.tracepoint(
        id: format.id, description: "tracepoint:syscalls:sys_enter_getppid", cpu: -1, pid: getpid(), options: options)
      try event.attach(counter.program)
      try event.enable()
      for _ in 0..<50 { _ = getppid() }
      try event.disable()
      let offset = counter.processOffset
      let ours = try counter.totals().filter { entry in
        entry.key.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) } == UInt32(getpid())
      }
      #expect(ours.reduce(UInt64(0)) { $0 + $1.total } == 50)
      let key = try #require(ours.first?.key)
      #expect(key.count == counter.keySize)
      let kernelID = key.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
      #expect(!counter.frames(ofPart: 0, id: kernelID).isEmpty)
      #expect(key.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self) } != 0)
      #expect(counter.total(of: .lostStacks) == 0)
    }

    /// The name loaded from the task itself (BTF) makes the same keys as `bpf_get_current_comm`'s
    /// copy, zero padding included: a 15-character name, then a 2-character one over it.
    @Test func theNameLoadedFromTheTaskIsTheHelpersName() throws {
      guard KernelGate.check(), let btf = try BTFTests.vmlinux() else { return }
      let commOffset = try #require(BPFStackCounter.taskCommOffset(in: btf))
      let format = try TraceFS.locate().format(category: "syscalls", name: "sys_enter_getppid")
      let parts: [BPFStackCounter.Part] = [.comm, .threadID]
      let loaded = try BPFStackCounter(kind: .tracepoint, parts: parts, maxKeys: 64, commOffset: commOffset, name: "scry_test_stk")
      let copied = try BPFStackCounter(kind: .tracepoint, parts: parts, maxKeys: 64, name: "scry_test_stk")
      var options = PerfEventOptions()
      options.countingOnly = true
      var events: [PerfEvent] = []
      for counter in [loaded, copied] {
        let event = try PerfEvent.tracepoint(
          id: format.id, description: "tracepoint:syscalls:sys_enter_getppid", cpu: -1, pid: getpid(), options: options)
        try event.attach(counter.program)
        events.append(event)
      }
      // This thread's name, through /proc (prctl is variadic, so Swift has no prctl).
      func name(_ text: String? = nil) -> String {
        let fd = open("/proc/thread-self/comm", text == nil ? O_RDONLY : O_WRONLY)
        defer { close(fd) }
        if let text { _ = write(fd, text, text.utf8.count) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = text == nil ? read(fd, &bytes, 32) : 0
        return String(decoding: bytes.prefix(max(0, count)).filter { $0 != 0x0a }, as: UTF8.self)
      }
      let original = name()
      defer { _ = name(original) }
      for event in events { try event.enable() }
      _ = name("scry-long-name1")
      for _ in 0..<10 { _ = getppid() }
      _ = name("ab")
      for _ in 0..<20 { _ = getppid() }
      for event in events { try event.disable() }
      func names(_ counter: BPFStackCounter) throws -> [[UInt8]: UInt64] {
        var byName: [[UInt8]: UInt64] = [:]
        for (key, total) in try counter.totals() { byName[Array(key[0..<16]), default: 0] += total }
        return byName
      }
      let padded = { (name: String) in Array(name.utf8) + [UInt8](repeating: 0, count: 16 - name.utf8.count) }
      #expect(try names(loaded) == [padded("scry-long-name1"): 10, padded("ab"): 20])
      #expect(try names(loaded) == names(copied))
      PerfEvent.closeAll(events)
    }
  }
}
