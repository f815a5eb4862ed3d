import Glibc
import ScryKernel
import ScryPlan

/// A tracepoint whose block reads behind pointer fields: a BPF program copies the record and the
/// data into one sample when the event fires, and sends it through a `bpf-output` event per CPU
/// into the same perf rings as every other event. The program hangs on one tracepoint event (it
/// runs for hits on every CPU); when threads are followed it drops other processes' hits itself.
final class BPFFetchDelivery: EventDelivery {
  private unowned let perfRings: PerfRingDelivery

  init(perfRings: PerfRingDelivery) {
    self.perfRings = perfRings
  }

  func attach(_ request: AttachRequest, path: DeliveryPath, in context: AttachContext) throws -> Bool {
    guard case .bpfFetch(var fetch, let filtersProcess) = path, let planned = request.attachment.pointerFetch else {
      return false
    }
    let probe = request.probe
    let id = try context.tracepointID(of: probe)
    fetch.commonType = UInt16(truncatingIfNeeded: id)
    try fetch.validate()
    guard fetch.itemOffsets == planned.itemOffsets else {
      throw SessionError.failure("\(probe.name): the fetch program lays out its sample differently than the plan")
    }
    let onlyProcess = filtersProcess ? request.followedProcess : nil
    if filtersProcess && onlyProcess == nil {
      throw SessionError.failure("\(probe.name): no process to follow (use -p or -c)")
    }
    let outputs = try BPFMap.perfEventArray(entries: BPFMap.possibleCPUCount())
    let scratch = try BPFMap.perCPUArray(valueSize: fetch.sampleSize, entries: 1)
    let instructions = TracepointFetchProgram.instructions(
      for: fetch, outputMapFD: outputs.fd, scratchMapFD: scratch.fd, onlyProcess: onlyProcess)
    let program = try BPFProgram.loadTracepointProgram(instructions, name: "scry_fetch")
    context.kernelObjects += [outputs, scratch, program]
    var outputOptions = request.options
    outputOptions.inherit = false
    outputOptions.readLostCount = true
    for cpu in context.cpus {
      let output = try PerfEvent.software(named: "bpf-output", description: probe.name, cpu: cpu, pid: -1, options: outputOptions)
      context.events.append(output)
      perfRings.countLosses(of: output)
      try outputs.update(index: UInt32(cpu), fd: output.fd)
      try perfRings.route(
        output, cpu: cpu, to: request.attachment, sampleType: outputOptions.sampleType, skipPredicate: false, in: context)
    }
    let tracepoint = try PerfEvent.tracepoint(id: id, description: probe.name, cpu: -1, pid: getpid(), options: .programCarrier)
    context.events.append(tracepoint)
    try tracepoint.attach(program)
    return true
  }

  func release() {}
}
