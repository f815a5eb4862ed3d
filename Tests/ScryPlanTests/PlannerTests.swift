import Testing
import ScryLanguage
@testable import ScryPlan

/// Two recorded tracepoints, enough for planning decisions.
struct PlanCatalog: ProbeCatalog {
  static let getppid = RecordType(
    name: "syscalls:sys_enter_getppid",
    fields: [RecordField(name: "__syscall_nr", cType: "int", type: .integer(.int32), offset: 8, size: 4)], size: 16)
  static let openat = RecordType(
    name: "syscalls:sys_enter_openat",
    fields: [
      RecordField(name: "__syscall_nr", cType: "int", type: .integer(.int32), offset: 8, size: 4),
      RecordField(name: "dfd", cType: "int", type: .int64, offset: 16, size: 8),
      RecordField(name: "flags", cType: "int", type: .int64, offset: 32, size: 8),
    ], size: 48)
  static let sched = RecordType(
    name: "sched:sched_switch",
    fields: [
      RecordField(name: "prev_comm", cType: "char", type: .string(capacity: 16), offset: 8, size: 16),
      RecordField(name: "prev_pid", cType: "pid_t", type: .integer(.int32), offset: 24, size: 4),
    ], size: 64)

  func tracepoints(category: String, name: String) -> [(category: String, name: String)] {
    let all = [("syscalls", "sys_enter_getppid"), ("syscalls", "sys_enter_openat"), ("sched", "sched_switch")]
    return all.filter { (category == "*" || $0.0 == category) && (name == "*" || $0.1 == name || (name.hasSuffix("*") && $0.1.hasPrefix(name.dropLast()))) }
  }

  func record(category: String, name: String) -> RecordType? {
    switch name {
    case "sys_enter_getppid": return Self.getppid
    case "sys_enter_openat": return Self.openat
    case "sched_switch": return Self.sched
    default: return nil
    }
  }

  /// One recorded binary, `/bin/app`, with three functions.
  func userFunctions(binary: String, pattern: String) -> UserFunctionLookup {
    guard binary == "/bin/app" else { return .failed(message: "cannot find binary or library '\(binary)'", hint: nil) }
    let all = [UserFunction(name: "main", fileOffset: 0x1040), UserFunction(name: "target", fileOffset: 0x1139),
               UserFunction(name: "target_helper", fileOffset: 0x1200)]
    let found = all.filter { $0.name == pattern || (pattern.hasSuffix("*") && $0.name.hasPrefix(pattern.dropLast())) }
    return found.isEmpty ? .failed(message: "no function matching '\(pattern)' in /bin/app", hint: nil) : .found(path: binary, functions: found)
  }

  /// USDT probes of `/bin/app` as its notes give them (operands from gcc builds): one with a
  /// semaphore, one at two addresses.
  func staticProbes(binary: String?, provider: String, name: String) -> StaticProbeLookup {
    guard binary == "/bin/app" else { return .failed(message: "cannot find binary or library '\(binary ?? "")'", hint: nil) }
    func probe(_ name: String, _ offset: UInt64, _ semaphore: UInt64, _ arguments: String) -> UserStaticProbe {
      UserStaticProbe(
        path: "/bin/app", provider: "app", name: name, fileOffset: offset, semaphoreOffset: semaphore,
        arguments: StaticProbeArgument.parseList(arguments))
    }
    let all = [
      probe("ints", 0x1294, 0x302e, "-1@%sil 2@%di -4@%eax 8@%rdx"), probe("mixed", 0x12a0, 0, "-4@112(%rsp) 4@$5 8@%rcx -4@(%rax,%rdi,4)"),
      probe("twice", 0x12b0, 0, "-4@%ebx"), probe("twice", 0x12c0, 0, "-4@%r12d"),
    ]
    return .found(all.filter { $0.name == name || name == "*" })
  }
}

func plan(_ text: String) throws -> Plan {
  let checked = Frontend.compile(SourceFile(name: "t", text: text), catalog: PlanCatalog())
  try #require(!checked.diagnostics.hasErrors, "\(DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source))")
  return try Planner.plan(checked)
}

