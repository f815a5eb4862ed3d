import Glibc
import Testing

@testable import ScryKernel

/// The DWARF reader on Tests/Fixtures/dwarf_target.c built by gcc: DWARF 5 (Debian's default)
/// and DWARF 4, which differ in forms (strx, line_strp, implicit_const against strp and data1),
/// a build without DWARF, one with compressed sections, and one whose DWARF is in a separate
/// debug file found by .gnu_debuglink.
@Suite("DWARF") struct DWARFTests {
  struct Builds {
    let directory: String
    let dwarf5: String
    let dwarf4: String
    let plain: String
    let compressed: String
    let stripped: String
  }

  static let directory: String? = try? ELFFixture.temporaryDirectory()

  static let builds: Result<Builds, BuildFailure> = {
    guard access("/usr/bin/gcc", X_OK) == 0, access("/usr/bin/objcopy", X_OK) == 0 else {
      return .failure(BuildFailure(why: "gcc or objcopy is missing"))
    }
    guard let directory = Self.directory else { return .failure(BuildFailure(why: "no temporary directory")) }
    // A static fixture has no teardown: remove the files when the test process exits.
    atexit { if let directory = DWARFTests.directory { ELFFixture.removeTree(directory) } }
    let source = String(#filePath.split(separator: "/").dropLast(2).joined(separator: "/")).prefixedBySlash
      + "/Fixtures/dwarf_target.c"
    let b = Builds(
      directory: directory, dwarf5: directory + "/dwarf5", dwarf4: directory + "/dwarf4", plain: directory + "/plain",
      compressed: directory + "/compressed", stripped: directory + "/stripped")
    let steps: [(String, [String])] = [
      ("/usr/bin/gcc", ["-g", "-O0", "-o", b.dwarf5, source]),
      ("/usr/bin/gcc", ["-gdwarf-4", "-O0", "-o", b.dwarf4, source]),
      ("/usr/bin/gcc", ["-O0", "-o", b.plain, source]),
      ("/usr/bin/gcc", ["-g", "-gz=zlib", "-O0", "-o", b.compressed, source]),
      ("/usr/bin/gcc", ["-g", "-O0", "-Wl,--build-id=none", "-o", b.stripped, source]),
      ("/usr/bin/objcopy", ["--only-keep-debug", b.stripped, b.stripped + ".debug"]),
      ("/usr/bin/objcopy", ["--strip-debug", "--add-gnu-debuglink=" + b.stripped + ".debug", b.stripped]),
    ]
    for (tool, arguments) in steps {
      let run = ELFFixture.run(tool, arguments)
      if run.status != 0 { return .failure(BuildFailure(why: "\(tool) \(arguments): \(run.text)")) }
    }
    return .success(b)
  }()

  struct BuildFailure: Error {
    let why: String
  }

  private func buildsOrSkip() throws -> Builds? {
    switch Self.builds {
    case .success(let builds): return builds
    case .failure(let failure):
      if KernelGate.isRequired { Issue.record("DWARF fixtures not built: \(failure.why)") } else { print("skipping: \(failure.why)") }
      return nil
    }
  }

  private func info(_ path: String) throws -> DWARFInfo {
    try #require(try ELFFile(path: path).debugInfo(), "no DWARF in \(path)")
  }

  @Test(arguments: ["dwarf5", "dwarf4"]) func parametersInOrderWithBpftracesSpelling(_ build: String) throws {
    guard let builds = try buildsOrSkip() else { return }
    let dwarf = try info(builds.directory + "/" + build)
    func listing(_ function: String) throws -> [String] {
      try #require(dwarf.parameters(of: function)).map { dwarf.typeName(dwarf.type(of: $0)) + " " + ($0.name ?? "?") }
    }
    #expect(try listing("scalars") == ["int n", "char c", "long unsigned int big", "counter_t count", "enum colour colour"])
    #expect(
      try listing("pointers") == [
        "int* p", "const char* text", "struct Sample* sample", "union Either* either", "void* opaque", "char** words",
      ])
    #expect(try listing("main") == ["int argc", "char** argv"])
    #expect(try listing("noparams") == [])
    #expect(dwarf.parameters(of: "absent") == nil)
  }

