import Glibc
import Testing

/// `watchpoint:` probes: hardware breakpoints on the memory of the traced process, on a small C
/// program that writes a known number of times (Tests/Fixtures/watch_target.c).
@Suite(.serialized) struct WatchpointTests {
  static let binary = "/tmp/scry-watch-target-\(getpid())"

  func buildOrSkip() throws -> String? {
    guard kernelAvailable("watchpoint tests") else { return nil }
    if access(Self.binary, X_OK) != 0 { try buildFixture("watch_target.c", into: Self.binary) }
    return Self.binary
  }

  /// Every write the traced process makes to the watched byte is one hit, of that process.
  @Test func anAddressWatchpointSeesEveryWriteOfTheTracedProcess() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry(
      "-c", "\(binary) fixed 50", "-e",
      "watchpoint:0x10000000:1:w { @hits = count(); @who[pid == cpid, comm, probe] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("@hits: 50\n"), "\(run.stdout)")
    let name = String(Self.binary.split(separator: "/").last!.prefix(15))
    #expect(run.stdout.contains("@who[1, \(name), watchpoint:\(binary):268435456:1:w]: 50\n"), "\(run.stdout)")
  }

  /// bpftrace's runtime test "watchpoint - absolute address", on this suite's fixture.
  @Test func theCorpusAbsoluteAddressProbeExitsOnItsFirstHit() throws {
    guard let binary = try buildOrSkip() else { return }
    let run = scry("-c", "\(binary) fixed 100000", "-e", "watchpoint:0x10000000:8:w { printf(\"hit!\\n\"); exit() }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 1 probe...\nhit!\n\n\n", "\(run.stdout)")
  }

  /// bpftrace 0.17's checks of a watchpoint's spec, in its words, before anything is attached.
  @Test func refusesTheSpecsBpftraceRefuses() {
    let cases: [(String, String)] = [
      ("watchpoint:0x10000000:3:w", "watchpoint length must be one of (1,2,4,8)"),
      ("watchpoint:0x10000000:4:rx", "invalid watchpoint mode: rx"),
      ("watchpoint:0x10000000:4:r", "invalid watchpoint mode: r"),
      ("watchpoint:0x10000000:4:ww", "watchpoint modes may not be duplicated"),
      ("watchpoint:0x10000000:4:q", "watchpoint mode must be combination of (r,w,x)"),
      ("watchpoint:0:4:w", "watchpoint must be attached to a non-zero address"),
      ("watchpoint:0x1000:4", "watchpoint probe type requires 3 arguments"),
      ("watchpoint:increment+arg1:4:w", "-p PID or -c CMD required for watchpoint"),
      ("watchpoint:increment+1:4:w", "Invalid function argument"),
      ("asyncwatchpoint:0x1000:4:w", "asyncwatchpoint requires a function name"),
    ]
    for (spec, message) in cases {
      let run = scry("--dry-run", "-e", "\(spec) { exit() }")
      #expect(run.status == 1, "\(spec): \(run.stdout)")
      #expect(run.stderr.contains("error: \(message)"), "\(spec): \(run.stderr)")
    }
  }

  /// `--plan` says what the breakpoint is and whose memory it watches.
  @Test func thePlanDescribesTheBreakpoint() {
    let run = scry("--plan", "-c", "/bin/true", "-e", "watchpoint:0x10000000:8:wr { exit() }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("[0] watchpoint:/bin/true:268435456:8:rw\n"), "\(run.stdout)")
    #expect(
      run.stdout.contains(
        "kind: hardware breakpoint (perf, PERF_TYPE_BREAKPOINT), mode rw, on 8 bytes at 0x10000000 of the traced process (/bin/true)"),
      "\(run.stdout)")
    #expect(run.stdout.contains("scope: traced process"), "\(run.stdout)")
  }
}
