/// One BPF program on `raw_syscalls:sys_enter` (or `sys_exit`) standing for a family of
/// `syscalls:sys_enter_NAME` (or `sys_exit_NAME`) tracepoints: it reads the syscall's number
/// from the record and either counts the hit under that number or tail-calls the program the
/// family's tracepoint of that number would have run.
///
/// Why: closing the last perf event on a tracepoint waits in the kernel for
/// `tracepoint_synchronize_unregister()` (tens of milliseconds, under `event_mutex`), once per
/// tracepoint: 360 `sys_enter_*` events took 13 s to close. One carrier takes one wait.
///
/// The records agree byte for byte: raw_syscalls' `id` (a long at 8) holds what the syscalls
/// events' `__syscall_nr` (an int at 8) holds, and their fields at 16 + 8k are the syscall's
/// arguments in order, each 8 bytes (`args[6]` here); sys_exit's `ret` is at 16 in both. So a
/// capture program built for `sys_enter_NAME` runs unchanged on the carrier's context.
///
/// What the syscalls events skip, the carrier skips: numbers outside the table (x32's, -1 for a
/// syscall aborted by seccomp or ptrace) and 32-bit compat syscalls (the kernel's
/// `trace_get_syscall_nr` returns -1 when `in_ia32_syscall()`: `TS_COMPAT` in the task's
/// `thread_info.status`, which the carrier reads at the offset BTF gives). Only the numbers the
/// family traces pass the first test (a lookup in an array the verifier inlines), so untraced
/// syscalls cost a load and two compares.
///
/// With `onlyProcess`, the program first compares the task's tgid with it and ends for every other
/// process: a run that follows one process pays, on the machine's other syscalls, one helper call
/// and one compare, in place of per-task events on every thread and CPU of each tracepoint.
public final class SyscallCarrier {
  public enum Mode: Sendable, Equatable {
    /// Each hit adds one to its number's per-CPU counter (`count(of:)`).
    case counting
    /// Each hit runs the program routed to its number (`route(_:to:)`), by `bpf_tail_call`.
    case dispatching
  }

  public let mode: Mode
  /// Where a counting carrier finds the syscall's number when it runs on a raw tracepoint, whose
  /// context is the tracepoint's arguments rather than the record.
  public enum RawCarrier: Sendable, Equatable {
    /// `sys_enter(regs, id)`: the number is the second argument, at ctx + 8 as in the record.
    case enter
    /// `sys_exit(regs, ret)`: the number is `regs->orig_ax`, read at this offset of `pt_regs`
    /// (`origAxOffset(in:)`).
    case exit(origAxOffset: Int)
  }

  /// The process whose syscalls the carrier keeps; nil: every process.
  public let onlyProcess: Int32?
  /// The carrier as the script would name it, for errors.
  public let description: String
  /// What the program hangs on (a `PerfEvent` or a `RawTracepointLink`); attached while it is open.
  private let attachment: AnyObject
  private let wanted: BPFMap
  private let counts: BPFMap?
  /// Kept open while the carrier runs: the kernel empties a program array when its last
  /// user-space fd closes (so that programs in it cannot keep each other alive).
  private let programs: BPFMap?
  private let program: BPFProgram

  /// x86's TS_COMPAT (arch/x86/include/asm/thread_info.h): a 32-bit syscall is running.
  static let compatStatusBit: Int32 = 0x0002

