import Glibc
import ScryKernel
import ScryPlan

/// Families of syscalls tracepoints carried by one raw_syscalls program each (see
/// `SyscallCarrier`, `SyscallFamilies`): the carrier is made with the family's first member; each
/// member then either counts under its number or routes its number to its own capture program.
/// A family the kernel refuses is said once on stderr, and its members are attached one by one.
final class SyscallCarrierDelivery {
  private let counting: CountingDelivery
  private let bpfRing: BPFRingDelivery
  private var numbers: [SyscallFamily: [Int]] = [:]
  private var carriers: [SyscallFamily: SyscallCarrier] = [:]
  private var refused: Set<SyscallFamily> = []

  init(counting: CountingDelivery, bpfRing: BPFRingDelivery) {
    self.counting = counting
    self.bpfRing = bpfRing
  }

  /// Notes every family's syscall numbers, so that the carrier made with the first member keeps them all.
  func prepare(_ facts: [Int: AttachmentFact]) {
    for fact in facts.values {
      guard let carried = fact.carrier else { continue }
      numbers[carried.family, default: []].append(carried.number)
    }
  }

  /// Attaches one member through its family's carrier; false when the family cannot be carried
  /// (or this member's program was refused), and the member takes its own tracepoint.
  func attach(_ request: AttachRequest, _ carried: SyscallCarrierFact, path: DeliveryPath, in context: AttachContext) throws -> Bool {
    guard let carrier = carrier(for: carried, process: request.followedProcess, in: context) else { return false }
    switch carried.mode {
    case .counting:
      counting.add(request.index, .carried(carrier, number: carried.number))
    case .dispatching:
      guard case .bpfRing(let planned) = path, let (program, loaded) = try bpfRing.load(planned, for: request, in: context)
      else { return false }
      do {
        try carrier.route(carried.number, to: loaded)
      } catch {
        printToStandardError("WARNING: \(request.probe.name): attached on its own, not through the syscall carrier: \(error)\n")
        return false
      }
      bpfRing.route(request, program, loaded, in: context)
    }
    return true
  }

  /// The family's carrier, made on first use; nil when it cannot be. A family that follows a
  /// process keeps `process`'s syscalls only (every member of a block follows the same one).
  private func carrier(for carried: SyscallCarrierFact, process: Int32?, in context: AttachContext) -> SyscallCarrier? {
    let family = carried.family
    if let carrier = carriers[family] { return carrier }
    guard !refused.contains(family) else { return nil }
    do {
      if carried.followsProcess && process == nil { throw SessionError.failure("no process to follow") }
      guard let tracefs = context.tracefs else { throw SessionError.failure("tracefs is not available") }
      let btf = try BTF.vmlinux.get()
      guard let statusOffset = SyscallCarrier.compatStatusOffset(in: btf) else {
        throw SessionError.failure("the kernel's BTF has no task_struct.thread_info.status to tell 32-bit syscalls apart")
      }
      if carried.mode == .counting,
        let carrier = rawCarrier(family, numbers: numbers[family] ?? [], btf: btf, compatStatusOffset: statusOffset,
          onlyProcess: carried.followsProcess ? process : nil)
      {
        context.kernelObjects.append(carrier)
        carriers[family] = carrier
        return carrier
      }
      let id = try tracefs.eventID(category: "raw_syscalls", name: family.carrierName)
      let event = try PerfEvent.tracepoint(
        id: id, description: "tracepoint:raw_syscalls:\(family.carrierName)", cpu: -1, pid: getpid(),
        options: .programCarrier)
      let carrier = try SyscallCarrier(
        attachingTo: event, mode: carried.mode, numbers: numbers[family] ?? [], compatStatusOffset: statusOffset,
        onlyProcess: carried.followsProcess ? process : nil)
      context.events.append(event)
      context.kernelObjects.append(carrier)
      carriers[family] = carrier
      return carrier
    } catch {
      refused.insert(family)
      printToStandardError(
        "WARNING: block \(family.blockIndex): its syscalls tracepoints are attached one by one (slower to close), "
          + "not through raw_syscalls:\(family.carrierName): \(error)\n")
      return nil
    }
  }

  /// A counting carrier on the raw tracepoint (no record built per syscall); nil when the kernel
  /// refuses it or BTF does not place `orig_ax`, and the tracepoint program carries instead.
  private func rawCarrier(
    _ family: SyscallFamily, numbers: [Int], btf: BTF, compatStatusOffset: Int, onlyProcess: Int32?
  ) -> SyscallCarrier? {
    let raw: SyscallCarrier.RawCarrier
    if family.carrierName == "sys_enter" {
      raw = .enter
    } else {
      guard let offset = SyscallCarrier.origAxOffset(in: btf) else { return nil }
      raw = .exit(origAxOffset: offset)
    }
    return try? SyscallCarrier(linking: raw, numbers: numbers, compatStatusOffset: compatStatusOffset, onlyProcess: onlyProcess)
  }

  func release() {
    carriers.removeAll()
  }
}