  @Test(arguments: ["dwarf5", "dwarf4"]) func structMembersWithOffsetsArraysAndBitfields(_ build: String) throws {
    guard let builds = try buildsOrSkip() else { return }
    let dwarf = try info(builds.directory + "/" + build)
    let sample = try #require(dwarf.record(named: "Sample"))
    #expect(sample.byteSize == 88)
    let members = dwarf.children(of: sample, tag: DWARFTag.member)
    #expect(members.map { $0.name ?? "" } == ["a", "name", "values", "inner", "next", "flag", "level", "colour", "grid"])
    #expect(members.prefix(5).map { $0.memberOffset } == [0, 4, 16, 32, 48])
    // Bitfields: DWARF 5 gives the bit offset from the struct's start; DWARF 4's
    // DW_AT_bit_offset (from the storage unit's high bit) is converted to it.
    #expect(members[5].bitSize == 1 && members[6].bitSize == 3)
    #expect(members[5].dataBitOffset == 448 && members[6].dataBitOffset == 449)
    let grid = try #require(dwarf.peeled(dwarf.type(of: members[8])))
    #expect(grid.tag == DWARFTag.arrayType && dwarf.arrayCounts(grid) == [2, 3])
    let name = try #require(dwarf.type(of: members[1]))
    #expect(dwarf.arrayCounts(name) == [10])
    #expect(dwarf.peeled(dwarf.type(of: name))?.encoding == DWARFEncoding.signedChar)
    #expect(dwarf.record(named: "Either", isUnion: true)?.byteSize == 8)
    #expect(dwarf.record(named: "Either") == nil)
  }

  @Test func typedefsAndQualifiersPeelToTheirType() throws {
    guard let builds = try buildsOrSkip() else { return }
    let dwarf = try info(builds.dwarf5)
    let parameters = try #require(dwarf.parameters(of: "scalars"))
    let count = try #require(dwarf.type(of: parameters[3]))
    #expect(count.tag == DWARFTag.typedef)
    let peeled = try #require(dwarf.peeled(count))
    #expect(peeled.tag == DWARFTag.baseType && peeled.byteSize == 8 && peeled.encoding == DWARFEncoding.unsigned)
    let text = try #require(dwarf.parameters(of: "pointers")?[1])
    let pointer = try #require(dwarf.type(of: text))
    let pointee = try #require(dwarf.type(of: pointer))
    #expect(pointee.tag == DWARFTag.constType)
    #expect(dwarf.peeled(pointee)?.name == "char")
  }

  @Test func aBinaryWithoutDWARFHasNone() throws {
    guard let builds = try buildsOrSkip() else { return }
    #expect(try ELFFile(path: builds.plain).debugInfo() == nil)
  }

  @Test func compressedSectionsAreRefusedWithAReason() throws {
    guard let builds = try buildsOrSkip() else { return }
    let elf = try ELFFile(path: builds.compressed)
    #expect {
      _ = try elf.debugInfo()
    } throws: { error in
      "\(error)".contains(".debug_info is compressed") || "\(error)".contains("is compressed")
    }
  }

  @Test func theSeparateDebugFileIsReadThroughItsDebuglink() throws {
    guard let builds = try buildsOrSkip() else { return }
    let elf = try ELFFile(path: builds.stripped)
    #expect(try elf.dwarfSections() == nil)
    let dwarf = try #require(try elf.debugInfo())
    #expect(dwarf.path.hasSuffix("/stripped.debug"))
    #expect(dwarf.parameters(of: "scalars")?.count == 5)
  }

  @Test func truncatedInfoIsAnErrorNotATrap() throws {
    guard let builds = try buildsOrSkip() else { return }
    var sections = try #require(try ELFFile(path: builds.dwarf5).dwarfSections())
    sections.info = Array(sections.info.prefix(sections.info.count / 2))
    #expect(throws: KernelError.self) { _ = try DWARFInfo(sections: sections, path: "half") }
    sections.info = [0xff, 0xff]
    #expect(throws: KernelError.self) { _ = try DWARFInfo(sections: sections, path: "short") }
  }
}

extension String {
  fileprivate var prefixedBySlash: String { hasPrefix("/") ? self : "/" + self }
}

@Suite("DWARF LEB128") struct DWARFLEB128Tests {
  @Test func signedAndUnsignedAtTheirLimits() {
    // Int64.min takes ten bytes; its sign extension must not overflow (libc's DWARF has one).
    var cursor = DWARFCursor([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f, 0x7f, 0xe5, 0x8e, 0x26])
    #expect(cursor.sleb() == Int64.min)
    #expect(cursor.sleb() == -1)
    #expect(cursor.uleb() == 624_485)
    #expect(!cursor.failed)
    #expect(cursor.uleb() == 0 && cursor.failed)
    var max = DWARFCursor([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
    #expect(max.uleb() == UInt64.max)
  }
}
