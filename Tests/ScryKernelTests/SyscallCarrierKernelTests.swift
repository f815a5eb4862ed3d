import Glibc
import Testing

@testable import ScryKernel

// Among the serialized kernel suites: several of them call getppid in this process, which the
// carriers given this process would count as well.
extension KernelSuites {
  /// The syscall carrier's two facts about the machine: the number of each syscalls tracepoint, and
  /// where the compat flag sits in the task.
  @Suite("Syscall carrier") struct SyscallCarrierKernelTests {
    @Test func numbersByTracepointName() {
      #if arch(x86_64)
        // Entry points, not ABI names: stat is sys_newstat, umount2 is sys_umount.
        let expected: [String: Int] = [
          "sys_enter_read": 0, "sys_exit_read": 0, "sys_enter_newstat": 4, "sys_enter_writev": 20, "sys_enter_getppid": 110,
          "sys_exit_umount": 166, "sys_enter_exit_group": 231, "sys_enter_openat": 257, "sys_enter_clone3": 435,
          "sys_enter_listns": 470,
        ]
        for (name, number) in expected { #expect(SyscallNumbers.number(ofTracepoint: name) == number, "\(name)") }
        // Removed calls and names that are no syscalls tracepoint have none.
        for name in ["sys_enter_uselib", "sys_enter_stat", "read", "sys_enter_", "sched_switch"] {
          #expect(SyscallNumbers.number(ofTracepoint: name) == nil, "\(name)")
        }
      #endif
    }

    /// Every syscalls tracepoint of the running kernel has a number, and no two share one (a kernel
    /// newer than the table fails here: its new syscalls would be attached one by one until added).
    @Test func everyTracepointOfThisKernelHasItsOwnNumber() throws {
      guard KernelGate.check() else { return }
      #if arch(x86_64)
        let tracefs = try TraceFS.locate()
        let names = tracefs.events(in: "syscalls").filter { $0.hasPrefix("sys_enter_") }
        #expect(names.count > 300)
        var seen: [Int: String] = [:]
        for name in names {
          guard let number = SyscallNumbers.number(ofTracepoint: name) else {
            Issue.record("\(name) has no number")
            continue
          }
          #expect(seen[number] == nil, "\(name) and \(seen[number] ?? "") share \(number)")
          seen[number] = name
        }
      #endif
    }

    @Test func compatFlagOffsetFromBTF() throws {
      guard let btf = try BTFTests.vmlinux() else { return }
      let offset = try #require(SyscallCarrier.compatStatusOffset(in: btf))
      // thread_info is task_struct's first member on x86 (THREAD_INFO_IN_TASK); status follows flags words.
      #expect(offset > 0 && offset < 64)
    }

    /// A carrier given a process counts that process's syscalls only: this process's getppid calls,
    /// not a child's made while it runs; a carrier given another process counts none of ours.
    @Test func processTestKeepsOneProcess() throws {
      guard KernelGate.check(), let btf = try BTFTests.vmlinux() else { return }
      #if arch(x86_64)
        let offset = try #require(SyscallCarrier.compatStatusOffset(in: btf))
        let tracefs = try TraceFS.locate()
        let id = try tracefs.eventID(category: "raw_syscalls", name: "sys_enter")
        var options = PerfEventOptions()
        options.countingOnly = true
        let getppidNumber = 110
        let calls = 3000
        let ourEvent = try PerfEvent.tracepoint(id: id, description: "raw_syscalls:sys_enter", pid: getpid(), options: options)
        let otherEvent = try PerfEvent.tracepoint(id: id, description: "raw_syscalls:sys_enter", pid: getpid(), options: options)
        let ours = try SyscallCarrier(
          attachingTo: ourEvent, mode: .counting, numbers: [getppidNumber], compatStatusOffset: offset, onlyProcess: getpid())
        // pid 1 (init) is never this process.
        let other = try SyscallCarrier(
          attachingTo: otherEvent, mode: .counting, numbers: [getppidNumber], compatStatusOffset: offset, onlyProcess: 1)
        try ourEvent.enable()
        try otherEvent.enable()
        Self.callGetppid(calls, childCalls: 2 * calls)
        try ourEvent.disable()
        try otherEvent.disable()
        #expect(try ours.count(of: getppidNumber) == UInt64(calls))
        #expect(try other.count(of: getppidNumber) == 0)
        PerfEvent.closeAll([ourEvent, otherEvent])
      #endif
    }

    /// `calls` getppid calls here while a child makes `childCalls`.
    static func callGetppid(_ calls: Int, childCalls: Int) {
      let child = fork()
      if child == 0 {
        for _ in 0..<childCalls { _ = Glibc.getppid() }
        _exit(0)
      }
      #expect(child > 0)
      for _ in 0..<calls { _ = Glibc.getppid() }
      var status: Int32 = 0
      _ = waitpid(child, &status, 0)
    }

    /// Counting carriers on the raw tracepoints: entry takes the number from the arguments, exit
    /// from the registers' `orig_ax`; both count exactly this process's calls.
    @Test func rawCarriersCountEntriesAndExits() throws {
      guard KernelGate.check(), let btf = try BTFTests.vmlinux() else { return }
      #if arch(x86_64)
        let offset = try #require(SyscallCarrier.compatStatusOffset(in: btf))
        let origAx = try #require(SyscallCarrier.origAxOffset(in: btf))
        #expect(origAx == 15 * 8, "orig_ax is pt_regs' sixteenth word on x86-64")
        let getppidNumber = 110
        let calls = 2500
        let enter = try SyscallCarrier(linking: .enter, numbers: [getppidNumber], compatStatusOffset: offset, onlyProcess: getpid())
        let exit = try SyscallCarrier(
          linking: .exit(origAxOffset: origAx), numbers: [getppidNumber], compatStatusOffset: offset, onlyProcess: getpid())
        Self.callGetppid(calls, childCalls: calls)
        #expect(try enter.count(of: getppidNumber) == UInt64(calls))
        #expect(try exit.count(of: getppidNumber) == UInt64(calls))
      #endif
    }
  }
}