@Suite struct PlannerTests {
  /// END reads a counted map after its counters are folded in: reading it there (as SystemTap's
  /// printing of globals at exit does) keeps the kernel counter; reading it elsewhere does not.
  @Test func countedMapReadInEndStaysCounted() throws {
    let atEnd = try plan("tracepoint:syscalls:sys_enter_getppid { @c++ } END { printf(\"%d\\n\", @c); }")
    #expect(atEnd.attachments[0].counting != nil)
    let onTimer = try plan("tracepoint:syscalls:sys_enter_getppid { @c++ } interval:s:1 { printf(\"%d\\n\", @c); }")
    #expect(onTimer.attachments[0].counting == nil)
  }

  @Test func angleBlockCounterIsOneTracepointWithAStringKeyedMap() throws {
    let plan = try plan("tracepoint:sched:sched_switch < count[comm]++ >")
    #expect(plan.attachments.count == 1)
    #expect(plan.attachments[0].probe.name == "tracepoint:sched:sched_switch")
    #expect(plan.maps.map(\.name) == ["count"])
    #expect(plan.maps[0].keyTypes == [.comm])
    let text = PlanPrinter.render(plan)
    #expect(text.contains("count: key (string[16]) -> int64"), "\(text)")
  }

  @Test func keylessCountUsesTheKernelCounter() throws {
    let plan = try plan("tracepoint:syscalls:sys_enter_getppid { @c = count(); }")
    #expect(plan.attachments[0].counting != nil)
    #expect(plan.attachments[0].sampleFields.isEmpty)
  }

  @Test func countsPerStackInTheKernelWhenTheBlockOnlyCounts() throws {
    let counted = try plan("profile:hz:99 { @[kstack(3), ustack(perf), comm, tid] = count(); }")
    let parts = try #require(counted.attachments[0].counting?.key?.stacks)
    #expect(parts.count == 4)
    #expect(parts[0] == .stack(StackType(isKernel: true, depth: 3)))
    #expect(parts[2] == .comm && parts[3] == .task(.tid))
    #expect(PlanPrinter.render(counted).contains("counting per stack in the kernel (no ring): kstack(3), ustack(127), comm, tid"))
    // A key of the task alone is counted by the same program, with no stack map.
    let named = try plan("profile:hz:99 { @[comm] = count(); }")
    #expect(named.attachments[0].counting?.key?.stacks == [.comm])
    #expect(PlanPrinter.render(named).contains("counting per key in the kernel (no ring): comm taken at the event"))
    #expect(try plan("tracepoint:sched:sched_switch { @[pid] = count(); }").attachments[0].counting?.key?.stacks == [.task(.pid)])
    // Anything else in the block, or a key the kernel does not take: sampled.
    for script in [
      "profile:hz:99 { $x = 1; @[kstack] = count(); }", "profile:hz:99 /pid == 1/ { @[kstack] = count(); }",
      "profile:hz:99 { @[kstack, cpu] = count(); }", "profile:hz:99 { @[comm, cpu] = count(); }",
      // Syscalls share their carrier through the capture program.
      "tracepoint:syscalls:sys_enter_getppid { @[comm] = count(); }", "tracepoint:syscalls:sys_enter_getppid { @[pid] = count(); }",
      "profile:hz:99 { @[kstack] = count(); } interval:s:1 { @l = len(@); }",
      // One element printed is read like any other use (the whole map printed is not: it is folded first).
      "profile:hz:99 { @[kstack] = count(); } profile:hz:98 { print(@[kstack]); }",
    ] {
      let sampled = try plan(script)
      #expect(sampled.attachments[0].counting?.key?.stacks == nil, "\(script)")
    }
  }

  @Test func countKeyedByProbeCountsEveryMatch() throws {
    let plan = try plan("tracepoint:syscalls:sys_enter_* { @[probe] = count(); }")
    #expect(plan.attachments.count == 2)
    #expect(plan.attachments.allSatisfy { $0.counting?.isKeyedByProbe == true })
  }

