import Glibc
import Testing

@testable import ScryKernel

/// The ELF reader against binutils: symbol addresses and file offsets must agree with what
/// `readelf -sW` and `readelf -lW` give, for PIE, non-PIE and stripped builds and for the
/// system's bash and libc; malformed files must throw, never trap.
@Suite("ELF") struct ELFTests {
  // MARK: - Built fixtures

  @Test func nonPIEOffsetsMatchReadelf() throws {
    guard let build = ELFFixture.shared.orSkip() else { return }
    let elf = try ELFFile(path: build.fixed)
    #expect(!elf.isPositionIndependent)
    #expect(!elf.isStripped)
    let target = try #require(elf.function(named: "target"))
    // A non-PIE executable is linked at 0x400000: the address is absolute, not the offset.
    #expect(target.address >= 0x400000)
    #expect(try elf.uprobeOffset(ofFunction: "target") < target.address)
    try expectAgreesWithReadelf(elf, names: ["target", "helper", "main"])
    try expectCodeAtOffset(elf, function: "target")
  }

  @Test func pieOffsetsMatchReadelf() throws {
    guard let build = ELFFixture.shared.orSkip() else { return }
    let elf = try ELFFile(path: build.pie)
    #expect(elf.isPositionIndependent)
    #expect(!elf.isStripped)
    try expectAgreesWithReadelf(elf, names: ["target", "helper", "main"])
    try expectCodeAtOffset(elf, function: "target")
  }

  @Test func strippedCopyKnowsOnlyExportedFunctions() throws {
    guard let build = ELFFixture.shared.orSkip() else { return }
    let full = try ELFFile(path: build.pie)
    let stripped = try ELFFile(path: build.stripped)
    #expect(stripped.isStripped)
    #expect(stripped.isPositionIndependent)
    // -rdynamic keeps 'target' in .dynsym; the static 'helper' lived only in .symtab.
    let target = try #require(stripped.function(named: "target"))
    #expect(target == full.function(named: "target"))
    #expect(stripped.function(named: "helper") == nil)
    #expect(full.function(named: "helper") != nil)
    #expect(stripped.closestFunctionNames(to: "targte") == ["target"])
    #expect(throws: KernelError.self) { try stripped.uprobeOffset(ofFunction: "helper") }
    do {
      _ = try stripped.uprobeOffset(ofFunction: "targt")
    } catch {
      #expect(error.explanation?.contains("did you mean 'target'") == true, "\(error)")
      #expect(error.explanation?.contains("stripped") == true, "\(error)")
    }
  }

  @Test func functionOffsetsAreCheckedAgainstTheFunctionSize() throws {
    guard let build = ELFFixture.shared.orSkip() else { return }
    let elf = try ELFFile(path: build.fixed)
    let target = try #require(elf.function(named: "target"))
    #expect(target.size > 4)
    #expect(try elf.uprobeOffset(ofFunction: "target", plus: 4) == elf.uprobeOffset(ofFunction: "target") + 4)
    #expect(throws: KernelError.self) { try elf.uprobeOffset(ofFunction: "target", plus: target.size) }
    #expect(elf.functions(matching: "tar*").map(\.name) == ["target"])
    #expect(elf.function(named: "target@VERS") == target)
  }

  // MARK: - System binaries

  @Test func bashReadlineMatchesReadelf() throws {
    guard ELFFixture.shared.orSkip() != nil, access("/bin/bash", R_OK) == 0 else { return }
    let elf = try ELFFile(path: "/bin/bash")
    #expect(elf.function(named: "readline") != nil)
    #expect(elf.functions().count > 500)
    #expect(elf.functions(matching: "read*").contains { $0.name == "readline" })
    try expectAgreesWithReadelf(elf, names: ["readline", "main"])
  }

  @Test func resolvesLibcThroughTheLinkerCache() throws {
    let path = try #require(SharedLibraries.resolve("libc", pid: nil))
    #expect(path.hasSuffix("/libc.so.6"))
    let libc = try ELFFile(path: path)
    #expect(libc.isPositionIndependent)
    let malloc = try #require(libc.function(named: "malloc"))
    #expect(libc.fileOffset(ofAddress: malloc.address) != nil)
    #expect(libc.functions().count > 1000)
    #expect(libc.closestFunctionNames(to: "mallco").contains("malloc"))
    if ELFFixture.shared.orSkip() != nil {
      try expectAgreesWithReadelf(libc, names: ["malloc", "free", "memcpy", "realpath", "strlen", "printf"])
    }
    // bpftrace 0.17 takes "libc" but neither "c" nor a missing library.
    #expect(SharedLibraries.resolve("c", pid: nil) == nil)
    #expect(SharedLibraries.resolve("libscry-no-such-library", pid: nil) == nil)
    #expect(SharedLibraries.resolve("libc.so.6", pid: nil).map(sameFile(path)) == true)
  }

