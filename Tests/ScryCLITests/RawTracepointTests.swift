import Glibc
import Testing

/// Counts at tracepoints taken by programs on raw tracepoint links: no perf record is built, and
/// the tracepoint's other consumers (perf here) still see every event.
@Suite(.serialized) struct RawTracepointTests {
  /// The link types of the BPF links `pid` holds, from its fds' fdinfo.
  static func linkTypes(of pid: pid_t) -> [String] {
    let listing = Run.program("/bin/sh", ["-c", "cat /proc/\(pid)/fdinfo/* 2>/dev/null"]).stdout
    return listing.split(separator: "\n").compactMap { line in
      line.hasPrefix("link_type:") ? line.dropFirst("link_type:".count).trimmingCharacters(in: .whitespaces) : nil
    }
  }

  @Test func wholeAndTaskKeyedCountsTakeRawTracepointsAndPerfStillCounts() throws {
    guard kernelAvailable("raw tracepoint test") else { return }
    guard let workload = KernelEventTests.workload else {
      Issue.record("could not build the workload with gcc")
      return
    }
    guard access("/usr/bin/perf", X_OK) == 0 else {
      Issue.record("perf is not installed (make test installs linux-perf)")
      return
    }
    let scryRun = try BackgroundScry(
      "tracepoint:raw_syscalls:sys_enter { @all = count(); } tracepoint:raw_syscalls:sys_enter { @per[pid] = count(); }")
    let links = Self.linkTypes(of: scryRun.pid).filter { $0 == "raw_tracepoint" }
    // perf stat runs the workload: its pid is perf's child, so count under perf's own task list.
    let perf = Run.program(
      "/usr/bin/perf", ["stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-a", workload, "syscall", "50000", "0"])
    let (status, output) = scryRun.stop()
    #expect(status == 0, "\(output)")
    #expect(links.count == 2, "expected two raw_tracepoint links, found \(Self.linkTypes(of: scryRun.pid))")
    let perfCount = perf.stderr.split(separator: "\n").first { $0.contains("raw_syscalls:sys_enter") }
      .flatMap { Int($0.split(separator: ",").first ?? "") }
    #expect((perfCount ?? 0) >= 50000, "perf counted \(perfCount.map(String.init) ?? "nothing") while Scry traced: \(perf.stderr)")
    let lines = output.split(separator: "\n")
    let all = lines.first { $0.hasPrefix("@all: ") }.flatMap { Int($0.dropFirst(6)) } ?? 0
    #expect(all >= 50000, "\(output)")
    // One process made 50000 calls (and a few hundred more to start): one key holds them.
    let perPid = lines.filter { $0.hasPrefix("@per[") }.compactMap { line in
      line.split(separator: " ").last.flatMap { Int($0) }
    }
    #expect(perPid.contains { $0 >= 50000 && $0 < 51000 }, "\(output)")
    #expect(perPid.reduce(0, +) <= all + 10000, "the keyed total cannot run far past the whole count: \(output)")
  }

  @Test func planSaysWhichProgramCounts() {
    let run = scry("--plan", "-e", "tracepoint:sched:sched_switch { @n = count(); } tracepoint:sched:sched_switch { @[comm] = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    let delivered = run.stdout.split(separator: "\n").filter { $0.contains("delivered by: a BPF raw_tracepoint program") }
    #expect(delivered.count == 2, "\(run.stdout)")
  }
}
