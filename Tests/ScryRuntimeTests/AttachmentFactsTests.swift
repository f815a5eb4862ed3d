import ScryKernel
import ScryLanguage
import ScryPlan
import Testing

@testable import ScryRuntime

@Suite("Attachment facts for --plan")
struct AttachmentFactsTests {
  private func options(bpf: Bool = true, pid: Int32? = nil) -> SessionOptions {
    var options = SessionOptions()
    options.allowsBPF = bpf
    options.targetPid = pid
    return options
  }

  @Test func pointerStringsAreReadByTheCaptureProgramUnlessRefused() throws {
    let plan = try recordedPlan(#"tracepoint:test:open { printf("%s\n", str(args.filename)); }"#)
    let fetch = try #require(plan.attachments[0].pointerFetch)
    let fact = try #require(AttachmentFacts.describe(plan, options: options())[0])
    guard case .bpfRing(let program) = fact.path else {
      Issue.record("path: \(fact.path)")
      return
    }
    // The capture program reads the string into the slot the fetch planned, inside RAW.
    #expect(program.readsInRecordAt == fetch.itemOffsets.first)
    #expect(program.reads.reads.count == 1)
    #expect(fact.fallback == .perfRing)
    #expect(fact.fetchedBy?.hasPrefix("the capture program, at the event (1 reads)") == true, "\(fact.fetchedBy ?? "")")
    #expect(fact.fetchedBy?.contains("if the kernel refuses BPF, process_vm_readv") == true)
    #expect(fact.deliveredBy?.contains("reads(1)") == true, "\(fact.deliveredBy ?? "")")
  }

  @Test func withAProcessTheFetchProgramFiltersItAndSaysSo() throws {
    let plan = try recordedPlan(#"tracepoint:test:open { printf("%s\n", str(args.filename)); }"#)
    let fact = try #require(AttachmentFacts.describe(plan, options: options(pid: 1))[0])
    guard case .bpfFetch(let program, filtersProcess: true) = fact.path else {
      Issue.record("path: \(fact.path)")
      return
    }
    let filtered = TracepointFetchProgram.instructions(for: program, outputMapFD: 0, scratchMapFD: 0, onlyProcess: 1).count
    #expect(fact.fetchedBy?.hasPrefix("a BPF tracepoint program of \(filtered) instructions") == true)
  }

  @Test func withoutBPFPointerDataIsReadFromTheProcess() throws {
    let plan = try recordedPlan(#"tracepoint:test:open { printf("%s\n", str(args.filename)); }"#)
    let fact = try #require(AttachmentFacts.describe(plan, options: options(bpf: false))[0])
    #expect(fact.path == .perfRing && fact.fallback == .perfRing)
    #expect(fact.fetchedBy == AttachmentFacts.readInProcess + " (BPF is not allowed here; best-effort)")
  }

  @Test func systemWideTracepointsGoThroughTheBPFRing() throws {
    let plan = try recordedPlan(#"tracepoint:test:tick { @[comm, args.value] = count(); @t = max(nsecs); }"#)
    let delivery = try #require(plan.attachments[0].ringDelivery)
    let fact = try #require(AttachmentFacts.describe(plan, options: options())[0])
    guard case .bpfRing(let program) = fact.path else {
      Issue.record("path: \(fact.path)")
      return
    }
    #expect(program.recordSize == delivery.recordSize && program.includesComm == delivery.readsComm)
    #expect(fact.fallback == .perfRing)
    let count = program.instructions(ringFD: 0, lostMapFD: 0).count
    #expect(fact.deliveredBy?.hasPrefix("a BPF tracepoint program of \(count) instructions writing \(program.sampleSize)-byte records") == true, "\(fact.deliveredBy ?? "")")
    // Followed processes and --no-bpf take perf, and say nothing of a BPF ring.
    for other in [options(pid: 1), options(bpf: false)] {
      let perf = try #require(AttachmentFacts.describe(plan, options: other)[0])
      #expect(perf.path == .perfRing && perf.deliveredBy == nil)
    }
  }

  @Test func tracepointCountsTakeARawTracepointProgramElsePerfCounters() throws {
    let plan = try recordedPlan("tracepoint:test:tick { @ = count(); } BEGIN { }")
    let facts = AttachmentFacts.describe(plan, options: options())
    #expect(facts.count == 1, "BEGIN has no event context")
    let fact = try #require(facts.values.first)
    #expect(fact.path == .bpfCounter && fact.fallback == .perfCounter)
    #expect(fact.deliveredBy?.contains("raw_tracepoint program linked to the kernel tracepoint 'tick'") == true)
    // Followed tasks and --no-bpf count with perf counters.
    for other in [options(pid: 1), options(bpf: false)] {
      let perf = try #require(AttachmentFacts.describe(plan, options: other)[0])
      #expect(perf.path == .perfCounter && perf.deliveredBy == nil)
    }
  }

  /// Blocks on one software event attach last block first: the kernel calls the newest first.
  @Test func softwareBlocksAttachInReverse() throws {
    let plan = try recordedPlan(
      "software:faults:1 { @b = count(); } software:faults:1 { @c = count(); } interval:s:1 { @d = 1; } software:faults:1 { @e = count(); }")  // timers attach apart
    let facts = AttachmentFacts.describe(plan, options: options())
    let order = EventSources.attachOrder(plan, facts: facts, usesBPF: true)
    let names = order.map { plan.attachments[$0].probe.name + "#\(plan.attachments[$0].blockIndex)" }
    #expect(names == ["software:faults:1#3", "software:faults:1#1", "software:faults:1#0"], "\(names)")
  }
}
