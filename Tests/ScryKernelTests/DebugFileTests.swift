import Glibc
import Testing

@testable import ScryKernel

/// Separate debug files: libc's from libc6-dbg (by build-id), and a fixture stripped with
/// objcopy and linked back by .gnu_debuglink (by CRC-32), whose local functions must come back
/// with the unstripped build's addresses and file offsets.
@Suite("Debug files") struct DebugFileTests {
  /// libc's debug file under /usr/lib/debug/.build-id, or nil after saying why it is missing
  /// (a failure under SCRY_REQUIRE_KERNEL=1, where `make test` installs libc6-dbg).
  private func libcOrSkip(_ test: String = #function) throws -> (libc: ELFFile, debug: String)? {
    let path = try #require(SharedLibraries.resolve("libc", pid: nil))
    let libc = try ELFFile(path: path)
    let id = try #require(libc.buildIDHex, "libc has no build-id note")
    let debug = DebugFiles.defaultRoot + "/.build-id/" + id.prefix(2) + "/" + id.dropFirst(2) + ".debug"
    guard access(debug, R_OK) == 0 else {
      let reason = "libc's debug file \(debug) is missing (install libc6-dbg)"
      if KernelGate.isRequired { Issue.record("\(test) skipped but SCRY_REQUIRE_KERNEL=1: \(reason)") }
      else { print("skipping \(test): \(reason)") }
      return nil
    }
    return (libc, debug)
  }

  @Test func libcLocalFunctionsComeFromItsBuildIDDebugFile() throws {
    guard let (libc, debug) = try libcOrSkip() else { return }
    #expect(libc.isStripped)
    #expect(DebugFiles.locate(for: libc, root: DebugFiles.defaultRoot) == debug)
    #expect(libc.debugFilePath == debug)
    let intMalloc = try #require(libc.function(named: "_int_malloc"))
    #expect(intMalloc.size > 0)
    #expect(libc.functions(matching: "*_int_malloc*").contains { $0.name == "_int_malloc" })
    // The offset lies in libc's executable PT_LOAD, as readelf lists it for the original file.
    let offset = try libc.uprobeOffset(ofFunction: "_int_malloc")
    let segments = ELFFixture.run("/usr/bin/readelf", ["-lW", libc.path])
    if segments.status == 0 {
      let text = segments.text.split(separator: "\n").first { $0.contains("LOAD") && $0.contains("R E") }
      let fields = try #require(text, "no executable LOAD in \(segments.text)").split(separator: " ")
      let start = try #require(UInt64(fields[1].dropFirst(2), radix: 16))
      let size = try #require(UInt64(fields[4].dropFirst(2), radix: 16))
      #expect(offset >= start && offset < start + size, "\(offset) outside \(start)+\(size)")
    }
    // Exported functions keep the entry .dynsym gives (the default version of memcpy).
    let exported = try #require(libc.function(named: "malloc"))
    #expect(DebugFiles.read(debug)?.functions.contains { $0.name == "malloc" && $0.address == exported.address } == true)
  }

  @Test func eachDebugFileIsReadOncePerProcess() throws {
    guard let (libc, debug) = try libcOrSkip() else { return }
    _ = libc.functions()
    let reads = DebugFiles.readCount(of: debug)
    #expect(reads == 1)
    // Another path to the same library (/lib is /usr/lib on Debian) hits the build-id cache.
    let again = try ELFFile(path: DebugFiles.realPath(libc.path) ?? libc.path)
    #expect(again.function(named: "_int_malloc") == libc.function(named: "_int_malloc"))
    #expect(DebugFiles.readCount(of: debug) == reads)
  }

  @Test func debuglinkFindsACRCCheckedFileBesideTheBinary() throws {
    guard ELFFixture.shared.orSkip() != nil else { return }
    let fixture = try #require(DebugLinkFixture.shared.fixture, "\(DebugLinkFixture.shared.failure ?? "")")
    let stripped = try ELFFile(path: fixture.stripped)
    let full = try ELFFile(path: fixture.full)
    #expect(stripped.isStripped)
    #expect(stripped.buildID == nil)
    let link = try #require(stripped.debugLink)
    #expect(link.name == "target.debug")
    // The tampered copy in the binary's own directory is searched first and rejected by its CRC.
    #expect(DebugFiles.locate(for: stripped, root: "/nonexistent") == fixture.directory + "/.debug/target.debug")
    #expect(DebugFiles.locate(for: full, root: "/nonexistent") == nil)
    let helper = try #require(stripped.function(named: "helper"))
    #expect(helper == full.function(named: "helper"))
    #expect(try stripped.uprobeOffset(ofFunction: "helper") == full.uprobeOffset(ofFunction: "helper"))
    #expect(Set(stripped.functions().map(\.name)) == Set(full.functions().map(\.name)))
  }

