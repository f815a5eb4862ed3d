import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// `@[kstack, ustack] = count()` counted in the kernel (see `BPFStackCounter`): the counts are
/// folded into the map at exit and at each `print`, each stack id named once through the
/// `StackTable`, so the map holds exactly the values the ring path's actions would have made.
final class StackCounting {
  let counter: BPFStackCounter
  let stacks: [StackType]
  /// Each key stack's kernel ids, by the stack table's number for the same frames (a stack map
  /// never re-points an id: Scry sets no BPF_F_REUSE_STACKID).
  private var named: [[UInt32: UInt32]]
  private var folded: [[UInt8]: UInt64] = [:]

  init(counter: BPFStackCounter, stacks: [StackType]) {
    self.counter = counter
    self.stacks = stacks
    named = Array(repeating: [:], count: stacks.count)
  }

  /// Adds what each key counted since the last fold to the map, keyed as the ring path keys it
  /// (per stack: its stack table number, then the pid for a user stack, 0 for a kernel one).
  func fold(into map: MapStorage) throws(KernelError) {
    let keySize = 8 * stacks.count
    var key = [UInt8](repeating: 0, count: keySize)
    for (kernelKey, total) in try counter.totals() {
      let delta = total &- (folded[kernelKey] ?? 0)
      folded[kernelKey] = total
      guard delta > 0, keySize == map.keySize else { continue }
      let pid = kernelKey.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4 * stacks.count, as: UInt32.self) }
      for i in stacks.indices {
        let id = kernelKey.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) }
        let number = name(id, ofStack: i)
        let isKernel = stacks[i].isKernel
        if !isKernel { StackTable.shared.noteProcess(pid) }
        key.withUnsafeMutableBytes {
          $0.storeBytes(of: number, toByteOffset: 8 * i, as: UInt32.self)
          $0.storeBytes(of: isKernel ? 0 : pid, toByteOffset: 8 * i + 4, as: UInt32.self)
        }
      }
      key.withUnsafeBytes { keyBytes in
        guard let pointer = keyBytes.baseAddress else { return }
        let hash = MapStorage.hash(pointer, count: map.keySize)
        guard let value = map.lookup(key: pointer, hash: hash, insert: true) else { return }
        value.storeBytes(of: value.loadUnaligned(as: UInt64.self) &+ delta, as: UInt64.self)
      }
    }
    map.setKernelDroppedInserts(Int(counter.total(of: .droppedKeys)))
    // Stacks whose bucket held another stack: reported as failed reads, as bpftrace's are lost.
    map.kernelFailedReads = counter.total(of: .lostStacks)
  }

  /// The stack table's number for kernel stack `id`, its frames cut to the key's depth.
  private func name(_ id: UInt32, ofStack index: Int) -> UInt32 {
    if let number = named[index][id] { return number }
    let frames = counter.frames(ofStack: index, id: id)
    let count = min(frames.count, stacks[index].depth)
    let number = frames.withUnsafeBytes { raw in
      StackTable.shared.intern(raw.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, count: count)
    }
    named[index][id] = number
    return number
  }
}

extension CountingDelivery {
  /// A profile, software event or tracepoint counted per stack: one program on a carrier event
  /// (a tracepoint's runs for every CPU) or on each CPU's sampling event. false when BPF refuses,
  /// and the ring samples the probe instead.
  func attachStacks(_ request: AttachRequest, stacks: [StackType], in context: AttachContext) -> Bool {
    guard let counting = request.attachment.counting else { return false }
    let isTracepoint = request.probe.kind == .tracepoint
    let added = context.events.count
    do {
      let counter = try BPFStackCounter(
        kind: isTracepoint ? .tracepoint : .perfEvent,
        stacks: stacks.map { BPFStackCounter.Stack(isKernel: $0.isKernel, depth: $0.depth) },
        maxKeys: context.session.maps[counting.mapIndex].maxEntries, name: "scry_stacks")
      if isTracepoint {
        let event = try PerfEvent.tracepoint(
          id: try context.tracepointID(of: request.probe), description: request.probe.name, cpu: -1, pid: getpid(),
          options: .programCarrier)
        context.events.append(event)
        try event.attach(counter.program)
      } else {
        // The program runs on the overflows of the events it hangs on: they sample, with no ring.
        var options = request.options
        options.countingOnly = false
        options.sampleType = []
        for target in request.targets(cpus: context.cpus) {
          let event = try ProbeEvents.open(request, pid: target.pid, cpu: target.cpu, options: &options, in: context)
          context.events.append(event)
          try event.attach(counter.program)
        }
      }
      add(request.index, .stacks(StackCounting(counter: counter, stacks: stacks)))
      return true
    } catch {
      context.events.removeSubrange(added...)
      printToStandardError("WARNING: \(request.probe.name): sampled instead of counted per stack in the kernel: \(error)\n")
      return false
    }
  }
}
