import ScryKernel
import ScryPlan

/// The syscalls tracepoints of one block and one direction (`sys_enter_*` or `sys_exit_*`).
public struct SyscallFamily: Sendable, Hashable {
  public var blockIndex: Int
  public var isExit: Bool

  /// The tracepoint that carries the family: raw_syscalls fires for every syscall.
  public var carrierName: String { isExit ? "sys_exit" : "sys_enter" }
}

/// An attachment carried by its family's carrier (see `SyscallCarrier`) rather than attached to
/// its own tracepoint.
public struct SyscallCarrierFact: Sendable, Equatable {
  public var family: SyscallFamily
  /// The syscall the attachment's tracepoint fires for.
  public var number: Int
  public var mode: SyscallCarrier.Mode
  /// The block follows one process (`-p`, `-c` with `pid == cpid`, `pid == N`): the carrier keeps
  /// only that process's syscalls (its tgid, compared before anything else), where one by one
  /// each tracepoint would have per-task events on every thread and CPU.
  public var followsProcess: Bool
}

/// Which blocks' syscalls tracepoints go through one raw_syscalls carrier, and why the others do
/// not. Decided from the plan, the options and the per-attachment facts alone (loads nothing).
enum SyscallFamilies {
  /// Fewer tracepoints than this are attached one by one: each costs about one kernel wait
  /// (~36 ms here) when it closes, while a carrier's program runs on every syscall of the machine.
  static let minimumMembers = 5

  struct Decision {
    /// Carried attachments, by attachment index.
    var carried: [Int: SyscallCarrierFact] = [:]
    /// Each family's size and what was decided, for `--plan`.
    var summaries: [(family: SyscallFamily, members: Int, text: String)] = []
  }

  /// `unfiltered` holds, for attachments that follow a process, the fact they would have
  /// system-wide: a carried member that follows a process runs that path behind the carrier's
  /// process test.
  static func decide(
    _ plan: Plan, facts: [Int: AttachmentFact], unfiltered: [Int: AttachmentFact] = [:], options: SessionOptions
  ) -> Decision {
    var members: [SyscallFamily: [(index: Int, number: Int?)]] = [:]
    var order: [SyscallFamily] = []
    for (index, attachment) in plan.attachments.enumerated() {
      guard case .tracepoint("syscalls", let name, _) = attachment.probe.target else { continue }
      let isExit = name.hasPrefix("sys_exit_")
      guard isExit || name.hasPrefix("sys_enter_") else { continue }
      let family = SyscallFamily(blockIndex: attachment.blockIndex, isExit: isExit)
      if members[family] == nil { order.append(family) }
      members[family, default: []].append((index, SyscallNumbers.number(ofTracepoint: name)))
    }
    var decision = Decision()
    for family in order {
      let list = members[family] ?? []
      let pattern = "syscalls:\(family.isExit ? "sys_exit" : "sys_enter")_*"
      let (mode, refusal) = carrierMode(list, plan: plan, facts: facts, unfiltered: unfiltered, options: options)
      if let mode {
        let follows = followsProcess(plan.attachments[list[0].index], options: options)
        for member in list {
          decision.carried[member.index] = SyscallCarrierFact(
            family: family, number: member.number ?? 0, mode: mode, followsProcess: follows)
        }
        let what =
          mode == .counting
          ? "counting each syscall's hits in a per-CPU array (no ring); a counting carrier is a raw tracepoint program"
            + " (BPF_RAW_TRACEPOINT_OPEN: no record is built per syscall) where the kernel takes one"
          : "tail-calling each tracepoint's capture program (bpf_tail_call), which writes its record into the BPF ring"
        decision.summaries.append(
          (
            family, list.count,
            "block \(family.blockIndex): \(list.count) \(pattern) tracepoints carried by one BPF program on "
              + "raw_syscalls:\(family.carrierName), which keeps the block's syscall numbers (an array lookup), skips "
              + "32-bit compat syscalls as the syscalls events do, and routes by number, \(what); "
              + (follows
                ? "it first drops other processes' syscalls (a compare of the tgid: \(whichProcess(plan.attachments[list[0].index])), "
                  + "not its children), though they still pay for the carrier's run before that compare, where one by one each tracepoint would have per-task events on every thread and CPU; "
                : "")
              + "so the run attaches "
              + "and closes one tracepoint instead of \(list.count) (closing each waits in the kernel); "
              + "if the kernel refuses, one by one"
          ))
      } else {
        decision.summaries.append(
          (family, list.count, "block \(family.blockIndex): \(list.count) \(pattern) tracepoint\(list.count == 1 ? "" : "s") attached one by one: \(refusal)"))
      }
    }
    return decision
  }

  /// The carrier's mode for a family, or why it takes none.
  private static func carrierMode(
    _ list: [(index: Int, number: Int?)], plan: Plan, facts: [Int: AttachmentFact], unfiltered: [Int: AttachmentFact],
    options: SessionOptions
  ) -> (SyscallCarrier.Mode?, String) {
    guard options.allowsBPF else { return (nil, "BPF is not allowed (--no-bpf)") }
    guard list.count >= minimumMembers else {
      return (nil, "fewer than \(minimumMembers), where a carrier running on every syscall costs more than it saves")
    }
    #if !arch(x86_64)
      return (nil, "syscall numbers are known on x86-64 only")
    #endif
    var mode: SyscallCarrier.Mode?
    for member in list {
      let attachment = plan.attachments[member.index]
      let name = attachment.probe.name
      guard member.number != nil else { return (nil, "\(name) has no number in Scry's x86-64 syscall table") }
      guard attachment.kernelFilter == nil else { return (nil, "\(name) has a kernel filter, which the carrier does not run") }
      let memberMode: SyscallCarrier.Mode
      // One process followed: what the member would run system-wide, behind the carrier's tgid test.
      let follows = followsProcess(attachment, options: options)
      switch (follows ? unfiltered[member.index] : facts[member.index])?.path {
      case .perfCounter?:
        memberMode = .counting
      case .bpfRing(let program)? where program.kind == .tracepoint:
        memberMode = .dispatching
      default:
        return (nil, "\(name) is delivered by a path the carrier cannot run (perf samples, a fetch program or a kernel map)")
      }
      if let mode, mode != memberMode { return (nil, "its tracepoints are delivered in different ways") }
      mode = memberMode
    }
    return (mode, "")
  }

  /// The attachment's events follow one process rather than every task.
  static func followsProcess(_ attachment: Attachment, options: SessionOptions) -> Bool {
    attachment.scope != .systemWide || options.targetPid != nil
  }

  /// For `--plan`: the process a followed block keeps.
  private static func whichProcess(_ attachment: Attachment) -> String {
    switch attachment.scope {
    case .process(let pid): return "pid \(pid)"
    case .tracedProcess: return "the -c or -p process"
    case .systemWide: return "the -p process"
    }
  }
}
