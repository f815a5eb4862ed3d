import Testing
import ScryLanguage
@testable import ScryPlan

/// The tracefs definition lines of uprobes and kprobes, and the fetch arguments that carry what
/// their blocks read. Kprobes are planned (and tested) here even on kernels that lack them.
@Suite struct DynamicProbeTests {
  func definitions(_ text: String) throws -> [String] {
    try plan(text).attachments.compactMap { $0.dynamicProbe?.definition(group: "scry_42") }
  }

  @Test func kprobeDefinitionLines() throws {
    #expect(try definitions("kprobe:do_nanosleep { @[comm] = count(); }") == ["p:scry_42/p0_do_nanosleep do_nanosleep"])
    #expect(try definitions("kprobe:vfs_read+16 { printf(\"%d\\n\", arg2); }") == ["p:scry_42/p0_vfs_read vfs_read+16 a0=%dx:u64"])
    #expect(try definitions("kretprobe:vfs_read { @ = hist(retval); }") == ["r:scry_42/r0_vfs_read vfs_read a0=$retval:u64"])
    #expect(
      try definitions("kprobe:do_sys_openat2 { printf(\"%s\\n\", str(arg1)); }")
        == ["p:scry_42/p0_do_sys_openat2 do_sys_openat2 a0=+0(%si):string"])
  }

  @Test func uprobeDefinitionLinesUseFileOffsets() throws {
    #expect(try definitions("uprobe:/bin/app:target { @c = count(); }") == ["p:scry_42/p0_target /bin/app:0x1139"])
    #expect(try definitions("uprobe:/bin/app:target+4 { @c = count(); }") == ["p:scry_42/p0_target /bin/app:0x113d"])
    #expect(
      try definitions("uretprobe:/bin/app:target { printf(\"%s\\n\", str(retval)); }")
        == ["r:scry_42/r0_target /bin/app:0x1139 a0=+0($retval):ustring"])
    // A wildcard makes one event per function, each with its own name.
    #expect(
      try definitions("u:/bin/app:target* { @[probe] = count(); }")
        == ["p:scry_42/p0_target /bin/app:0x1139", "p:scry_42/p1_target_helper /bin/app:0x1200"])
  }

  /// A USDT probe is a uprobe at its note's address; its semaphore is the reference counter, and
  /// each argument a fetch argument at the note's size and sign.
  @Test func usdtDefinitionLinesCarryTheSemaphoreAndTypedArguments() throws {
    #expect(
      try definitions("usdt:/bin/app:app:ints { printf(\"%d %d %d %d\\n\", arg0, arg1, arg2, arg3); }")
        == ["p:scry_42/p0_app_ints /bin/app:0x1294(0x302e) a0=%si:s8 a1=%di:u16 a2=%ax:s32 a3=%dx:u64"])
    #expect(
      try definitions("usdt:/bin/app:mixed { printf(\"%d %d %s\\n\", arg0, arg1, str(arg2)); }")
        == ["p:scry_42/p0_app_mixed /bin/app:0x12a0 a0=+112(%sp):s32 a1=\\5:u32 a2=+0(%cx):ustring"])
    // One name at two addresses: two events, each with its own registers.
    #expect(
      try definitions("U:/bin/app:app:twice { @[arg0] = count(); }")
        == ["p:scry_42/p0_app_twice /bin/app:0x12b0 a0=%bx:s32", "p:scry_42/p1_app_twice /bin/app:0x12c0 a0=%r12:s32"])
    // An indexed address only the capture program computes: no tracefs syntax for it.
    let plan = try plan("usdt:/bin/app:mixed { @ = sum(arg3); }")
    let capture = try #require(plan.attachments[0].dynamicProbe?.capture)
    #expect(capture.fields.map(\.value) == [.read(.indexed(base: "ax", index: "di", scale: 4), offset: 0, byteCount: 4, isSigned: true)])
    #expect(plan.attachments[0].readsMemoryOnlyAtTheEvent)
  }

  @Test func argumentsAndMemoryBecomeFetchArguments() throws {
    let plan = try plan(
      "uprobe:/bin/app:target { printf(\"%d %d %s %d %d\\n\", arg0, arg7, str(arg1 + 8), *(int16 *)(arg2 - 4), *(uint32 *)(*(uint64 *)arg3 + 16)); }")
    let dynamic = try #require(plan.attachments[0].dynamicProbe)
    #expect(
      dynamic.fetchArguments == [
        "a0=%di:u64", "a1=$stack2:u64", "a2=+8(%si):ustring", "a3=-4(%dx):s16", "a4=+16(+0(%cx)):u32",
      ])
    // Laid out after the common fields and __probe_ip: u64, u64, data_loc (4), s16, u32; the
    // action reads each from the record.
    let action = IRPrinter(maps: plan.maps).render(plan.actions[0])
    for read in ["recordu64+16", "recordu64+24", "record.data_loc+32", "records16+36", "recordu32+38"] {
      #expect(action.contains(read), "\(action)")
    }
    #expect(plan.attachments[0].sampleFields.contains(.raw))
  }

  @Test func valuesReadTwiceAreFetchedOnce() throws {
    let plan = try plan("uprobe:/bin/app:target /arg0 > 3/ { @[arg0] = count(); @s[str(arg1)] = sum(arg0); }")
    #expect(plan.attachments[0].dynamicProbe?.fetchArguments == ["a0=%di:u64", "a1=+0(%si):ustring"])
  }

  @Test func unknownFunctionIsALocatedError() throws {
    let checked = Frontend.compile(SourceFile(name: "t", text: "uprobe:/bin/app:nope { }"), catalog: PlanCatalog())
    #expect(checked.diagnostics.hasErrors)
    #expect(checked.diagnostics.first?.message.contains("no function matching 'nope'") ?? false)
  }

  @Test func removalLineNamesTheGroup() {
    let probe = DynamicProbe(
      isKernel: false, isReturn: false, name: "p0_f", location: "/bin/app:0x10",
      capture: ProbeCapture(isKernel: false, fields: [], firstOffset: 16, fixedSize: 16))
    #expect(probe.removal(group: "scry_7") == "-:scry_7/p0_f")
    #expect(probe.controlFile == "uprobe_events")
  }
}
