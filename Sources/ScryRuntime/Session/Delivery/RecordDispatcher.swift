import ScryKernel

/// Hands each sample to its block's action: finds its route by the kernel id it carries, loads it
/// into the machine and runs the action. Task records (COMM, FORK) go to the process table.
///
/// Hot path: routes are plain structs in an array, the machine, the process table and the actions
/// are reached through unretained references, and nothing is allocated per sample.
final class RecordDispatcher {
  /// The machine and the process table, for the per-sample path without reference counting;
  /// the session keeps the machine alive, `processTable` keeps the table.
  private let machineRef: Unretained<Machine>
  private let processTableRef: Unretained<ProcessTable>
  let processTable: ProcessTable
  private(set) var routes: [RecordRoute] = [] {
    didSet {
      // The per-sample path reads routes in place through this copy: an element of the array
      // read as a whole is copied first (the route is ~100 bytes), which was a fifth of the
      // consumer's time under perf. Routes change only while attaching.
      routeStore.deallocate()
      routeStore = .allocate(capacity: Swift.max(routes.count, 1))
      _ = routeStore.initialize(from: routes)
    }
  }
  private var routeStore = UnsafeMutableBufferPointer<RecordRoute>.allocate(capacity: 1)
  /// The route of each kernel event id (PERF_SAMPLE_IDENTIFIER, the first word of a sample).
  private var routeByID: [UInt64: Int] = [:]
  /// The kernel ids of the routes, in route order: a scan of a few ids beats hashing the id of
  /// every sample, and most programs have a few events per CPU.
  private var routeIDs: [UInt64] = []
  /// Samples carry PERF_SAMPLE_IDENTIFIER only when more than one probe shares the rings; with
  /// one, every sample takes the same route (the same action on every CPU).
  let identifiesSamples: Bool
  /// Samples handed to actions, for tests and `--stats`.
  private(set) var samplesRead: UInt64 = 0

  init(machine: Machine, processTable: ProcessTable, identifiesSamples: Bool) {
    self.machineRef = Unretained(machine)
    self.processTable = processTable
    self.processTableRef = Unretained(processTable)
    self.identifiesSamples = identifiesSamples
  }

  /// Sends the samples stamped with kernel id `id` along `route`.
  func addRoute(id: UInt64, _ route: RecordRoute) {
    routeByID[id] = routes.count
    routeIDs.append(id)
    routes.append(route)
  }

  /// Some route of perf samples carries time, so perf rings' order matters. Records of the
  /// capture programs come through one BPF ring already in order, and name their task themselves.
  var perfRoutesCarryTime: Bool {
    zip(routeIDs, routes).contains { id, route in id & Self.programIDFlag == 0 && route.timeOffset != nil }
  }

  /// The top bit marks ids a BPF program stamps (kernel event ids are small counters).
  static let programIDFlag: UInt64 = 1 << 63

  /// The next id free for records a BPF program stamps itself. Kernel event ids are small
  /// counters: ids with the top bit set cannot collide with them.
  var nextProgramID: UInt64 { Self.programIDFlag | UInt64(routes.count) }

  /// The route of a sample body that starts with `id` (when samples are identified).
  @inline(__always)
  func route(ofID id: UInt64) -> Int? {
    if !identifiesSamples { return routes.isEmpty ? nil : 0 }
    if routeIDs.count > 16 { return routeByID[id] }
    return routeIDs.withUnsafeBufferPointer { ids in ids.firstIndex(of: id) }
  }

  /// A COMM or FORK record stamped `time` (0: unknown).
  func apply(taskRecord record: PerfRecord, time: UInt64) {
    if record.type == PerfRecordType.comm, let comm = PerfCommRecord(record) {
      processTable.update(tid: comm.tid, pid: comm.pid, name: comm.name, time: time)
    } else if record.type == PerfRecordType.fork, let task = PerfTaskRecord(record) {
      processTable.inherit(tid: task.tid, pid: task.pid, from: task.ptid, time: time)
      if task.pid != task.ppid { StackTable.shared.inherit(task.pid, from: task.ppid) }
    }
  }

  deinit { routeStore.deallocate() }

  /// Loads one sample into the machine and runs its block's action.
  func dispatch(_ body: UnsafeRawBufferPointer, route index: Int) {
    let route = UnsafePointer(routeStore.baseAddress! + index)
    dispatch(body, route: route)
  }

  @inline(__always)
  private func dispatch(_ body: UnsafeRawBufferPointer, route pointer: UnsafePointer<RecordRoute>) {
    let route = pointer.pointee
    // exit() is final: records drained after it (on any CPU) run no action, as bpftrace's
    // detach would have stopped them; END and the maps come next.
    guard let sample = route.decoder.decode(body) else { return }
    machineRef.with { machine in
      guard !machine.exitRequested else { return }
      samplesRead &+= 1
      machine.raw = sample.raw.baseAddress
      machine.rawSize = sample.raw.count
      if route.tidFromRecord, sample.raw.count >= 8 {
        let tid = sample.raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        machine.tid = tid
        machine.pid = processTableRef.with { $0.processID(of: tid) }
      } else {
        machine.pid = sample.pid
        machine.tid = sample.tid
      }
      machine.cpu = sample.cpu
      machine.time = sample.time
      machine.ip = sample.ip
      machine.cgroup = sample.cgroup
      if let captured = route.captured {
        machine.eventComm = Self.field(captured.comm, size: 16, in: body)
        machine.eventCredentials = Self.field(captured.credentials, size: 8, in: body)
        machine.eventKernelStack = Self.field(captured.kernelStack, size: 8, in: body)
        machine.eventUserStack = Self.field(captured.userStack, size: 8, in: body)
      } else {
        machine.eventComm = nil
        machine.eventCredentials = nil
        if sample.callchain.count > 0 {
          machine.takeCallchain(sample.callchain)
        } else {
          machine.eventKernelStack = nil
          machine.eventUserStack = nil
        }
      }
      machine.probeName = route.probeName
      machine.probeFunction = route.functionName
      route.failedReads?.with { $0.say(in: machine) }
      route.action.with { $0.run(machine, skipPredicate: route.skipPredicate) }
      if machine.flushesEachEvent { machine.output.flush() }
    }
  }

  /// A field the capture program wrote at `offset` in the body; nil when the route has none.
  @inline(__always)
  private static func field(_ offset: Int32, size: Int, in body: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
    guard offset >= 0, Int(offset) + size <= body.count else { return nil }
    return body.baseAddress! + Int(offset)
  }

  /// Forgets the last sample's pointers into ring memory, which the next drain may overwrite.
  func clearEvent() {
    machineRef.with { machine in
      machine.raw = nil
      machine.rawSize = 0
      machine.eventComm = nil
      machine.eventCredentials = nil
      machine.eventKernelStack = nil
      machine.eventUserStack = nil
    }
  }
}
