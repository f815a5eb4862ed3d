import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan
import Testing

@testable import ScryRuntime

/// Two made-up tracepoints, so plans are built without tracefs.
struct RecordedCatalog: ProbeCatalog {
  static let tick = RecordType(
    name: "test:tick",
    fields: [RecordField(name: "value", cType: "long", type: .int64, offset: 8, size: 8)], size: 16)
  static let open = RecordType(
    name: "test:open",
    fields: [
      RecordField(name: "value", cType: "long", type: .int64, offset: 8, size: 8),
      RecordField(
        name: "filename", cType: "const char *", type: .pointer(.integer(IntegerType(bits: 8, isSigned: true))),
        offset: 16, size: 8),
    ], size: 24)

  func tracepoints(category: String, name: String) -> [(category: String, name: String)] {
    [("test", "tick"), ("test", "open")].filter { (category == "*" || $0.0 == category) && (name == "*" || $0.1 == name) }
  }

  func record(category: String, name: String) -> RecordType? {
    switch name {
    case "tick": Self.tick
    case "open": Self.open
    default: nil
    }
  }

  func userFunctions(binary: String, pattern: String) -> UserFunctionLookup { .failed(message: "none", hint: nil) }
  func userAddress(binary: String, address: UInt64) -> UserFunctionLookup { .failed(message: "none", hint: nil) }
}

func recordedPlan(_ text: String) throws -> Plan {
  let checked = Frontend.compile(SourceFile(name: "t", text: text), catalog: RecordedCatalog())
  try #require(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source))")
  return try Planner.plan(checked)
}

/// Perf records as the rings hold them, built in memory.
enum RecordedRing {
  /// A sample laid out for [.identifier, .tid, .time, .cpu, .raw] with a 16-byte `test:tick` record.
  static func sample(id: UInt64, tid: UInt32, time: UInt64, cpu: UInt32, value: Int64) -> [UInt8] {
    var bytes: [UInt8] = []
    func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    put(id)
    put(tid)  // pid
    put(tid)
    put(time)
    put(cpu)
    put(UInt32(0))
    put(UInt32(20))  // raw size: the 16-byte record and 4 bytes of padding end on 8
    put(UInt16(1))  // common_type
    put(UInt8(0))
    put(UInt8(0))
    put(Int32(bitPattern: tid))  // common_pid
    put(value)
    put(UInt32(0))
    return bytes
  }

  /// A COMM record from a ring owner whose samples carry only TIME.
  static func comm(tid: UInt32, name: String, time: UInt64) -> [UInt8] {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: tid) { bytes += $0 }
    withUnsafeBytes(of: tid) { bytes += $0 }
    bytes += Array(name.utf8.prefix(15)) + [UInt8](repeating: 0, count: 16 - min(name.utf8.count, 15))
    withUnsafeBytes(of: time) { bytes += $0 }
    return bytes
  }
}

/// A session on a made-up plan, writing into a file, with a dispatcher and drain of two rings.
final class RecordedSession {
  let session: Session
  let dispatcher: RecordDispatcher
  let drain: RingDrain
  let outputPath: String

  init(_ script: String, routeIDs: [UInt64] = [7]) throws {
    let plan = try recordedPlan(script)
    var options = SessionOptions()
    options.allowsBPF = false
    outputPath = "/tmp/scry-recorded-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    options.outputPath = outputPath
    session = try Session(plan: plan, options: options)
    dispatcher = RecordDispatcher(machine: session.machine, processTable: ProcessTable(), identifiesSamples: true)
    session.machine.processTable = dispatcher.processTable
    for (index, id) in routeIDs.enumerated() {
      dispatcher.addRoute(
        id: id,
        RecordRoute(
          action: session.action(plan.attachments[index].blockIndex),
          probeName: UnsafeRawBufferPointer(session.probeNameBytes(plan.attachments[index].probe.name)),
          sampleType: [.identifier, .tid, .time, .cpu, .raw], skipPredicate: false, commOffset: nil))
    }
    // Two perf rings whose task records end with their owner's TIME.
    drain = RingDrain(dispatcher: dispatcher, perfRings: [], taskRecordTimeFromEnd: [8, 8], bpfRing: nil)
  }

  deinit { unlink(outputPath) }

  func feed(_ type: UInt32, _ bytes: [UInt8], ring: Int) {
    bytes.withUnsafeBytes { drain.take(PerfRecord(type: type, misc: 0, body: $0), stage: ring) }
  }

  /// What the actions printed so far.
  func output() -> String {
    session.output.flush()
    return (try? FileSystem.readText(outputPath)) ?? ""
  }
}

