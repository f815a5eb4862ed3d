import Testing
@testable import ScryLanguage

/// `watchpoint:` specs as bpftrace 0.17 reads them, without a kernel.
@Suite struct WatchpointSpecTests {
  /// A kernel without hardware breakpoints.
  struct BreakpointlessCatalog: ProbeCatalog {
    func tracepoints(category: String, name: String) -> [(category: String, name: String)] { [] }
    func record(category: String, name: String) -> RecordType? { nil }
    func missingSupport(for kind: ProbeKind) -> String? { kind == .watchpoint ? "no hardware breakpoints here" : nil }
  }

  func check(_ text: String, catalog: any ProbeCatalog = EmptyProbeCatalog(), traced: String? = nil) -> CheckedProgram {
    Frontend.compile(SourceFile(name: "test.trace", text: text), catalog: catalog, options: CheckOptions(tracedBinary: traced))
  }

  @Test func anAddressIsNamedAsBpftraceNamesIt() throws {
    let checked = check("watchpoint:0x10000000:8:wr { exit(); }", traced: "./prog")
    #expect(!checked.diagnostics.hasErrors)
    let probe = try #require(checked.probes.first?.first)
    #expect(probe.name == "watchpoint:./prog:268435456:8:rw")
    guard case .breakpoint(let watch) = probe.target else { Issue.record("not a breakpoint: \(probe.target)"); return }
    #expect(watch.site == .address(0x1000_0000) && watch.length == 8 && watch.mode == "rw" && watch.watchesProcess)
    // Without -p or -c the address is the kernel's, and the name has no binary.
    let kernel = check("w:0xffffffff81000000:4:w { exit(); }")
    #expect(kernel.probes.first?.first?.name == "watchpoint:18446744071578845184:4:w")
  }

  @Test func aKernelWithoutBreakpointsIsSaidAtTheProbe() {
    let checked = check("watchpoint:0x1000:4:w { exit(); }", catalog: BreakpointlessCatalog())
    #expect(checked.diagnostics.map(\.message) == ["watchpoint:0x1000:4:w: no hardware breakpoints here"])
  }

  @Test func unwatchTakesOneInteger() {
    #expect(!check("BEGIN { unwatch(0x1000); exit(); }").diagnostics.hasErrors)
    #expect(check(#"BEGIN { unwatch("x"); }"#).diagnostics.hasErrors)
    #expect(check("BEGIN { unwatch(); }").diagnostics.hasErrors)
  }
}