  @Test func resolvesLibcThroughProcMaps() throws {
    let fromCache = try #require(SharedLibraries.resolve("libc", pid: nil))
    let fromMaps = try #require(SharedLibraries.resolve("libc", pid: getpid()))
    #expect(sameFile(fromCache)(fromMaps), "\(fromCache) vs \(fromMaps)")
    let maps = try FileSystem.readText("/proc/self/maps")
    #expect(maps.contains(fromMaps))
  }

  @Test func resolvesPathsAndExecutables() {
    #expect(SharedLibraries.resolve("/bin/sh", pid: nil) == "/bin/sh")
    #expect(SharedLibraries.resolve("/no/such/binary", pid: nil) == nil)
    #expect(SharedLibraries.resolve("", pid: nil) == nil)
    #expect(SharedLibraries.resolve("sh", pid: nil)?.hasSuffix("/sh") == true)
  }

  // MARK: - Parsers on synthetic input

  @Test func mapsLinesPickTheLibrary() {
    let maps = """
      7f0000000000-7f0000001000 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libcap.so.2.66
      7f0000002000-7f0000003000 r-xp 00001000 08:01 124 /usr/lib/x86_64-linux-gnu/libc.so.6
      7f0000004000-7f0000005000 r-xp 00001000 08:01 125 /opt/my dir/libfoo-1.2.so (deleted)
      7f0000006000-7f0000007000 r-xp 00001000 08:01 126 /opt/my dir/libfoo-1.3.so
      7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0 [stack]
      """
    #expect(SharedLibraries.library("libc", inMaps: maps) == "/usr/lib/x86_64-linux-gnu/libc.so.6")
    #expect(SharedLibraries.library("libcap", inMaps: maps) == "/usr/lib/x86_64-linux-gnu/libcap.so.2.66")
    #expect(SharedLibraries.library("libc.so.6", inMaps: maps) == "/usr/lib/x86_64-linux-gnu/libc.so.6")
    #expect(SharedLibraries.library("libfoo", inMaps: maps) == "/opt/my dir/libfoo-1.3.so")
    #expect(SharedLibraries.library("c", inMaps: maps) == nil)
    #expect(SharedLibraries.library("libca", inMaps: maps) == nil)
  }

  @Test func linkerCacheReadsBothFormats() throws {
    let system = try LinkerCache()
    #expect(system.entries.contains { $0.name == "libc.so.6" })
    // A combined file: an old table of one entry, then the new header at the next 8-byte boundary.
    var bytes = Array("ld.so-1.7.0".utf8) + [0]
    bytes += le(UInt32(1)) + le(UInt32(3)) + le(UInt32(0)) + le(UInt32(0))  // 16 + 12 = 28
    bytes += [0, 0, 0, 0]  // align to 32
    let newStart = bytes.count
    bytes += Array("glibc-ld.so.cache1.1".utf8) + le(UInt32(3)) + le(UInt32(0)) + [UInt8](repeating: 0, count: 20)
    let strings = 48 + 3 * 24
    let names = ["libz.so.1", "libz.so.1", "libbad"]
    let paths = ["/lib64/libz.so.1", "/lib32/libz.so.1", "/bad"]
    var table: [UInt8] = []
    var stringBytes: [UInt8] = []
    for index in 0..<3 {
      #if arch(x86_64)
        let flags: UInt32 = index == 1 ? 0x0003 : 0x0303  // the second is an i386 library
      #else
        let flags: UInt32 = index == 1 ? 0x0003 : 0x0a03
      #endif
      let key = UInt32(strings + stringBytes.count)
      stringBytes += Array(names[index].utf8) + [0]
      let value = UInt32(strings + stringBytes.count)
      stringBytes += Array(paths[index].utf8) + (index == 2 ? [] : [0])  // the last has no NUL
      table += le(flags) + le(key) + le(value) + le(UInt32(0)) + le(UInt64(0))
    }
    bytes += table + stringBytes
    #expect(bytes.count == newStart + strings + stringBytes.count)
    let entries = bytes.withUnsafeBytes { LinkerCache.parse(ELFBytes(base: $0.baseAddress, count: $0.count)) }
    #expect(entries == [LinkerCache.Entry(name: "libz.so.1", path: "/lib64/libz.so.1")])
    let cache = LinkerCache(entries: entries ?? [])
    #expect(SharedLibraries.cachedLibrary("libz", in: cache) == "/lib64/libz.so.1")
    #expect(SharedLibraries.cachedLibrary("z", in: cache) == nil)
    // Cut anywhere, it parses to nil or to fewer entries, never traps.
    for length in 0..<bytes.count {
      let prefix = Array(bytes[0..<length])
      let parsed = prefix.withUnsafeBytes { LinkerCache.parse(ELFBytes(base: $0.baseAddress, count: $0.count)) }
      #expect(parsed == nil || parsed!.count <= 1)
    }
  }

