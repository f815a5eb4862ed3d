import Glibc
import Testing

/// Uprobes, -l and ustack on libc's local `_int_malloc`, known only from libc6-dbg's debug file.
@Suite(.serialized) struct DebugSymbolTests {
  static let target: String? = {
    let binary = "/tmp/scry-malloc-target-\(getpid())"
    return (try? buildFixture("malloc_target.c", into: binary)) != nil ? binary : nil
  }()

  /// Whether libc's debug file is installed; prints why not, failing under SCRY_REQUIRE_KERNEL=1
  /// (`make test` installs libc6-dbg).
  static func libcDebugInstalled(_ test: String = #function) -> Bool {
    let libc = "/lib/x86_64-linux-gnu/libc.so.6"
    let notes = Run.program("/usr/bin/readelf", ["-n", libc])
    let id = notes.stdout.split(separator: "\n").first { $0.contains("Build ID:") }?.split(separator: " ").last
    if let id, access("/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug", R_OK) == 0 { return true }
    let reason = "libc's debug file is not installed (libc6-dbg)"
    print("skipping \(test): \(reason)")
    if let required = getenv("SCRY_REQUIRE_KERNEL"), String(cString: required) == "1" {
      Issue.record("SCRY_REQUIRE_KERNEL=1 but \(test) cannot run: \(reason)")
    }
    return false
  }

  @Test func listsLibcLocalFunctions() {
    guard Self.libcDebugInstalled() else { return }
    let run = scry("-l", "uprobe:libc:*_int_malloc*")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.split(separator: "\n").contains { $0.hasSuffix("libc.so.6:_int_malloc") }, "\(run.stdout)")
  }

  @Test func countsAndNamesCallsOfALocalLibcFunction() throws {
    guard kernelAvailable("debug-file uprobe tests"), Self.libcDebugInstalled() else { return }
    let target = try #require(Self.target, "could not build Tests/Fixtures/malloc_target.c")
    let run = scry(
      "-c", "\(target) 300", "-e", "uprobe:libc:_int_malloc /pid == cpid/ { @ = count(); @s[ustack(1)] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let count = run.stdout.split(separator: "\n").first { $0.hasPrefix("@: ") }.flatMap { Int($0.dropFirst(3)) }
    // Every unfreed block reaches _int_malloc; the loader and stdio may add a few more.
    #expect((count ?? 0) >= 300, "\(run.stdout)")
    // The probed address is named from the debug file, not after a neighbouring export.
    #expect(run.stdout.contains("    _int_malloc+0\n"), "\(run.stdout)")
  }
}
