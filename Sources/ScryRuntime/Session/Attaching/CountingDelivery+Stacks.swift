import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// `@[kstack, ustack, comm] = count()` counted in the kernel (see `BPFStackCounter`): the counts are
/// folded into the map at exit and at each `print`, each stack id named once through the
/// `StackTable`, so the map holds exactly the values the ring path's actions would have made.
final class StackCounting {
  let counter: BPFStackCounter
  let parts: [StackKeyPart]
  /// Each stack part's kernel ids, by the stack table's number for the same frames (a stack map
  /// never re-points an id: Scry sets no BPF_F_REUSE_STACKID).
  private var named: [[UInt32: UInt32]]
  private var folded: [[UInt8]: UInt64] = [:]

  /// Events counted as of the last fold, over every key.
  var foldedTotal: UInt64 { folded.values.reduce(0, &+) }

  init(counter: BPFStackCounter, parts: [StackKeyPart]) {
    self.counter = counter
    self.parts = parts
    named = Array(repeating: [:], count: parts.count)
  }

  /// Adds what each key counted since the last fold to the map, keyed as the ring path keys it:
  /// a stack as its stack table number, then the pid for a user stack (0 for a kernel one); the
  /// name's 16 bytes; a pid or tid as 8 bytes.
  func fold(into map: MapStorage) throws(KernelError) {
    var key = [UInt8](repeating: 0, count: map.keySize)
    let processOffset = counter.processOffset
    for (kernelKey, total) in try counter.totals() {
      // Short while an eviction races the read, never long (see `BPFCountCache`).
      let previous = folded[kernelKey] ?? 0
      guard total > previous else { continue }
      folded[kernelKey] = total
      let delta = total - previous
      let pid = kernelKey.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: processOffset, as: UInt32.self) }
      var offset = 0
      for (i, part) in parts.enumerated() {
        // Every part is as wide in the map's key as in the kernel's.
        guard offset + 8 <= key.count else { return }
        switch part {
        case .stack(let stack):
          let id = kernelKey.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
          let number = name(id, ofPart: i, depth: stack.depth)
          if !stack.isKernel { StackTable.shared.noteProcess(pid) }
          key.withUnsafeMutableBytes {
            $0.storeBytes(of: number, toByteOffset: offset, as: UInt32.self)
            $0.storeBytes(of: stack.isKernel ? 0 : pid, toByteOffset: offset + 4, as: UInt32.self)
          }
          offset += 8
        case .comm:
          key.replaceSubrange(offset..<offset + 16, with: kernelKey[offset..<offset + 16])
          offset += 16
        case .task:
          key.replaceSubrange(offset..<offset + 8, with: kernelKey[offset..<offset + 8])
          offset += 8
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
  private func name(_ id: UInt32, ofPart index: Int, depth: Int) -> UInt32 {
    if let number = named[index][id] { return number }
    let frames = counter.frames(ofPart: index, id: id)
    let count = min(frames.count, depth)
    let number = frames.withUnsafeBytes { raw in
      StackTable.shared.intern(raw.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, count: count)
    }
    named[index][id] = number
    return number
  }
}

extension CountingDelivery {
  /// A profile, software event or tracepoint counted per stack: one program on a carrier event
  /// (a tracepoint's runs for every CPU) or on each CPU's sampling event. The probes of one block
  /// share the program and its maps (a stack map is megabytes of kernel memory: one per probe of
  /// `sys_enter_*` would be gigabytes). false when BPF refuses, and the ring samples the probe.
  func attachStacks(_ request: AttachRequest, parts: [StackKeyPart], in context: AttachContext) -> Bool {
    guard let counting = request.attachment.counting else { return false }
    let isTracepoint = request.probe.kind == .tracepoint
    if isTracepoint, attachRaw(request, parts: parts, in: context) { return true }
    let added = context.events.count
    let shared = SharedStackCounter(block: request.attachment.blockIndex, carrier: isTracepoint ? .tracepoint : .perfEvent)
    do {
      let known = stackCounters[shared]
      let counter = try known?.counter ?? BPFStackCounter(
        kind: isTracepoint ? .tracepoint : .perfEvent,
        parts: parts.map(Self.kernelPart),
        maxKeys: context.session.maps[counting.mapIndex].maxEntries, commOffset: Self.commOffset(parts), name: "scry_stacks")
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
      if known == nil { keep(counter, parts: parts, as: shared, for: request.index) }
      return true
    } catch {
      context.events.removeSubrange(added...)
      printToStandardError("WARNING: \(request.probe.name): sampled instead of counted per stack in the kernel: \(error)\n")
      return false
    }
  }

  /// A tracepoint counted per task (`@[comm]`, `@[pid]`) through a raw tracepoint link (see
  /// `AttachmentFacts.rawTracepointOfCount`). false when it is not such a count, the tracepoint
  /// has no raw tracepoint of its name, or the kernel refuses (the caller attaches a tracepoint
  /// program instead).
  private func attachRaw(_ request: AttachRequest, parts: [StackKeyPart], in context: AttachContext) -> Bool {
    guard let counting = request.attachment.counting, let name = AttachmentFacts.rawTracepointOfCount(request.attachment)
    else { return false }
    let shared = SharedStackCounter(block: request.attachment.blockIndex, carrier: .rawTracepoint)
    let known = stackCounters[shared]
    do {
      let counter = try known?.counter ?? BPFStackCounter(
        kind: .rawTracepoint, parts: parts.map(Self.kernelPart),
        maxKeys: context.session.maps[counting.mapIndex].maxEntries, commOffset: Self.commOffset(parts), name: "scry_tasks")
      rawLinks.append(try RawTracepointLink(counter.program, to: name, description: request.probe.name))
      if known == nil { keep(counter, parts: parts, as: shared, for: request.index) }
      return true
    } catch {
      return false
    }
  }

  /// Keeps a block's new counter for its other probes, folded for the first one.
  private func keep(_ counter: BPFStackCounter, parts: [StackKeyPart], as shared: SharedStackCounter, for attachment: Int) {
    let made = StackCounting(counter: counter, parts: parts)
    stackCounters[shared] = made
    add(attachment, .stacks(made))
  }

  /// Where the task's name sits in the task, for a key that holds it (read from BTF only then).
  private static func commOffset(_ parts: [StackKeyPart]) -> Int? {
    guard parts.contains(.comm), BTF.vmlinuxIsPresent, case .success(let btf) = BTF.vmlinux else { return nil }
    return BPFStackCounter.taskCommOffset(in: btf)
  }

  private static func kernelPart(_ part: StackKeyPart) -> BPFStackCounter.Part {
    switch part {
    case .stack(let stack): return .stack(BPFStackCounter.Stack(isKernel: stack.isKernel, depth: stack.depth))
    case .comm: return .comm
    case .task(let property): return property == .tid ? .threadID : .processID
    }
  }
}
