import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan
import Testing

@testable import ScryRuntime

/// IR actions bound to nodes and run on records held in memory: no kernel, no parser.
@Suite struct ActionBinderTests {
  /// A tracepoint-like record: common fields, then a u32 at 8, a signed s32 at 12 and a char[16] at 16.
  static func record(pid: UInt32, value: Int32, name: String) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 32)
    withUnsafeBytes(of: pid.littleEndian) { bytes.replaceSubrange(8..<12, with: $0) }
    withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(12..<16, with: $0) }
    bytes.replaceSubrange(16..<16 + name.utf8.count, with: Array(name.utf8))
    return bytes
  }

  struct Harness {
    let maps: [MapStorage]
    let output = OutputBuffer(capturing: ())
    let machine: Machine
    let action: Action

    init(_ action: ProbeAction, maps infos: [MapInfo], variablesSize: Int = 16) {
      maps = infos.map { MapStorage(info: $0, maxEntries: 64) }
      machine = Machine(maps: maps, output: output, variablesSize: variablesSize, positionals: [], allowsUnsafe: false)
      self.action = ActionBinder(maps: maps, readsPointersInProcess: false, variablesSize: variablesSize).bind(action)
    }

    func run(_ record: [UInt8]) {
      record.withUnsafeBytes { raw in
        machine.raw = raw.baseAddress
        machine.rawSize = raw.count
        action.run(machine)
        machine.raw = nil
      }
    }

    func printed() -> String {
      MapPrinter.printAtExit(maps, to: output)
      return output.capturedString
    }
  }

  static func info(_ name: String, keys: [ScryType], value: ScryType) -> MapInfo {
    MapInfo(name: name, keyTypes: keys, valueType: value, declaration: SourceSpan(start: 0, end: 0))
  }

  @Test func predicateFieldsAndMapsOnRecordsInMemory() {
    // /value > 0/ { @sum[name] += value; @n = count(); }
    let name = BytesExpr.recordChars(offset: 16, count: 16, type: .string(capacity: 16))
    let value = IntExpr.record(offset: 12, byteCount: 4, isSigned: true)
    let action = ProbeAction(
      header: "test", predicate: .binary(.gt, value, .constant(0), isSigned: true),
      body: [
        .evaluate(
          .mapUpdate(map: 0, key: [name], operation: UpdateOperation(op: .add, isSigned: true), operand: value, returnsOld: false)),
        .aggregate(map: 1, key: [], kind: .count, operand: nil),
      ])
    let harness = Harness(
      action,
      maps: [Self.info("@sum", keys: [.string(capacity: 16)], value: .int64), Self.info("@n", keys: [], value: .aggregate(.count))])
    for (pid, value, task) in [(1, 5, "bash"), (2, -7, "bash"), (3, 10, "sshd"), (4, 2, "bash")] as [(UInt32, Int32, String)] {
      harness.run(Self.record(pid: pid, value: value, name: task))
    }
    #expect(harness.printed() == "\n\n@n: 3\n@sum[bash]: 7\n@sum[sshd]: 10\n")
  }

  @Test func logicalOperatorsEvaluateTheRightSideOnlyWhenNeeded() {
    // $a = 0 && (@hits++); $b = 1 || (@hits++); @hits stays unset; `0 || (@hits++)` runs it once.
    let bump = IntExpr.mapUpdate(map: 0, key: [], operation: UpdateOperation(op: .add, isSigned: true), operand: nil, returnsOld: false)
    let action = ProbeAction(
      header: "test", predicate: nil,
      body: [
        .storeVariable(offset: 0, .logicalAnd(.constant(0), bump)),
        .storeVariable(offset: 8, .logicalOr(.constant(1), bump)),
        .evaluate(.logicalOr(.constant(0), bump)),
        .mapStore(map: 1, key: [], .binary(.add, .variable(offset: 0), .variable(offset: 8), isSigned: true)),
      ])
    let harness = Harness(
      action, maps: [Self.info("@hits", keys: [], value: .int64), Self.info("@sum", keys: [], value: .int64)])
    harness.run(Self.record(pid: 1, value: 0, name: "x"))
    #expect(harness.printed() == "\n\n@hits: 1\n@sum: 1\n")
  }

  @Test func signedAndUnsignedArithmeticFollowTheIR() {
    let minusSeven = IntExpr.record(offset: 12, byteCount: 4, isSigned: true)
    let action = ProbeAction(
      header: "test", predicate: nil,
      body: [
        .mapStore(map: 0, key: [.constant(Array("div".utf8), type: .string(capacity: 8))], .binary(.div, minusSeven, .constant(2), isSigned: true)),
        .mapStore(map: 0, key: [.constant(Array("shr".utf8), type: .string(capacity: 8))], .binary(.shr, minusSeven, .constant(1), isSigned: true)),
        .mapStore(map: 0, key: [.constant(Array("lt".utf8), type: .string(capacity: 8))], .binary(.lt, minusSeven, .constant(0), isSigned: false)),
        .mapStore(map: 0, key: [.constant(Array("zero".utf8), type: .string(capacity: 8))], .binary(.mod, minusSeven, .constant(0), isSigned: true)),
      ])
    let harness = Harness(action, maps: [Self.info("@r", keys: [.string(capacity: 8)], value: .int64)])
    harness.run(Self.record(pid: 1, value: -7, name: "x"))
    // Division by zero gives 0 as in bpftrace; unsigned comparison sees -7 as a huge number.
    #expect(harness.printed() == "\n\n@r[shr]: -4\n@r[div]: -3\n@r[lt]: 0\n@r[zero]: 0\n")
  }

  @Test func recordReadsPastTheRecordAreZeroNotGarbage() {
    let action = ProbeAction(
      header: "test", predicate: nil,
      body: [.mapStore(map: 0, key: [], .record(offset: 64, byteCount: 8, isSigned: false))])
    let harness = Harness(action, maps: [Self.info("@x", keys: [], value: .int64)])
    harness.run(Self.record(pid: 1, value: 1, name: "x"))
    #expect(harness.printed() == "\n\n@x: 0\n")
  }
}

/// Tables that two layers must agree on.
@Suite struct SharedTableTests {
  @Test func everyEventNameTheLanguageAcceptsTheKernelCanOpen() {
    for event in PerfEventName.software { #expect(SoftwareEvent(name: event.name) != nil, "\(event.name)") }
    for event in PerfEventName.hardware { #expect(HardwareEvent(name: event.name) != nil, "\(event.name)") }
    #expect(PerfEventName.software.count == SoftwareEvent.allCases.count)
    #expect(PerfEventName.hardware.count == HardwareEvent.allCases.count)
  }

  @Test func signalNumbersAreThisSystemsSignals() {
    let system: [String: Int32] = [
      "HUP": SIGHUP, "INT": SIGINT, "KILL": SIGKILL, "USR1": SIGUSR1, "USR2": SIGUSR2, "PIPE": SIGPIPE, "TERM": SIGTERM,
      "CHLD": SIGCHLD, "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP, "WINCH": SIGWINCH, "SYS": SIGSYS, "URG": SIGURG,
      "PROF": SIGPROF, "IO": SIGIO, "XCPU": SIGXCPU,
    ]
    for (name, number) in system {
      #expect(Signal.number(named: "SIG" + name) == number, "SIG\(name)")
      #expect(Signal.number(named: name) == number, "\(name)")
    }
    #expect(Signal.table.count == 31)
    #expect(Signal.number(named: "SIGNOPE") == nil)
    #expect(Signal.number(named: "0") == nil)
    #expect(Signal.number(named: "34") == 34)
  }
}
