import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan

/// `watchpoint:FUNC+argN:LEN:MODE` and `asyncwatchpoint:…`, as bpftrace 0.17 runs them: a uprobe
/// on FUNC whose program (`WatchpointSetupProgram`) stops the task (not for async ones), reads
/// argument N and hands the address over; at the next drain Scry opens the breakpoint on the
/// traced process's tasks, routes its samples to the block through the perf rings, and continues
/// the process with SIGCONT. Each probe watches one address at a time: the same address again is
/// ignored, a new one adds a breakpoint (the older ones stay, as in bpftrace); `unwatch(addr)`
/// closes every breakpoint on an address. The kernel's "no register left" (ENOSPC) is said in
/// bpftrace's words and the run goes on.
final class WatchpointDelivery {
  private struct Setup {
    var request: AttachRequest
    var watch: Watchpoint
    /// The address the probe's newest breakpoint watches (0: none yet).
    var address: UInt64 = 0
  }

  private var setups: [Setup] = []
  private var channel: BPFOutputChannel?
  /// The uprobes carrying the setup programs: closed first at teardown, so no task is stopped
  /// after the last SIGCONT.
  private var uprobes: [PerfEvent] = []
  private var programs: [BPFProgram] = []
  /// Open breakpoints by the address they watch.
  private var breakpoints: [(address: UInt64, events: [PerfEvent])] = []
  private var guardian: ContinueGuardian?
  /// Setups whose task a program stopped since the last drain: continued after it.
  private var stopped: Set<Int> = []
  var holdsStoppedTasks: Bool { !stopped.isEmpty }
  private let perfRings: PerfRingDelivery

  init(perfRings: PerfRingDelivery) { self.perfRings = perfRings }

  /// The rings' fds to wait on: a setup record wakes the loop at once.
  var pollFDs: [Int32] { channel?.events.map(\.fd) ?? [] }

  /// Whether the attachment is a watchpoint on a function's argument (this delivery's).
  static func serves(_ attachment: Attachment) -> Bool {
    guard case .breakpoint(let watch) = attachment.probe.target, case .argument = watch.site else { return false }
    return true
  }

  func attach(_ request: AttachRequest, in context: AttachContext) throws {
    let probe = request.probe
    guard case .breakpoint(let watch) = probe.target, case .argument(let function, let argument) = watch.site,
      let binary = watch.binary
    else { return }
    guard let tracedPid = request.followedProcess else {
      throw SessionError.failure("\(probe.name): -p PID or -c CMD required for watchpoint")
    }
    if !watch.isAsync && guardian == nil {
      guardian = try ContinueGuardian(of: tracedPid)
    }
    let channel = try self.channel ?? BPFOutputChannel(sampleType: [.raw], dataPages: 8)
    self.channel = channel
    guard
      let code = WatchpointSetupProgram.instructions(
        argument: argument, setupIndex: UInt32(setups.count), stopsTask: !watch.isAsync, outputMapFD: channel.map.fd,
        process: tracedPid)
    else { throw SessionError.failure("\(probe.name): x86_64 doesn't support arg\(argument)") }
    let program: BPFProgram
    do {
      program = try BPFProgram.loadProbeProgram(code, name: "scry_watch")
    } catch {
      throw SessionError.failure(
        "\(probe.name): the kernel refused the watchpoint's setup program (it stops the task with bpf_send_signal): \(error)")
    }
    var options = PerfEventOptions()
    options.countingOnly = true
    let uprobe = try PerfEvent.uprobe(
      path: binary, fileOffset: function.fileOffset, isReturn: false, description: probe.name, cpu: context.cpus[0],
      pid: -1, options: options)
    try uprobe.attach(program)
    uprobes.append(uprobe)
    programs.append(program)
    setups.append(Setup(request: request, watch: watch))
    try channel.enable()
  }

  /// Opens the breakpoints the setup programs asked for since the last drain. Runs before the
  /// rings are drained, so routes change only between drains; the tasks stay stopped until
  /// `settle`, after the drain.
  func openRequested(in context: AttachContext) {
    guard let channel else { return }
    var asked: [(setupIndex: Int, address: UInt64)] = []
    let decoder = PerfSampleDecoder(sampleType: channel.sampleType)
    for ring in channel.rings {
      ring.drain(yieldingToSignals: false) { record in
        guard record.type == PerfRecordType.sample, let sample = decoder.decode(record.body),
          let setup = WatchpointSetupProgram.decode(sample.raw)
        else { return }
        asked.append(setup)
      }
    }
    for (index, address) in asked where index < setups.count {
      open(setupIndex: index, address: address, in: context)
      if !setups[index].watch.isAsync { stopped.insert(index) }
    }
  }

