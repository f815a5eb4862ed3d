import Glibc

/// Runs a program to completion and captures its output; no shell involved.
struct Run {
  var status: Int32
  var stdout: String
  var stderr: String

  static func program(_ path: String, _ arguments: [String], environment: [String: String] = [:]) -> Run {
    var outPipe: [Int32] = [0, 0]
    var errPipe: [Int32] = [0, 0]
    pipe(&outPipe)
    pipe(&errPipe)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    posix_spawn_file_actions_addclose(&actions, outPipe[0])
    posix_spawn_file_actions_addclose(&actions, errPipe[0])
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    var env = environ
    var owned: [UnsafeMutablePointer<CChar>?] = []
    if !environment.isEmpty {
      var current: [String] = []
      var p = environ
      while let entry = p.pointee {
        current.append(String(cString: entry))
        p += 1
      }
      for (k, v) in environment { current.append("\(k)=\(v)") }
      owned = current.map { strdup($0) } + [nil]
      env = owned.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, env)
    posix_spawn_file_actions_destroy(&actions)
    close(outPipe[1])
    close(errPipe[1])
    defer {
      for p in argv { free(p) }
      for p in owned { free(p) }
    }
    guard spawned == 0 else {
      close(outPipe[0])
      close(errPipe[0])
      return Run(status: -1, stdout: "", stderr: "spawn failed: \(String(cString: strerror(spawned)))")
    }
    // Read both pipes without deadlocking on a full one.
    var out: [UInt8] = []
    var err: [UInt8] = []
    var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)]
    var open = 2
    var buffer = [UInt8](repeating: 0, count: 65536)
    while open > 0 {
      poll(&fds, 2, -1)
      for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
        let n = read(fds[i].fd, &buffer, buffer.count)
        if n <= 0 {
          close(fds[i].fd)
          fds[i].fd = -1
          open -= 1
        } else if i == 0 {
          out += buffer[0..<n]
        } else {
          err += buffer[0..<n]
        }
      }
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Run(status: code, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
  }
}

/// The scry binary under test: `SCRY_BIN` (set by `make test`) or the debug build next to the sources.
func scryBinary() -> String {
  if let path = getenv("SCRY_BIN") { return String(cString: path) }
  let file = #filePath
  let root = file[..<file.range(of: "/Tests/")!.lowerBound]
  return root + "/.build/debug/scry"
}

func scry(_ arguments: String...) -> Run { Run.program(scryBinary(), arguments) }

/// bpftrace, when installed: the reference the output must match.
func bpftraceBinary() -> String? {
  for path in ["/usr/bin/bpftrace", "/usr/sbin/bpftrace", "/usr/local/bin/bpftrace"] where access(path, X_OK) == 0 {
    return path
  }
  return nil
}

/// Whether tests that need root and tracefs may run; prints why not, and fails the caller when
/// SCRY_REQUIRE_KERNEL=1 (CI) says they must.
func kernelAvailable(_ what: String) -> Bool {
  var reason: String?
  if geteuid() != 0 { reason = "not root" } else if bpftraceBinary() == nil && what.contains("bpftrace") {
    reason = "bpftrace is not installed"
  } else if access("/sys/kernel/tracing/events", F_OK) != 0 && access("/sys/kernel/debug/tracing/events", F_OK) != 0 {
    // scry mounts tracefs itself; run it once so later checks see the mount.
    _ = Run.program(scryBinary(), ["-l", "tracepoint:sched:sched_switch"])
    if access("/sys/kernel/tracing/events", F_OK) != 0 { reason = "tracefs is not available" }
  }
  guard let reason else { return true }
  print("skipping \(what): \(reason)")
  if let required = getenv("SCRY_REQUIRE_KERNEL"), String(cString: required) == "1" {
    Issue.record("SCRY_REQUIRE_KERNEL=1 but \(what) cannot run: \(reason)")
  }
  return false
}

import Testing

extension String {
  func range(of needle: String) -> Range<String.Index>? {
    var i = startIndex
    while i < endIndex {
      if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
      i = index(after: i)
    }
    return nil
  }
  func contains(_ needle: String) -> Bool { range(of: needle) != nil }
}

/// Builds a C fixture of Tests/Fixtures with gcc (or cc) into `binary`; the compiler's errors on failure.
func buildFixture(_ name: String, into binary: String, flags: [String] = ["-O2"]) throws {
  let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
  let built = Run.program(cc, flags + ["-o", binary, scriptsRoot() + "/Tests/Fixtures/" + name])
  try #require(built.status == 0, "could not build \(name): \(built.stderr)")
}
