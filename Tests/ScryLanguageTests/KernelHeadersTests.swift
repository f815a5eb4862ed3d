import Testing

@testable import ScryLanguage

/// Where the kernel's headers are looked for, as bpftrace 0.17 finds them, on made-up layouts.
@Suite struct KernelHeadersTests {
  static func directories(_ existing: Set<String>, environment: [String: String] = [:]) -> [String] {
    KernelHeaders.directories(release: "6.1.0-57-amd64", environment: { environment[$0] }, isDirectory: existing.contains)
  }

  @Test func debianSourceAndBuildInBpftracesOrder() {
    let modules = "/lib/modules/6.1.0-57-amd64"
    let found = Self.directories([modules + "/source", modules + "/build"])
    #expect(found == [
      modules + "/source/arch/x86/include", modules + "/build/arch/x86/include/generated", modules + "/source/include",
      modules + "/build/include", modules + "/source/arch/x86/include/uapi",
      modules + "/build/arch/x86/include/generated/uapi", modules + "/source/include/uapi",
      modules + "/build/include/generated/uapi",
    ])
  }

  @Test func oneOfSourceAndBuildStandsInForTheOther() {
    let build = "/lib/modules/6.1.0-57-amd64/build"
    let found = Self.directories([build])
    #expect(found.first == build + "/arch/x86/include" && found.contains(build + "/include") && found.count == 8)
    #expect(!found.contains { $0.contains("/source") })
  }

  @Test func theEnvironmentOverridesAndUnpackedHeadersAreTheLastResort() {
    let set = Self.directories([], environment: ["BPFTRACE_KERNEL_SOURCE": "/k/src", "BPFTRACE_KERNEL_BUILD": "/k/obj"])
    #expect(set.prefix(3) == ["/k/src/arch/x86/include", "/k/obj/arch/x86/include/generated", "/k/src/include"])
    let sourceOnly = Self.directories([], environment: ["BPFTRACE_KERNEL_SOURCE": "/k/src"])
    #expect(sourceOnly.allSatisfy { $0.hasPrefix("/k/src/") })
    let unpacked = "/usr/src/linux-headers-6.1.0-57-amd64"
    #expect(Self.directories([unpacked]).first == unpacked + "/arch/x86/include")
    #expect(Self.directories([]).isEmpty)
  }

  @Test func theKernelsHeadersShadowTheCLibrarys() throws {
    // The kernel's linux/sched.h has TASK_RUNNING; the C library's (UAPI) one does not.
    let headers = [
      "/k/include/linux/sched.h": "#define TASK_RUNNING 0x00000000\n",
      "/usr/include/linux/sched.h": "#define CLONE_VM 0x00000100\n",
    ]
    let source = SourceFile(name: "test.trace", text: "#include <linux/sched.h>\nBEGIN { }")
    let (program, _) = Parser.parse(source)
    let search = KernelHeaders.directories(release: "", environment: { $0 == "BPFTRACE_KERNEL_SOURCE" ? "/k" : nil }) + ["/usr/include"]
    let (declarations, diagnostics) = CDeclarationParser.parse(
      source, spans: program.declarations, systemDirectories: search, readFile: { headers[$0] })
    #expect(diagnostics.isEmpty, "\(diagnostics)")
    #expect(declarations.constants["TASK_RUNNING"] == 0 && declarations.constants["CLONE_VM"] == nil)
  }
}
