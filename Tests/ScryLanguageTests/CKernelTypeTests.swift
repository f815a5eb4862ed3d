import Testing

@testable import ScryLanguage

/// A kernel with two types, as BTF would give them: what the script's declarations may use undeclared.
private struct KernelTypesCatalog: ProbeCatalog {
  static let loadWeight = RecordType(
    name: "load_weight",
    fields: [
      RecordField(name: "weight", cType: "long unsigned int", type: .uint64, offset: 0, size: 8),
      RecordField(name: "inv_weight", cType: "u32", type: .integer(.uint32), offset: 8, size: 4),
    ], size: 16)
  var hasKernelTypes: Bool { true }
  func tracepoints(category: String, name: String) -> [(category: String, name: String)] { [] }
  func record(category: String, name: String) -> RecordType? { nil }
  func kernelRecord(named name: String) -> RecordType? { name == "struct load_weight" ? Self.loadWeight : nil }
  func kernelTypedef(named name: String) -> ScryType? { name == "sector_t" ? .uint64 : nil }
}

@Suite struct CKernelTypeTests {
  private func declare(_ text: String, kernel: (any ProbeCatalog)?) -> (CDeclarations, [Diagnostic]) {
    let source = SourceFile(name: "test.trace", text: text)
    let (program, _) = Parser.parse(source)
    return CDeclarationParser.parse(source, spans: program.declarations, systemDirectories: [], kernel: kernel, readFile: { _ in nil })
  }

  @Test func undeclaredKernelTypesAreLaidOutInPlace() throws {
    let script = """
      #ifndef BPFTRACE_HAVE_BTF
      #include <linux/sched.h>
      #endif
      struct partial { char c; struct load_weight load; sector_t sector; struct load_weight *next; char tail; };
      BEGIN { }
      """
    let (declarations, diagnostics) = declare(script, kernel: KernelTypesCatalog())
    #expect(diagnostics.isEmpty, "\(diagnostics)")
    let record = try #require(declarations.records["struct partial"])
    #expect(record.fields.map(\.offset) == [0, 8, 24, 32, 40])
    #expect(record.size == 48)
    #expect(record.field(named: "load")?.type == .record(KernelTypesCatalog.loadWeight))
    #expect(record.field(named: "next")?.type == .pointer(.structReference("struct load_weight")))
  }

  @Test func theScriptsOwnDefinitionWins() throws {
    let (declarations, diagnostics) = declare(
      "struct load_weight { char only; };\nstruct s { struct load_weight w; char after; };\nBEGIN { }", kernel: KernelTypesCatalog())
    #expect(diagnostics.isEmpty, "\(diagnostics)")
    #expect(declarations.records["struct s"]?.field(named: "after")?.offset == 1)
  }

  /// bpftrace 0.17's btf.redefine_btf_type_missing_def: a script that defines a kernel struct
  /// again conflicts with BTF, so no kernel type fills in after it and a by-value member of an
  /// undefined struct is clang's incomplete-type error.
  @Test func redefiningAKernelTypeLeavesTheOthersIncomplete() {
    let (_, diagnostics) = declare(
      "struct load_weight { char only; };\nstruct s { sector_t n; };\nstruct t { struct load_weight w; };\nBEGIN { }",
      kernel: KernelTypesCatalog())
    #expect(diagnostics.map(\.message) == ["unknown type name 'sector_t'"])
    let (_, member) = declare("struct load_weight { struct other o; };\nBEGIN { }", kernel: KernelTypesCatalog())
    #expect(member.map(\.message) == ["field 'o' has incomplete type 'struct other'"])
    #expect(member.first?.hint?.contains("the script defines 'struct load_weight' again") == true, "\(member)")
  }

  @Test func withoutKernelTypesTheyAreIncompleteAndHeadersAreRead() {
    let (_, diagnostics) = declare(
      "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/sched.h>\n#endif\nstruct s { struct load_weight w; };\nBEGIN { }", kernel: nil)
    #expect(diagnostics.map(\.message) == ["'linux/sched.h' file not found", "field 'w' has incomplete type 'struct load_weight'"])
  }
}
