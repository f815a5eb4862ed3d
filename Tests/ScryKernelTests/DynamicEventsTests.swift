import Glibc
import Testing

@testable import ScryKernel

/// The tracefs side of uprobes and kprobes: which leftovers count as stale, and what a refused
/// definition says.
@Suite struct DynamicEventsTests {
  @Test func onlyScryGroupsOfGoneRunsAreStale() {
    // A pid far above pid_max never runs.
    let gone = "p:scry_2147483000/p0_target /bin/app:0x1139 a0=%di:u64"
    #expect(DynamicEvents.staleEvent(in: Substring(gone))?.group == "scry_2147483000")
    #expect(DynamicEvents.staleEvent(in: Substring(gone))?.name == "p0_target")
    // pid 1 runs, but it is not Scry: its pid was reused, so the group is a leftover too.
    #expect(DynamicEvents.staleEvent(in: "r:scry_1/r0_f /bin/app:0x10")?.group == "scry_1")
    #expect(DynamicEvents.staleEvent(in: "p:uprobes/p_bash_0x1 /bin/bash:0x1") == nil)
    #expect(DynamicEvents.staleEvent(in: "p:scry_abc/x /bin/app:0x10") == nil)
    #expect(DynamicEvents.staleEvent(in: "garbage") == nil)
  }

  @Test func groupIsNamedAfterThePid() {
    #expect(DynamicEvents.groupName(for: 4321) == "scry_4321")
  }

  @Test func refusedDefinitionQuotesTheKernelsReason() throws {
    guard KernelGate.check() else { return }
    let tracefs = try TraceFS.locate()
    let events = DynamicEvents(tracefs: tracefs, group: "scrytest_\(getpid())")
    let definition = "p:scrytest_\(getpid())/p0_nothing /nonexistent/scry-binary:0x10"
    do {
      _ = try events.create(definition: definition, name: "p0_nothing", controlFile: "uprobe_events", probe: "uprobe:/nonexistent/scry-binary:f")
      Issue.record("the kernel accepted a probe on a missing binary")
    } catch {
      #expect(error.description.contains("uprobe:/nonexistent/scry-binary:f"), "\(error)")
      #expect(error.description.contains("definition was '\(definition)'"), "\(error)")
    }
    #expect(!((try? FileSystem.readText(tracefs.root + "/uprobe_events")) ?? "").contains("scrytest_\(getpid())"))
  }

  @Test func createdEventsAreRemovedOnRelease() throws {
    guard KernelGate.check() else { return }
    let tracefs = try TraceFS.locate()
    let group = "scrytest_\(getpid())"
    do {
      let events = DynamicEvents(tracefs: tracefs, group: group)
      let id = try events.create(
        definition: "p:\(group)/p0_true /bin/true:0x0", name: "p0_true", controlFile: "uprobe_events", probe: "uprobe:/bin/true")
      #expect(id > 0)
      #expect(try FileSystem.readText(tracefs.root + "/uprobe_events").contains(group))
    }
    #expect(!(try FileSystem.readText(tracefs.root + "/uprobe_events")).contains(group))
  }
}
