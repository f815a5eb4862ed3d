import Testing
@testable import ScryLanguage

/// `++`/`--` on a pointer variable, as C and bpftrace type them.
@Suite struct PointerUpdateTests {
  @Test func anUpdatedPointerIsStillAPointer() {
    let checked = compile("struct C { uint32_t a; uint64_t b; } BEGIN { $c = (struct C *)1000; $x = ($c++)->b; $y = (--$c)->a; exit(); }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
  }
}