  /// Loads the carrier for `numbers` and attaches it to `event` (a raw_syscalls event, open, not
  /// yet enabled). `compatStatusOffset` is where `thread_info.status` sits in the task
  /// (`compatStatusOffset(in:)`). `onlyProcess`: keep only that process's (tgid's) syscalls.
  public init(
    attachingTo event: PerfEvent, mode: Mode, numbers: [Int], compatStatusOffset: Int, onlyProcess: Int32? = nil
  ) throws(KernelError) {
    if let bad = numbers.first(where: { !(0..<SyscallNumbers.count).contains($0) }) {
      throw KernelError(
        operation: "build syscall carrier", subject: event.description, errno: 0,
        explanation: "syscall number \(bad) is not below \(SyscallNumbers.count)")
    }
    let wanted = try BPFMap.array(entries: SyscallNumbers.count, name: "scry_syscalls")
    for number in numbers { try wanted.update(index: UInt32(number), fd: 1) }
    let counts = mode == .counting ? try BPFMap.perCPUArray(valueSize: 8, entries: SyscallNumbers.count) : nil
    let programs = mode == .dispatching ? try BPFMap.programArray(entries: SyscallNumbers.count, name: "scry_routes") : nil
    let code = Self.instructions(
      wantedFD: wanted.fd, targetFD: (counts ?? programs)?.fd ?? -1, mode: mode, compatStatusOffset: compatStatusOffset,
      onlyProcess: onlyProcess)
    program = try BPFProgram.loadTracepointProgram(code, name: "scry_syscalls")
    try event.attach(program)
    self.mode = mode
    self.onlyProcess = onlyProcess
    description = event.description
    attachment = event
    self.wanted = wanted
    self.counts = counts
    self.programs = programs
  }

  /// A counting carrier on the raw tracepoint `sys_enter` or `sys_exit` (see `RawTracepointLink`):
  /// the kernel builds no record for it, which a tracepoint program's hits pay for.
  public init(
    linking carrier: RawCarrier, numbers: [Int], compatStatusOffset: Int, onlyProcess: Int32? = nil
  ) throws(KernelError) {
    let name = carrier == .enter ? "sys_enter" : "sys_exit"
    description = "tracepoint:raw_syscalls:\(name)"
    if let bad = numbers.first(where: { !(0..<SyscallNumbers.count).contains($0) }) {
      throw KernelError(
        operation: "build syscall carrier", subject: description, errno: 0,
        explanation: "syscall number \(bad) is not below \(SyscallNumbers.count)")
    }
    let wanted = try BPFMap.array(entries: SyscallNumbers.count, name: "scry_syscalls")
    for number in numbers { try wanted.update(index: UInt32(number), fd: 1) }
    let counts = try BPFMap.perCPUArray(valueSize: 8, entries: SyscallNumbers.count)
    let code = Self.instructions(
      wantedFD: wanted.fd, targetFD: counts.fd, mode: .counting, compatStatusOffset: compatStatusOffset,
      onlyProcess: onlyProcess, raw: carrier)
    program = try BPFProgram.loadRawTracepointProgram(code, name: "scry_syscalls")
    attachment = try RawTracepointLink(program, to: name, description: description)
    mode = .counting
    self.onlyProcess = onlyProcess
    self.wanted = wanted
    self.counts = counts
    programs = nil
  }

  /// Runs `program` (a tracepoint program built for the `syscalls` event of this number) for
  /// the carrier's hits of syscall `number`. The program array holds its own reference.
  public func route(_ number: Int, to program: BPFProgram) throws(KernelError) {
    guard let programs else {
      throw KernelError(operation: "route syscall", subject: description, errno: 0, explanation: "a counting carrier routes nothing")
    }
    try programs.update(index: UInt32(number), fd: program.fd)
  }

  /// Hits of syscall `number` so far, over every CPU (a counting carrier).
  public func count(of number: Int) throws(KernelError) -> UInt64 {
    guard let counts else { return 0 }
    return try counts.perCPUSum(index: UInt32(number))
  }

  /// Where `current->thread_info.status` sits, from the kernel's BTF; nil when BTF does not say
  /// (no BTF, another layout): then there is no sound compat test, and no carrier.
  public static func compatStatusOffset(in btf: BTF) -> Int? {
    guard let task = btf.structID(named: "task_struct"), case .record(let taskRecord)? = btf.type(id: task),
      let info = taskRecord.members.first(where: { $0.name == "thread_info" }),
      case .record(let infoRecord)? = btf.type(id: btf.resolved(info.type)),
      let status = infoRecord.members.first(where: { $0.name == "status" }),
      btf.size(of: status.type) == 4, status.bitfieldSize == 0, info.bitOffset % 8 == 0, status.bitOffset % 8 == 0
    else { return nil }
    return (info.bitOffset + status.bitOffset) / 8
  }