  @Test func readingTheEventNeedsSamples() throws {
    let plan = try plan("tracepoint:syscalls:sys_enter_getppid { printf(\"%d\\n\", pid); }")
    #expect(plan.attachments[0].counting == nil)
    // The task comes from the record's common_pid: RAW alone is cheaper than RAW or TID plus another field.
    #expect(plan.attachments[0].sampleFields == [.raw, .time])
  }

  @Test func systemWideTracepointsCanComeThroughTheBPFRing() throws {
    // The program takes the task from a helper: no record copy when no field is read.
    let printing = try plan("tracepoint:syscalls:sys_enter_getppid { printf(\"%d\\n\", pid); }")
    #expect(printing.attachments[0].ringDelivery == RingDelivery(sampleFields: [.tid, .time], recordSize: 0))
    // comm is copied at the event; a field read copies the record.
    let naming = try plan("tracepoint:syscalls:sys_enter_openat { @[comm, args.flags] = count(); }")
    let delivery = try #require(naming.attachments[0].ringDelivery)
    #expect(delivery.sampleFields == [.raw])
    #expect(delivery.readsComm)
    #expect(delivery.recordSize >= 40)
  }

  @Test func filteredPerTaskOrCountedTracepointsStayWithPerf() throws {
    for text in [
      "tracepoint:syscalls:sys_enter_openat /args.dfd == 3/ { @[comm] = count(); }",
      "tracepoint:sched:sched_switch /pid == cpid/ { @[tid] = count(); }",
      "tracepoint:syscalls:sys_enter_getppid { @c = count(); }",
      "software:page-faults:100 /pid == cpid/ { @[pid] = count(); }",
    ] {
      #expect(try plan(text).attachments[0].ringDelivery == nil, "\(text)")
    }
    // A per-task syscalls tracepoint keeps its record: a syscall carrier with a process test may run it.
    #expect(try plan("tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @[tid] = count(); }").attachments[0].ringDelivery != nil)
  }

  @Test func softwareAndTimerEventsAreCapturedIntoTheRing() throws {
    // A perf_event program takes the task from helpers and its name at the event.
    let faults = try plan("software:page-faults:100 { @[pid] = count(); @n = count(); }")
    #expect(faults.attachments[0].ringDelivery == RingDelivery(sampleFields: [.tid], recordSize: 0))
    let profile = try plan("profile:hz:99 { @[comm] = count(); @n = count(); }")
    #expect(profile.attachments[0].ringDelivery == RingDelivery(sampleFields: [], recordSize: 0, readsComm: true))
    // The instruction pointer only perf gives: the perf ring stays.
    #expect(try plan("profile:hz:99 { @[func] = count(); }").attachments[0].ringDelivery == nil)
  }

  @Test func eventsWithoutARecordTakeTheTaskFromTheSample() throws {
    let plan = try plan("software:page-faults:100 { @[pid] = count(); }")
    #expect(plan.attachments[0].sampleFields == [.tid])
  }

  @Test func predicateOnFieldsIsPushedToTheKernel() throws {
    let plan = try plan("tracepoint:syscalls:sys_enter_openat /args.dfd == 3 && args.flags & 64/ { @ = count(); }")
    #expect(plan.attachments[0].kernelFilter == "(dfd == 3) && (flags & 64)")
    #expect(plan.attachments[0].kernelFilterIsWholePredicate)
  }

  @Test func onlyExpressibleConjunctsArePushed() throws {
    let plan = try plan("tracepoint:syscalls:sys_enter_openat /args.dfd > 2 && comm == \"bash\"/ { @[comm] = count(); }")
    #expect(plan.attachments[0].kernelFilter == "dfd > 2")
    #expect(!plan.attachments[0].kernelFilterIsWholePredicate)
  }

  @Test func pidEqualsCpidAttachesPerTask() throws {
    let plan = try plan("tracepoint:syscalls:sys_enter_getppid /pid == cpid/ { @c = count(); }")
    #expect(plan.attachments[0].scope == .tracedProcess)
  }

  @Test func specialProbesHaveNoEventFields() throws {
    let plan = try plan("BEGIN { @x = 1; } interval:s:1 { exit(); } END { print(@x); }")
    #expect(plan.attachments.map(\.probe.kind) == [.begin, .interval, .end])
    #expect(!plan.hasEventProbes)
  }
}
