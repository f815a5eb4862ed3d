import Testing
@testable import ScryLanguage

/// `kprobe:MODULE:FUNCTION` and kprobes this kernel cannot have, as bpftrace 0.17 treats them.
@Suite struct KprobeSpecTests {
  /// The recorded catalog on a kernel built without kprobes.
  struct KprobelessCatalog: ProbeCatalog {
    let recorded = RecordedCatalog()
    func tracepoints(category: String, name: String) -> [(category: String, name: String)] {
      recorded.tracepoints(category: category, name: name)
    }
    func record(category: String, name: String) -> RecordType? { recorded.record(category: category, name: name) }
    func kernelModuleExists(_ name: String) -> Bool? { recorded.kernelModuleExists(name) }
    func missingSupport(for kind: ProbeKind) -> String? { kind == .kprobe || kind == .kretprobe ? "no kprobes here" : nil }
  }

  func check(_ text: String, catalog: any ProbeCatalog = RecordedCatalog()) -> CheckedProgram {
    Frontend.compile(SourceFile(name: "test.trace", text: text), catalog: catalog, options: CheckOptions())
  }

  @Test(arguments: ["kprobe", "kretprobe"])
  func aFirstPartThatIsNoModuleIsBpftrace017sError(_ kind: String) {
    let checked = check("\(kind):syscalls:sys_exit_getppid { exit(); }")
    let text = DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source)
    #expect(text.contains("test.trace:1:1: error: \(kind) probe type requires 1 argument"), "\(text)")
    #expect(text.contains("did you mean 'tracepoint:syscalls:sys_exit_getppid'?"), "\(text)")
  }

  @Test func aLoadedModuleOrVmlinuxIsTaken() {
    for spec in ["kprobe:ext4:ext4_file_open", "kretprobe:vmlinux:vfs_read", "kprobe:vfs_read"] {
      let checked = check("\(spec) { exit(); }")
      #expect(!checked.diagnostics.hasErrors, "\(spec): \(DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source))")
    }
  }

  /// The module is checked first: without kprobes, a bad first part is still the shape error.
  @Test func theShapeErrorComesBeforeTheMissingKprobes() {
    let checked = check("kprobe:syscalls:sys_exit_getppid { exit(); }", catalog: KprobelessCatalog())
    #expect(checked.diagnostics.map(\.message) == ["kprobe probe type requires 1 argument"])
  }

  /// bpftrace 0.17 builds a block that reads `probe` once per function its spec matches; a kprobe
  /// that matches none is dropped, and the other blocks run.
  @Test func aBlockReadingProbeDropsAKprobeThatCannotBe() {
    let checked = check(#"kprobe:zzzzz { probe; printf("asdf\n") } BEGIN { exit() }"#, catalog: KprobelessCatalog())
    #expect(!checked.diagnostics.hasErrors)
    #expect(checked.diagnostics.map(\.message) == ["kprobe:zzzzz: no kprobes here, skipped"])
    #expect(checked.probes.map(\.count) == [0, 1])
  }

  @Test func withoutProbeTheKprobeIsStillAnError() {
    let checked = check(#"kprobe:zzzzz { printf("asdf\n") } BEGIN { exit() }"#, catalog: KprobelessCatalog())
    #expect(checked.diagnostics.hasErrors)
    #expect(checked.diagnostics.map(\.message) == ["kprobe:zzzzz: no kprobes here"])
  }

  /// Nothing left to attach is refused, as bpftrace's "No probes to attach".
  @Test func aScriptOfDroppedKprobesAloneIsRefused() {
    let checked = check(#"kprobe:zzzzz { printf("%s\n", probe) }"#, catalog: KprobelessCatalog())
    #expect(checked.diagnostics.contains { $0.message == "no probe of this script exists: nothing to attach" })
    #expect(checked.diagnostics.hasErrors)
  }
}
