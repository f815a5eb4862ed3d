/// Generates the BPF program that copies a tracepoint record plus the memory its pointer
/// fields point to into one buffer and sends it to user space with `bpf_perf_event_output`.
///
/// Registers: r6 = ctx (the record), r7 = the per-CPU scratch buffer, r8/r9 = string-array
/// cursor and count. The buffer lives in a per-CPU array value because the stack has only
/// 512 bytes; every helper gets a constant size, which is what the verifier needs to bound
/// the accesses. The program returns 0, so the tracepoint's own perf sample is not emitted.
public enum TracepointFetchProgram {
  /// BPF_F_CURRENT_CPU: "the perf event array slot of the CPU the program runs on".
  static let currentCPU: Int32 = -1  // as mov32: 0xffffffff, zero-extended

  /// The program for `fetch` (which should pass `validate()`): lookup of key 0 in the
  /// scratch map (bail out if null); probe_read_kernel of the record; per item, the
  /// pointer from the copy and a probe_read(_str) into its slot (string arrays unrolled,
  /// maxCount steps); then perf_event_output(ctx, outputMap, BPF_F_CURRENT_CPU, buffer,
  /// sampleSize); return 0.
  ///
  /// With `onlyProcess`, the program first ends (returning 0) for hits of tasks outside that
  /// process: the program hangs on the tracepoint for every task, so `-p` is enforced here.
  public static func instructions(
    for fetch: TracepointFetch, outputMapFD: Int32, scratchMapFD: Int32, onlyProcess: Int32? = nil
  ) -> [BPFInstruction] {
    var asm = BPFAssembler()
    let done = asm.newLabel()

    asm.emit(.mov64(.r6, .r1))
    if let pid = onlyProcess {
      // pid_tgid is tgid << 32 | tid: the upper half names the process.
      asm.emit(.call(.getCurrentPidTgid))
      asm.emit(.rsh64(.r0, 32))
      asm.jump(.notEqual, .r0, pid, to: done)
    }
    // buffer = bpf_map_lookup_elem(scratch, &(u32){0})
    asm.lookupFirstElement(ofMapFD: scratchMapFD)
    asm.jump(.equal, .r0, 0, to: done)
    asm.emit(.mov64(.r7, .r0))

    // The record: direct ctx loads below offset 8 are refused, so copy it with a helper.
    asm.emit(.mov64(.r1, .r7))
    asm.emit(.mov64(.r2, Int32(fetch.recordSize)))
    asm.emit(.mov64(.r3, .r6))
    asm.emit(.call(.probeReadKernel))
    // Bytes 0..<8 of ctx hold a pt_regs pointer at this point (perf_trace_run_bpf_submit);
    // put back the common fields instead of leaking a kernel address to user space.
    asm.emit(.st(.word, .r7, 0, Int32(fetch.commonType)))
    asm.emit(.call(.getCurrentPidTgid))
    asm.emit(.stx(.word, .r7, 4, .r0))  // low 32 bits: the thread id, as common_pid

    for (item, slot) in zip(fetch.items, fetch.itemOffsets) {
      switch item {
      case .string(let pointerOffset, let maxLength, let userMemory):
        emitRead(
          &asm, pointerOffset: pointerOffset, slot: slot, size: maxLength,
          helper: userMemory ? .probeReadUserStr : .probeReadKernelStr)
      case .bytes(let pointerOffset, let length, let userMemory):
        emitRead(
          &asm, pointerOffset: pointerOffset, slot: slot, size: length,
          helper: userMemory ? .probeReadUser : .probeReadKernel)
      case .stringArray(let pointerOffset, let maxCount, let maxLength):
        emitStringArray(&asm, pointerOffset: pointerOffset, slot: slot, maxCount: maxCount, maxLength: maxLength)
      }
    }

    // bpf_perf_event_output(ctx, output, BPF_F_CURRENT_CPU, buffer, sampleSize)
    asm.emit(.mov64(.r1, .r6))
    asm.emit(BPFInstruction.ldMapFD(.r2, outputMapFD))
    // mov32 zero-extends: the flags must be exactly 0xffffffff (a sign-extended -1 is EINVAL).
    asm.emit(.mov32(.r3, currentCPU))
    asm.emit(.mov64(.r4, .r7))
    asm.emit(.mov64(.r5, Int32(fetch.sampleSize)))
    asm.emit(.call(.perfEventOutput))

    asm.place(done)
    asm.emit(.mov64(.r0, BPFProgram.tracepointPassesOn))
    asm.emit(.exit)
    return asm.finish()
  }

  /// helper(buffer + slot, size, *(u64 *)(buffer + pointerOffset)).
  private static func emitRead(
    _ asm: inout BPFAssembler, pointerOffset: Int, slot: Int, size: Int, helper: BPFHelper
  ) {
    asm.emit(.ldx(.double, .r3, .r7, Int16(pointerOffset)))
    asm.emit(.mov64(.r1, .r7))
    asm.emit(.add64(.r1, Int32(slot)))
    asm.emit(.mov64(.r2, Int32(size)))
    asm.emit(.call(helper))
  }

  /// Reads up to maxCount strings of a NULL-terminated user pointer array, unrolled (the
  /// verifier then sees straight-line code with constant offsets), and stores the count.
  private static func emitStringArray(
    _ asm: inout BPFAssembler, pointerOffset: Int, slot: Int, maxCount: Int, maxLength: Int
  ) {
    let end = asm.newLabel()
    asm.emit(.ldx(.double, .r8, .r7, Int16(pointerOffset)))
    asm.emit(.mov64(.r9, 0))
    for index in 0..<maxCount {
      // element = argv[index], read onto the stack (r10 - 16)
      asm.emit(.mov64(.r1, .r10))
      asm.emit(.add64(.r1, -16))
      asm.emit(.mov64(.r2, 8))
      asm.emit(.mov64(.r3, .r8))
      asm.emit(.add64(.r3, Int32(index * 8)))
      asm.emit(.call(.probeReadUser))
      asm.jump(.notEqual, .r0, 0, to: end)
      asm.emit(.ldx(.double, .r3, .r10, -16))
      asm.jump(.equal, .r3, 0, to: end)
      asm.emit(.mov64(.r1, .r7))
      asm.emit(.add64(.r1, Int32(slot + 8 + index * maxLength)))
      asm.emit(.mov64(.r2, Int32(maxLength)))
      asm.emit(.call(.probeReadUserStr))
      asm.emit(.add64(.r9, 1))
    }
    asm.place(end)
    asm.emit(.stx(.word, .r7, Int16(slot), .r9))
    asm.emit(.st(.word, .r7, Int16(slot + 4), 0))
  }
}
