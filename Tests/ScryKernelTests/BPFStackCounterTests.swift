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
  }
}