  /// Where `pt_regs.orig_ax` (the syscall's number) sits, from the kernel's BTF; nil elsewhere
  /// than x86-64 or when BTF does not say.
  public static func origAxOffset(in btf: BTF) -> Int? {
    btf.byteOffset(ofMember: "orig_ax", inStruct: "pt_regs", size: 8)
  }

  /// r6 = ctx, r7 = the syscall's number. The number is the record's `id` (ctx + 8), or what
  /// `raw` says on a raw tracepoint.
  static func instructions(
    wantedFD: Int32, targetFD: Int32, mode: Mode, compatStatusOffset: Int, onlyProcess: Int32? = nil,
    raw: RawCarrier? = nil
  ) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let done = asm.newLabel()
    asm.emit(.mov64(.r6, .r1))
    if let pid = onlyProcess {
      // Before anything else: pid_tgid is tgid << 32 | tid, the upper half names the process.
      asm.emit(.call(.getCurrentPidTgid))
      asm.emit(.rsh64(.r0, 32))
      asm.jump(.notEqual, .r0, pid, to: done)
    }
    if case .exit(let origAxOffset)? = raw {
      // bpf_probe_read_kernel(&number, 8, regs + orig_ax); a failed read counts nothing.
      asm.emit(.ldx(.double, .r3, .r6, 0))
      asm.emit(.add64(.r3, Int32(origAxOffset)))
      asm.emit(.mov64(.r1, .r10))
      asm.emit(.add64(.r1, -16))
      asm.emit(.mov64(.r2, 8))
      asm.emit(.call(.probeReadKernel))
      asm.jump(.notEqual, .r0, 0, to: done)
      asm.emit(.ldx(.double, .r7, .r10, -16))
    } else {
      asm.emit(.ldx(.double, .r7, .r6, 8))
    }
    // Unsigned: -1 (no syscall) is out of range too.
    asm.jump(.greaterOrEqual, .r7, Int32(SyscallNumbers.count), to: done)
    // wanted[number] != 0
    asm.emit(.stx(.word, .r10, -4, .r7))
    asm.emit(.mov64(.r2, .r10))
    asm.emit(.add64(.r2, -4))
    asm.emit(BPFInstruction.ldMapFD(.r1, wantedFD))
    asm.emit(.call(.mapLookupElem))
    asm.jump(.equal, .r0, 0, to: done)
    asm.emit(.ldx(.word, .r1, .r0, 0))
    asm.jump(.equal, .r1, 0, to: done)
    // A 32-bit syscall: bpf_probe_read_kernel(&status, 4, current + offset) & TS_COMPAT.
    asm.emit(.call(.getCurrentTask))
    asm.emit(.mov64(.r3, .r0))
    asm.emit(.add64(.r3, Int32(compatStatusOffset)))
    asm.emit(.mov64(.r1, .r10))
    asm.emit(.add64(.r1, -8))
    asm.emit(.mov64(.r2, 4))
    asm.emit(.call(.probeReadKernel))
    asm.emit(.ldx(.word, .r1, .r10, -8))
    asm.jump(.bitsSet, .r1, compatStatusBit, to: done)
    switch mode {
    case .counting:
      // counts[number] += 1 on this CPU.
      asm.emit(.mov64(.r2, .r10))
      asm.emit(.add64(.r2, -4))
      asm.emit(BPFInstruction.ldMapFD(.r1, targetFD))
      asm.emit(.call(.mapLookupElem))
      asm.jump(.equal, .r0, 0, to: done)
      asm.emit(.ldx(.double, .r1, .r0, 0))
      asm.emit(.add64(.r1, 1))
      asm.emit(.stx(.double, .r0, 0, .r1))
    case .dispatching:
      // Does not come back when the slot holds a program; an empty slot falls through.
      asm.emit(.mov64(.r1, .r6))
      asm.emit(BPFInstruction.ldMapFD(.r2, targetFD))
      asm.emit(.mov64(.r3, .r7))
      asm.emit(.call(.tailCall))
    }
    asm.place(done)
    asm.emit(.mov64(.r0, BPFProgram.tracepointPassesOn))
    asm.emit(.exit)
    return asm.finish()
  }
}