  @Test func crcMatchesZlib() {
    let text = Array("123456789".utf8)
    #expect(text.withUnsafeBytes { DebugFiles.crc32($0) } == 0xcbf4_3926)
    #expect([UInt8]().withUnsafeBytes { DebugFiles.crc32($0) } == 0)
  }

  @Test func malformedNotesAreIgnored() {
    func note(_ nameSize: UInt32, _ descriptorSize: UInt32, _ type: UInt32, _ rest: [UInt8]) -> [UInt8] {
      [nameSize, descriptorSize, type].flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } } + rest
    }
    func buildID(_ bytes: [UInt8], alignment: UInt64 = 4) -> [UInt8]? {
      bytes.withUnsafeBytes { raw in
        ELFFile.buildID(
          inNotes: ELFBytes(base: raw.baseAddress, count: raw.count), offset: 0, size: UInt64(raw.count),
          alignment: alignment)
      }
    }
    let good = note(4, 3, 3, Array("GNU\0".utf8) + [1, 2, 3, 0])
    #expect(buildID(good) == [1, 2, 3])
    // Another note first (ABI tag), then the build-id.
    #expect(buildID(note(4, 4, 1, Array("GNU\0".utf8) + [0, 0, 0, 0]) + good) == [1, 2, 3])
    // A descriptor claiming to run past the section, a huge name size, or a cut header.
    #expect(buildID(note(4, 0xffff_fff0, 3, Array("GNU\0".utf8))) == nil)
    #expect(buildID(note(0xffff_ffff, 3, 3, Array("GNU\0".utf8) + [1, 2, 3, 0])) == nil)
    #expect(buildID(Array(good.prefix(10))) == nil)
    #expect(buildID(note(4, 3, 3, Array("GNX\0".utf8) + [1, 2, 3, 0])) == nil)
    #expect(buildID([]) == nil)
  }
}

/// A C program with a static function, built without a build-id, then split as distributions do:
/// `objcopy --only-keep-debug` into `.debug/target.debug`, stripped, and linked back with
/// `--add-gnu-debuglink`; plus a corrupted copy of the debug file beside the binary.
struct DebugLinkFixture: Sendable {
  let directory: String
  let full: String
  let stripped: String

  /// The build, or why it failed.
  static let shared: (fixture: DebugLinkFixture?, failure: String?) = make()

  private static func make() -> (fixture: DebugLinkFixture?, failure: String?) {
    guard let directory = try? ELFFixture.temporaryDirectory() else {
      return (nil, "cannot create a temporary directory")
    }
    let source = directory + "/target.c"
    let fd = open(source, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var text = Array(ELFFixture.source.utf8)
    _ = Glibc.write(fd, &text, text.count)
    close(fd)
    mkdir(directory + "/.debug", 0o755)
    let full = directory + "/target-full"
    let stripped = directory + "/target"
    let debug = directory + "/.debug/target.debug"
    let steps: [(String, [String])] = [
      ("/usr/bin/gcc", ["-O0", "-g", "-Wl,--build-id=none", "-o", full, source]),
      ("/usr/bin/objcopy", ["--only-keep-debug", full, debug]),
      ("/usr/bin/strip", ["--strip-all", "-o", stripped, full]),
      ("/usr/bin/objcopy", ["--add-gnu-debuglink=" + debug, stripped]),
      ("/bin/cp", [debug, directory + "/target.debug"]),
    ]
    for (tool, arguments) in steps {
      let run = ELFFixture.run(tool, arguments)
      guard run.status == 0 else { return (nil, "\(tool) \(arguments.joined(separator: " ")) failed: \(run.text)") }
    }
    // One byte more: still a valid ELF file, but no longer the one the CRC names.
    let tampered = open(directory + "/target.debug", O_WRONLY | O_APPEND)
    var extra: UInt8 = 0
    _ = Glibc.write(tampered, &extra, 1)
    close(tampered)
    atexit {
      guard let directory = DebugLinkFixture.shared.fixture?.directory else { return }
      ELFFixture.removeTree(directory + "/.debug")
      ELFFixture.removeTree(directory)
    }
    return (DebugLinkFixture(directory: directory, full: full, stripped: stripped), nil)
  }
}
