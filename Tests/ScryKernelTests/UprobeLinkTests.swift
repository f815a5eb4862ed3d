import Glibc
import Testing

@testable import ScryKernel

/// A keyed counter on libc's `getenv`, run through a `uprobe_multi` link and through the uprobe
/// PMU: both count this thread's calls exactly, and the link's probe goes with its fd.
@Suite(.serialized) struct UprobeLinkTests {
  static let calls = 1000

  static func site() throws -> UprobeSite {
    let libc = try #require(SharedLibraries.resolve("libc", pid: nil))
    let offset = try ELFFile(path: libc).uprobeOffset(ofFunction: "getenv")
    return UprobeSite(path: libc, fileOffset: offset, isReturn: false, description: "uprobe:libc:getenv")
  }

  /// Calls getenv `calls` times and returns this thread's count in `counter`.
  static func countOwnCalls(_ counter: BPFKeyedCounter) throws -> UInt64 {
    for _ in 0..<calls { _ = getenv("SCRY_UPROBE_LINK_TEST") }
    let me = UInt64(SystemInfo.currentThreadID())
    let totals = try counter.totals()
    return totals.first { $0.key.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == me }?.total ?? 0
  }

  @Test func linkAndPMUCountEveryCall() throws {
    guard KernelGate.check() else { return }
    let site = try Self.site()
    let linked = try BPFKeyedCounter(linkingTo: site, key: .threadID, maxKeys: 64, name: "scry_test")
    #expect(try Self.countOwnCalls(linked) == UInt64(Self.calls))

    var options = PerfEventOptions()
    options.countingOnly = true
    let event = try PerfEvent.uprobe(
      path: site.path, fileOffset: site.fileOffset, isReturn: false, description: site.description,
      cpu: SystemInfo.onlineCPUs()[0], pid: -1, options: options)
    let throughPMU = try BPFKeyedCounter(attachingTo: event, key: .threadID, maxKeys: 64, name: "scry_test")
    try event.enable()
    #expect(try Self.countOwnCalls(throughPMU) == UInt64(Self.calls))
    // The link's counter, still attached, counted the second round too.
    #expect(try Self.countOwnCalls(linked) == UInt64(3 * Self.calls))
  }

  @Test func aMissingFileIsNamed() throws {
    guard KernelGate.check() else { return }
    let program = try BPFProgram.loadProbeProgram([.mov64(.r0, 0), .exit], name: "scry_test", forUprobeLink: true)
    let site = UprobeSite(path: "/nonexistent/scry", fileOffset: 0, isReturn: false, description: "uprobe:/nonexistent/scry:f")
    #expect(throws: KernelError.self) { try UprobeLink(program, at: site) }
  }
}
