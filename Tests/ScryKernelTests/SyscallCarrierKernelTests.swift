import Glibc
import Testing

@testable import ScryKernel

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
}