  @Test func globAndEditDistance() {
    func glob(_ text: String, _ pattern: String) -> Bool {
      Glob.matches(pattern: Array(pattern.utf8), text: Array(text.utf8))
    }
    #expect(glob("readline", "read*"))
    #expect(glob("readline", "*line"))
    #expect(glob("readline", "r*d*e"))
    #expect(glob("readline", "*"))
    #expect(!glob("readline", "read"))
    #expect(!glob("readline", "*x*"))
    #expect(glob("", "*"))
    func distance(_ a: String, _ b: String) -> Int { ELFFile.editDistance(Array(a.utf8), Array(b.utf8), cutoff: 99) }
    #expect(distance("malloc", "malloc") == 0)
    #expect(distance("mallco", "malloc") == 2)
    #expect(distance("", "abc") == 3)
    #expect(distance("kitten", "sitting") == 3)
  }

  // MARK: - Malformed input

  @Test func malformedFilesThrow() throws {
    let directory = try ELFFixture.temporaryDirectory()
    defer { ELFFixture.removeTree(directory) }
    func write(_ name: String, _ bytes: [UInt8]) -> String {
      let path = directory + "/" + name
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      close(fd)
      return path
    }
    func explanation(_ path: String) -> String? {
      do {
        _ = try ELFFile(path: path)
        return nil
      } catch {
        return error.explanation ?? error.description
      }
    }
    #expect(explanation(write("empty", []))?.hasPrefix("not an ELF file") == true)
    #expect(explanation(write("text", Array(String(repeating: "hello, world\n", count: 20).utf8))) == "not an ELF file")
    var elf32 = [UInt8](repeating: 0, count: 64)
    elf32[0..<6] = [0x7f, 0x45, 0x4c, 0x46, 1, 1]
    #expect(explanation(write("elf32", elf32)) == "not a 64-bit little-endian ELF file")
    #expect(explanation(directory) == "not a regular file")
    #expect(throws: KernelError.self) { try ELFFile(path: directory + "/missing") }

    // Every prefix length of /bin/true that cuts a header must throw; none may trap.
    let whole = try FileSystem.readBytes("/bin/true")
    #expect(whole.count > 4096)
    var cuts = [1, 4, 16, 63, 64, 65, 100, 200, 1000, whole.count / 2, whole.count - 64, whole.count - 1]
    cuts += stride(from: 0, to: whole.count, by: max(1, whole.count / 50)).map { $0 }
    for cut in cuts {
      let path = write("true-\(cut)", Array(whole[0..<cut]))
      // Section headers sit at the end of the file: any cut loses them.
      #expect(explanation(path) != nil, "cut at \(cut)")
      unlink(path)
    }
  }

  @Test func corruptedBytesNeverTrap() throws {
    let whole = try FileSystem.readBytes("/bin/true")
    let directory = try ELFFixture.temporaryDirectory()
    defer { ELFFixture.removeTree(directory) }
    let path = directory + "/mutant"
    var random = SystemRandomNumberGenerator()
    var seed = UInt64.random(in: 0...UInt64.max, using: &random)
    func next() -> UInt64 {
      // splitmix64: a fixed sequence per seed, so a failure can be replayed from the printed seed.
      seed &+= 0x9e37_79b9_7f4a_7c15
      var z = seed
      z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
      z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
      return z ^ (z >> 31)
    }
    let startSeed = seed
    for _ in 0..<300 {
      var bytes = whole
      for _ in 0..<Int(next() % 8 + 1) {
        // Mostly the headers and tables, where a bad value steers the reader.
        let index = next() % 2 == 0 ? Int(next() % 64) : Int(next() % UInt64(bytes.count))
        bytes[index] = UInt8(truncatingIfNeeded: next())
      }
      let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      close(fd)
      if let elf = try? ELFFile(path: path) {
        for symbol in elf.functions().prefix(50) { _ = elf.fileOffset(ofAddress: symbol.address) }
        _ = elf.closestFunctionNames(to: "main")
        _ = elf.isStripped
      }
    }
    print("corruptedBytesNeverTrap: seed \(startSeed)")
  }

