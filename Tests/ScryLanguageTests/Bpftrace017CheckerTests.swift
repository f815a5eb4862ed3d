import Testing
@testable import ScryLanguage

/// Scripts bpftrace 0.17 accepts or refuses, checked as it does.
@Suite struct Bpftrace017CheckerTests {
  @Test func mapReadBeforeItsAssignmentTakesTheAssignedType() {
    let checked = compile("BEGIN { @a = @b; @b = 1; @t = (@u, 1); @u = 3; exit(); }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
    #expect(checked.map(named: "@a")?.valueType == .int64)
    #expect(checked.map(named: "@t")?.valueType == .tuple([.int64, .int64]))
  }

  @Test func selfIncrementIsAMapsOnlyAssignment() {
    let checked = compile("BEGIN { @n = @n + 1; @k[1] = @k[1] * 2; @c = @d + 1; @d = @c; exit(); }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
    #expect(checked.map(named: "@n")?.valueType == .int64)
    #expect(checked.map(named: "@k")?.keyTypes == [.int64])
    #expect(checked.map(named: "@d")?.valueType == .int64)
  }

  @Test func aMapNeverAssignedIsStillReported() {
    let checked = compile("BEGIN { @q = @q; @r = @s + 1; }")
    let text = rendered(checked)
    #expect(text.contains("test.trace:1:14: error: unknown map '@q': it is read but never assigned"), "\(text)")
    #expect(text.contains("unknown map '@s'"), "\(text)")
  }

  @Test(arguments: ["_raw_spin_lock", "queued_spin_lock_slowpath"])
  func bannedReturnProbesAreRefusedAsBpftraceRefusesThem(_ function: String) {
    let checked = compile("kretprobe:\(function) { exit(); }")
    #expect(rendered(checked).contains(
      "test.trace:1:1: error: kretprobe:\(function) can't be used as it might lock up your system."), "\(rendered(checked))")
  }
}
