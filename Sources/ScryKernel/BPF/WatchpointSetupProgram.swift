import Glibc

/// The program on the uprobe of a `watchpoint:FUNC+argN` probe (bpftrace's "setup probe"): it
/// stops the calling task (unless the watchpoint is async), so the task cannot touch the memory
/// before the breakpoint is open, reads argument N (the address to watch) from the task's
/// registers, and hands `{setup index, address}` to Scry through a `BPFOutputChannel`; Scry opens
/// the breakpoint and sends SIGCONT. x86-64 only: the arguments are the System V registers.
public enum WatchpointSetupProgram {
  /// The registers of arg0…arg5, as pt_regs names them.
  static let argumentRegisters = ["di", "si", "dx", "cx", "r8", "r9"]

  /// Bytes each record's RAW part starts with: the setup index, then the address (u64 each).
  public static let recordSize = 16

  /// The program's instructions; nil for an argument with no register (`arg6` and beyond).
  /// `process`: the traced process; the uprobe is on a file any process may run, and only the
  /// traced one may be stopped (Scry continues no other).
  public static func instructions(
    argument: Int, setupIndex: UInt32, stopsTask: Bool, outputMapFD: Int32, process: Int32
  ) -> [BPFInstruction]? {
    guard argument >= 0, argument < argumentRegisters.count, let offset = PTRegs.offset(of: argumentRegisters[argument])
    else { return nil }
    var code: [BPFInstruction] = [.mov64(.r6, .r1)]
    // Another process: return at once (the jump lands on the final `r0 = 0; exit`).
    code += [.call(.getCurrentPidTgid), .rsh64(.r0, 32)]
    let skipAt = code.count
    code.append(.exit)  // placeholder for the jump, patched below
    if stopsTask {
      // The signal is pending on return to user space: the task stops before the function's
      // first instruction runs, as bpftrace's bpf_send_signal(SIGSTOP) stops it.
      code += [.mov64(.r1, SIGSTOP), .call(.sendSignal)]
    }
    code += [
      .ldx(.double, .r7, .r6, offset),
      .st(.double, .r10, -16, Int32(bitPattern: setupIndex)),
      .stx(.double, .r10, -8, .r7),
      .mov64(.r1, .r6),
    ]
    code += BPFInstruction.ldMapFD(.r2, outputMapFD)
    // BPF_F_CURRENT_CPU: the channel's event on the CPU the task runs on.
    code += BPFInstruction.ldImm64(.r3, 0xffff_ffff)
    code += [
      .mov64(.r4, .r10), .add64(.r4, -16), .mov64(.r5, Int32(recordSize)), .call(.perfEventOutput),
      .mov64(.r0, 0), .exit,
    ]
    code[skipAt] = .jump(.notEqual, .r0, process, Int16(code.count - 2 - (skipAt + 1)))
    return code
  }

  /// A record's setup index and address, from its RAW bytes; nil when it is too short.
  public static func decode(_ raw: UnsafeRawBufferPointer) -> (setupIndex: Int, address: UInt64)? {
    guard raw.count >= recordSize else { return nil }
    return (Int(raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
  }

  /// Whether this kernel lets Scry load the setup program, bpf_send_signal included (what
  /// `--info` reports as `send_signal`): it is loaded, with a channel map of one entry, and
  /// released at once. Throws the kernel's refusal.
  public static func checkLoadable() throws(KernelError) {
    let map = try BPFMap.perfEventArray(entries: 1)
    let code = instructions(argument: 0, setupIndex: 0, stopsTask: true, outputMapFD: map.fd, process: getpid())!
    _ = try BPFProgram.loadProbeProgram(code, name: "scry_info")
  }
}