@Suite("Ring drain, cross-CPU merge and dispatch on recorded records")
struct RecordedRingTests {
  @Test func samplesOfTwoRingsRunInTimeOrder() throws {
    let recorded = try RecordedSession(#"tracepoint:test:tick { printf("%d@%d ", args.value, cpu); }"#)
    #expect(recorded.drain.mergesByTime)
    for (time, cpu) in [(10, 0), (30, 0), (50, 0)] as [(UInt64, UInt32)] {
      recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 7, tid: 1, time: time, cpu: cpu, value: Int64(time)), ring: 0)
    }
    for (time, cpu) in [(20, 1), (40, 1)] as [(UInt64, UInt32)] {
      recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 7, tid: 1, time: time, cpu: cpu, value: Int64(time)), ring: 1)
    }
    // Stamped after the cutoff: kept for the next drain, as an earlier record may still arrive.
    recorded.drain.finish(upTo: 35)
    #expect(recorded.output() == "10@0 20@1 30@0 ")
    recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 7, tid: 1, time: 45, cpu: 1, value: 45), ring: 1)
    recorded.drain.finish(upTo: .max)
    #expect(recorded.output() == "10@0 20@1 30@0 40@1 45@1 50@0 ")
    #expect(recorded.dispatcher.samplesRead == 6)
    #expect(recorded.drain.merge.stages.allSatisfy { $0.entries.isEmpty && $0.bytes.isEmpty })
  }

  @Test func aRenameAppliesToSamplesAfterItOnEveryRing() throws {
    let recorded = try RecordedSession(#"tracepoint:test:tick { printf("%s ", comm); }"#)
    recorded.feed(PerfRecordType.comm, RecordedRing.comm(tid: 4242, name: "before", time: 5), ring: 1)
    recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 7, tid: 4242, time: 10, cpu: 0, value: 1), ring: 0)
    recorded.feed(PerfRecordType.comm, RecordedRing.comm(tid: 4242, name: "after", time: 15), ring: 1)
    recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 7, tid: 4242, time: 20, cpu: 0, value: 2), ring: 0)
    recorded.drain.finish(upTo: .max)
    #expect(recorded.output() == "before after ")
  }

  @Test func eachSampleRunsTheActionOfItsRoute() throws {
    let recorded = try RecordedSession(
      #"tracepoint:test:tick { printf("tick %d\n", args.value); } tracepoint:test:open { printf("open %d\n", args.value); }"#,
      routeIDs: [7, 9])
    recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 9, tid: 1, time: 1, cpu: 0, value: 1), ring: 0)
    recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 7, tid: 1, time: 2, cpu: 1, value: 2), ring: 1)
    // An id no route has: dropped, not run.
    recorded.feed(PerfRecordType.sample, RecordedRing.sample(id: 8, tid: 1, time: 3, cpu: 0, value: 3), ring: 0)
    recorded.drain.finish(upTo: .max)
    #expect(recorded.output() == "open 1\ntick 2\n")
    #expect(recorded.dispatcher.samplesRead == 2)
  }

  @Test func lostRecordsAreCounted() throws {
    let recorded = try RecordedSession(#"tracepoint:test:tick { printf("x"); }"#)
    var lost: [UInt8] = []
    withUnsafeBytes(of: UInt64(7)) { lost += $0 }  // id
    withUnsafeBytes(of: UInt64(12)) { lost += $0 }  // lost
    recorded.feed(PerfRecordType.lost, lost, ring: 0)
    #expect(recorded.drain.perfLost == 12)
  }

  @Test func withoutTimeSamplesRunAsTheyAreRead() throws {
    let recorded = try RecordedSession(#"tracepoint:test:tick { printf("%d ", args.value); }"#)
    let dispatcher = recorded.dispatcher
    let drain = RingDrain(dispatcher: dispatcher, perfRings: [], taskRecordTimeFromEnd: [nil], bpfRing: nil)
    #expect(!drain.mergesByTime)
    RecordedRing.sample(id: 7, tid: 1, time: 9, cpu: 0, value: 5).withUnsafeBytes {
      drain.take(PerfRecord(type: PerfRecordType.sample, misc: 0, body: $0), stage: 0)
    }
    #expect(recorded.output() == "5 ")
  }
}

@Suite("Map full")
struct MapFullTests {
  @Test func aFullMapSaysHowManyInsertsItDropped() {
    let map = Fixture.map("@x", keys: [.int64], value: .int64, maxEntries: 2)
    #expect(map.fullWarning == nil)
    var dropped = 0
    for key in [1, 2, 3, 1, 4, 2, 5] as [Int64] {
      let bytes = Fixture.pack([.int(key)])
      let slot = bytes.withUnsafeBytes { map.lookup(key: $0.baseAddress!, hash: MapStorage.hash($0.baseAddress!, count: 8), insert: true) }
      if slot == nil { dropped += 1 }
    }
    #expect(dropped == 3)
    #expect(map.droppedInserts == 3)
    #expect(map.fullWarning == "WARNING: Map full; can't update element: map '@x' is full (2 entries): 3 inserts were dropped")
  }
}
