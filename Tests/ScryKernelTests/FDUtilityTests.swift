import Glibc
import Testing

@testable import ScryKernel

extension KernelSuites {
  @Suite("fd utilities")
  struct FDUtilityTests {
    @Test func epollReportsTokens() throws {
      let before = openFDs()
      do {
        let epoll = try Epoll()
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer {
          close(fds[0])
          close(fds[1])
        }
        try epoll.add(fds[0], token: 42)
        var tokens = [UInt64](repeating: 0, count: 8)
        #expect(epoll.wait(into: &tokens, timeoutMilliseconds: 0) == 0)
        var byte: UInt8 = 1
        #expect(write(fds[1], &byte, 1) == 1)
        #expect(epoll.wait(into: &tokens, timeoutMilliseconds: 1000) == 1)
        #expect(tokens[0] == 42)
      }
      #expect(openFDs() == before)
    }

    @Test func timerFiresAfterOnePeriod() throws {
      let timer = try TimerFD(periodNanoseconds: 5_000_000)
      #expect(timer.read() == 0)
      let epoll = try Epoll()
      try epoll.add(timer.fd, token: 7)
      var tokens = [UInt64](repeating: 0, count: 4)
      #expect(epoll.wait(into: &tokens, timeoutMilliseconds: 1000) == 1)
      #expect(timer.read() >= 1)
      #expect(throws: KernelError.self) { try TimerFD(periodNanoseconds: 0) }
    }

    @Test func signalArrivesThroughFD() throws {
      let signals = try SignalFD(blocking: [SIGUSR1])
      #expect(signals.read() == nil)
      // Thread-directed: the test runner has other threads that do not block SIGUSR1.
      pthread_kill(pthread_self(), SIGUSR1)
      let epoll = try Epoll()
      try epoll.add(signals.fd, token: 1)
      var tokens = [UInt64](repeating: 0, count: 4)
      #expect(epoll.wait(into: &tokens, timeoutMilliseconds: 1000) == 1)
      #expect(signals.read() == SIGUSR1)
    }

    @Test func launchedProcessWaitsForStart() throws {
      let process = try TracedProcess(launching: "sh -c  exit\u{20}3")
      #expect(process.arguments == ["sh", "-c", "exit", "3"])
      // Held at the gate: not exited yet.
      usleep(50_000)
      #expect(!process.hasExited)
      try process.start()
      let epoll = try Epoll()
      try epoll.add(process.exitFD, token: 9)
      var tokens = [UInt64](repeating: 0, count: 4)
      #expect(epoll.wait(into: &tokens, timeoutMilliseconds: 5000) == 1)
      // `sh -c exit 3` runs `exit` with $0 = 3: status 0.
      #expect(process.finish() == 0)
      let three = try TracedProcess(launching: "false")
      try three.start()
      #expect(three.finish() == 1)
    }

    @Test func missingProgramFailsAtStart() throws {
      let process = try TracedProcess(launching: "/nonexistent/scry-no-such-program x")
      #expect(throws: KernelError.self) { try process.start() }
      #expect(process.finish() == 127)
    }

    @Test func unstartedProcessIsReaped() throws {
      let before = openFDs()
      do {
        let process = try TracedProcess(launching: "true")
        #expect(process.pid > 0)
      }
      #expect(openFDs() == before)
    }

    @Test func attachToExistingAndMissingPid() throws {
      let me = try TracedProcess(attachingTo: getpid())
      #expect(me.pid == getpid())
      #expect(!me.hasExited)
      do {
        _ = try TracedProcess(attachingTo: 0x3fff_fff0)
        Issue.record("attaching to a missing pid should throw")
      } catch let error as KernelError {
        #expect(error.description.contains("no such process"))
      }
    }
  }
}

extension KernelSuites {
  @Suite("cgroup hierarchies")
  struct CgroupHierarchyTests {
    @Test func namesHierarchiesAsBpftraceDoes() {
      let mountInfo = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
        38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
        42 23 0:38 / /mnt/again rw,relatime - cgroup2 cgroup2 rw
        """
      let found = CgroupPaths.mountedHierarchies(mountInfo: mountInfo)
      #expect(found.map(\.name) == ["unified", "blkio", "cpu,cpuacct", "systemd"])
      #expect(found.first?.mountPoint == "/sys/fs/cgroup/unified")
    }
  }
}