  // MARK: - Helpers

  /// Checks `elf` against readelf for each of `names`: the address is a value readelf lists for a
  /// defined FUNC/IFUNC of that name, and the file offset is readelf's LOAD arithmetic.
  private func expectAgreesWithReadelf(_ elf: ELFFile, names: [String]) throws {
    // A stripped file's functions include those of its separate debug file (libc6-dbg's).
    let symbols = ELFFixture.run("/usr/bin/readelf", ["-sW", elf.path] + (elf.debugFilePath.map { [$0] } ?? []))
    let segments = ELFFixture.run("/usr/bin/readelf", ["-lW", elf.path])
    try #require(symbols.status == 0 && segments.status == 0, "readelf failed")
    var values: [String: Set<UInt64>] = [:]
    var defaultVersions: [String: UInt64] = [:]
    for line in symbols.text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 8, fields[0].hasSuffix(":"), fields[3] == "FUNC" || fields[3] == "IFUNC",
        fields[6] != "UND", let value = UInt64(fields[1], radix: 16), value != 0
      else { continue }
      values[ELFFile.unversioned(String(fields[7])), default: []].insert(value)
      if fields[7].contains("@@") { defaultVersions[ELFFile.unversioned(String(fields[7]))] = value }
    }
    var loads: [(offset: UInt64, vaddr: UInt64, filesz: UInt64)] = []
    for line in segments.text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 5, fields[0] == "LOAD" else { continue }
      func hex(_ text: Substring) -> UInt64 { UInt64(text.dropFirst(2), radix: 16) ?? 0 }
      loads.append((hex(fields[1]), hex(fields[2]), hex(fields[4])))
    }
    #expect(!loads.isEmpty)
    // Every name readelf lists as a defined function, and nothing else, is in functions().
    #expect(Set(elf.functions().map(\.name)) == Set(values.keys))
    for name in names {
      let symbol = try #require(elf.function(named: name), "\(name) in \(elf.path)")
      #expect(values[name]?.contains(symbol.address) == true, "\(name): \(symbol.address)")
      // Of several versions (memcpy@GLIBC_2.2.5, memcpy@@GLIBC_2.14) the default one is probed.
      if let address = defaultVersions[name] { #expect(symbol.address == address, "\(name)") }
      let load = try #require(loads.first { symbol.address >= $0.vaddr && symbol.address - $0.vaddr < $0.filesz })
      #expect(elf.fileOffset(ofAddress: symbol.address) == symbol.address - load.vaddr + load.offset, "\(name)")
      #expect(try elf.uprobeOffset(ofFunction: name) == symbol.address - load.vaddr + load.offset)
    }
  }

  /// Checks that the bytes at the function's file offset are its first instructions, as objdump
  /// disassembles them from the function's virtual address.
  private func expectCodeAtOffset(_ elf: ELFFile, function name: String) throws {
    let symbol = try #require(elf.function(named: name))
    let offset = try #require(elf.fileOffset(ofAddress: symbol.address))
    let range = ["--start-address=\(symbol.address)", "--stop-address=\(symbol.address + 4)"]
    let dump = ELFFixture.run("/usr/bin/objdump", ["-d"] + range + [elf.path])
    #expect(dump.status == 0, "\(dump.text)")
    let expected = ELFFixture.objdumpBytes(dump.text)
    let file = try FileSystem.readBytes(elf.path)
    #expect(!expected.isEmpty)
    try #require(Int(offset) + expected.count <= file.count)
    #expect(Array(file[Int(offset)..<Int(offset) + expected.count]) == expected)
  }

  /// Whether two paths name the same file (/lib and /usr/lib are often one directory).
  private func sameFile(_ a: String) -> (String) -> Bool {
    { b in
      var first = stat()
      var second = stat()
      return stat(a, &first) == 0 && stat(b, &second) == 0 && first.st_dev == second.st_dev
        && first.st_ino == second.st_ino
    }
  }

  private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
  }
}

/// A tiny C program built once per test run, as PIE, non-PIE and a stripped `-rdynamic` PIE.
final class ELFFixture: Sendable {
  static let shared = ELFFixture()