  /// After a drain: closes what `unwatch()` named in its actions, then continues the tasks the
  /// setup programs stopped. So the actions of every hit before a stop have run, and their
  /// unwatches taken effect, before the task goes on (bpftrace's unwatch is asynchronous; this
  /// order makes it exact). The task goes on whether or not its breakpoint could be opened, as in
  /// bpftrace.
  func settle(in context: AttachContext) {
    let machine = context.session.machine
    if !machine.unwatchedAddresses.isEmpty {
      for address in machine.unwatchedAddresses { unwatch(address) }
      machine.unwatchedAddresses.removeAll()
    }
    for index in stopped.sorted() { continueTraced(setups[index].request) }
    stopped.removeAll()
  }

  private func open(setupIndex index: Int, address: UInt64, in context: AttachContext) {
    // bpftrace ignores the address its probe already watches, not one another probe watches.
    guard setups[index].address != address else { return }
    // Taken before trying, as bpftrace takes it: an address refused for want of registers is
    // not tried (nor said) again when the function is passed it again.
    setups[index].address = address
    var request = setups[index].request
    // The process's threads now (it may have started some since the run began).
    if let pid = request.followedProcess {
      let threads = ProbeEvents.threads(of: pid)
      if !threads.isEmpty { request.followed = threads }
    }
    var opened: [PerfEvent] = []
    do {
      var options = request.options
      options.startDisabled = false
      for target in request.targets(cpus: context.cpus) {
        let event = try ProbeEvents.breakpoint(
          setups[index].watch, at: address, description: request.probe.name, pid: target.pid, cpu: target.cpu,
          options: &options)
        opened.append(event)
        try perfRings.route(event, cpu: target.cpu, to: request.attachment, sampleType: options.sampleType, skipPredicate: false, in: context)
      }
    } catch let error as KernelError where error.errno == ENOSPC {
      // bpftrace's words, on its output; the run goes on with the breakpoints it has.
      say("Failed to attach watchpoint probe. You are out of watchpoint registers.", in: context)
      return
    } catch {
      say("ERROR: \(request.probe.name): could not open the watchpoint at 0x\(String(address, radix: 16)): \(error)", in: context)
      return
    }
    breakpoints.append((address, opened))
  }

  /// `unwatch(addr)`: every breakpoint on the address closes; an address nothing watches is no error.
  func unwatch(_ address: UInt64) {
    let (closing, kept) = (breakpoints.filter { $0.address == address }, breakpoints.filter { $0.address != address })
    breakpoints = kept
    PerfEvent.closeAll(closing.flatMap(\.events))
  }

  private func continueTraced(_ request: AttachRequest) {
    guard let pid = request.followedProcess, kill(pid, SIGCONT) != 0 else { return }
    printToStandardError("ERROR: Failed to SIGCONT tracee: \(String(cString: strerror(errno)))\n")
  }

  /// A message on the output, as bpftrace writes it (with `-f json`, its `lost_events` record).
  private func say(_ message: String, in context: AttachContext) {
    let output = context.session.output
    if context.session.options.format == .json {
      let escaped = message.flatMap { $0 == "\"" || $0 == "\\" ? ["\\", $0] : [$0] }.map(String.init).joined()
      output.append("{\"type\": \"lost_events\", \"data\": \"\(escaped)\"}\n")
    } else {
      output.append(message + "\n")
    }
    output.flush()
  }

  /// Closes the uprobes first (no task is stopped after this), then continues the traced process
  /// in case one was stopped since the last drain.
  func release() {
    PerfEvent.closeAll(uprobes)
    uprobes.removeAll()
    programs.removeAll()
    PerfEvent.closeAll(breakpoints.flatMap(\.events))
    breakpoints.removeAll()
    if let pid = setups.first(where: { !$0.watch.isAsync })?.request.followedProcess { kill(pid, SIGCONT) }
    setups.removeAll()
    channel = nil
    guardian = nil
  }
}