  static let source = """
    #include <stdio.h>
    __attribute__((noinline)) static int helper(int x) { return x * 3 + 7; }
    __attribute__((noinline)) int target(int x, const char *s) { return helper(x) + s[0]; }
    int main(int argc, char **argv) { printf("%d\\n", target(argc, argv[0])); return 0; }
    """

  /// The temporary directory holding the builds, removed when the test process exits.
  let directory: String
  let pie: String
  let fixed: String
  let stripped: String
  /// Why the builds are missing (no gcc, no binutils, a failed compile); nil when they exist.
  let failure: String?

  private init() {
    var pie = "", fixed = "", stripped = "", made = ""
    var failure: String? = nil
    let tools = ["/usr/bin/gcc", "/usr/bin/readelf", "/usr/bin/strip", "/usr/bin/objdump"]
    if let missing = tools.first(where: { access($0, X_OK) != 0 }) {
      failure = "needs gcc and binutils (\(missing) is missing)"
    } else if let directory = try? ELFFixture.temporaryDirectory() {
      made = directory
      let sourcePath = directory + "/target.c"
      let fd = open(sourcePath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      var text = Array(ELFFixture.source.utf8)
      _ = Glibc.write(fd, &text, text.count)
      close(fd)
      pie = directory + "/target-pie"
      fixed = directory + "/target-nopie"
      stripped = directory + "/target-stripped"
      let steps: [(String, [String])] = [
        ("/usr/bin/gcc", ["-O0", "-pie", "-fPIE", "-rdynamic", "-o", pie, sourcePath]),
        ("/usr/bin/gcc", ["-O0", "-no-pie", "-fno-PIE", "-o", fixed, sourcePath]),
        ("/usr/bin/strip", ["--strip-all", "-o", stripped, pie]),
      ]
      for (tool, arguments) in steps where failure == nil {
        let run = ELFFixture.run(tool, arguments)
        if run.status != 0 { failure = "\(tool) \(arguments.joined(separator: " ")) failed: \(run.text)" }
      }
      // A static fixture has no teardown: remove the files when the test process exits.
      atexit { ELFFixture.removeTree(ELFFixture.shared.directory) }
    } else {
      failure = "cannot create a temporary directory"
    }
    (self.directory, self.pie, self.fixed, self.stripped, self.failure) = (made, pie, fixed, stripped, failure)
  }

  /// The fixture, or nil after printing why it is missing; a failure when SCRY_REQUIRE_KERNEL=1.
  func orSkip(_ test: String = #function) -> ELFFixture? {
    guard let failure else { return self }
    if KernelGate.isRequired {
      Issue.record("\(test) skipped but SCRY_REQUIRE_KERNEL=1: \(failure)")
    } else {
      print("skipping \(test): \(failure)")
    }
    return nil
  }

  static func temporaryDirectory() throws -> String {
    var template = Array("/tmp/scry-elf-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
      throw KernelError(operation: "mkdtemp", errno: errno)
    }
    return String(cString: made)
  }

  /// Removes a directory made by `temporaryDirectory` and the plain files in it.
  static func removeTree(_ path: String) {
    for name in FileSystem.entries(of: path) { unlink(path + "/" + name) }
    rmdir(path)
  }

  /// The instruction bytes of an `objdump -d` listing ("  401136:\t55  \tpush %rbp").
  static func objdumpBytes(_ listing: String) -> [UInt8] {
    var bytes: [UInt8] = []
    for line in listing.split(separator: "\n") {
      let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
      guard columns.count >= 2, columns[0].hasSuffix(":"), columns[0].first == " " else { continue }
      bytes += columns[1].split(separator: " ").compactMap { UInt8($0, radix: 16) }
    }
    return bytes
  }
}

extension ELFFixture {
  /// Runs `path` with `arguments` (no shell) and returns its exit status and stdout+stderr.
  static func run(_ path: String, _ arguments: [String]) -> (status: Int32, text: String) {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return (-1, "pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(fds[1])
    defer { close(fds[0]) }
    guard spawned == 0 else { return (-1, "cannot run \(path)") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = read(fds[0], &buffer, buffer.count)
      if n > 0 {
        output += buffer[0..<n]
      } else if n == 0 || errno != EINTR {
        break
      }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = status & 0x7f == 0
    return (exited ? (status >> 8) & 0xff : -1, String(decoding: output, as: UTF8.self))
  }
}
