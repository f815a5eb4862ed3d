import Glibc

/// Runs a program on a pseudo-terminal, as a user at a terminal would: the child is a session
/// leader whose controlling terminal is the pty, so Ctrl-C (byte 3) reaches it as SIGINT.
final class PseudoTerminal {
  let master: Int32
  let pid: pid_t
  /// glibc's POSIX_SPAWN_SETSID (2.26+), which Swift's Glibc module does not export.
  static let spawnSetsid: Int32 = 0x80
  /// Everything the program wrote so far.
  private(set) var output: [UInt8] = []
  private var exitStatus: Int32?

  var text: String { String(decoding: output, as: UTF8.self) }

  init?(_ path: String, _ arguments: [String], environment: [String: String] = [:]) {
    // posix_openpt/unlockpt/ptsname are hidden from Swift's Glibc module (they need _XOPEN_SOURCE):
    // the same through /dev/ptmx and its ioctls (TIOCSPTLCK, TIOCGPTN); grantpt is a no-op on devpts.
    let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
    guard master >= 0 else { return nil }
    var unlock: Int32 = 0
    var number: UInt32 = 0
    guard ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
      close(master)
      return nil
    }
    let slavePath = "/dev/pts/\(number)"
    var size = winsize(ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0)
    _ = ioctl(master, UInt(TIOCSWINSZ), &size)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    var empty = sigset_t()
    sigemptyset(&empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    // setsid first, then opening the pty (without O_NOCTTY) makes it the controlling terminal.
    posix_spawnattr_setflags(&attributes, Int16(Self.spawnSetsid | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 0, slavePath, O_RDWR, 0)
    posix_spawn_file_actions_adddup2(&actions, 0, 1)
    posix_spawn_file_actions_adddup2(&actions, 0, 2)
    var env: [String] = []
    var p = environ
    while let entry = p.pointee {
      let item = String(cString: entry)
      if !environment.keys.contains(where: { item.hasPrefix($0 + "=") }) { env.append(item) }
      p += 1
    }
    for (k, v) in environment { env.append("\(k)=\(v)") }
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer {
      for p in argv { free(p) }
      for p in envp { free(p) }
      posix_spawn_file_actions_destroy(&actions)
      posix_spawnattr_destroy(&attributes)
    }
    var child: pid_t = 0
    guard posix_spawn(&child, path, &actions, &attributes, argv, envp) == 0 else {
      close(master)
      return nil
    }
    self.master = master
    self.pid = child
  }

  deinit {
    if exitStatus == nil {
      kill(pid, SIGKILL)
      var status: Int32 = 0
      waitpid(pid, &status, 0)
    }
    close(master)
  }

  func send(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let n = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
      if n <= 0 { return }
      bytes = bytes.dropFirst(n)
    }
  }

  /// Reads what is available within `milliseconds`; false once the program closed the terminal.
  @discardableResult
  func read(milliseconds: Int32) -> Bool {
    var fds = [pollfd(fd: master, events: Int16(POLLIN), revents: 0)]
    guard poll(&fds, 1, milliseconds) > 0 else { return true }
    var buffer = [UInt8](repeating: 0, count: 65536)
    let n = Glibc.read(master, &buffer, buffer.count)
    if n <= 0 { return false }
    output += buffer[0..<n]
    return true
  }

  /// Waits until the output after `from` contains `needle`; returns where it ends (nil on timeout).
  @discardableResult
  func expect(_ needle: String, after from: Int = 0, seconds: Double = 5) -> Int? {
    let deadline = now() + seconds
    let pattern = Array(needle.utf8)
    while true {
      if let end = Self.find(pattern, in: output, from: from) { return end }
      if now() > deadline { return nil }
      if !read(milliseconds: 20) { return Self.find(pattern, in: output, from: from) }
    }
  }

  /// Lets the program run for a while, collecting its output.
  func pause(seconds: Double) {
    let deadline = now() + seconds
    while now() < deadline { if !read(milliseconds: 10) { break } }
  }

  /// Waits for the program to exit, reading its last output; nil if it does not within `seconds`.
  func waitForExit(seconds: Double = 5) -> Int32? {
    if let exitStatus { return exitStatus }
    let deadline = now() + seconds
    while now() < deadline {
      _ = read(milliseconds: 10)
      var status: Int32 = 0
      if waitpid(pid, &status, WNOHANG) == pid {
        while read(milliseconds: 10), poll(nil, 0, 0) >= 0 {
          var fds = [pollfd(fd: master, events: Int16(POLLIN), revents: 0)]
          if poll(&fds, 1, 0) <= 0 { break }
        }
        exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return exitStatus
      }
    }
    return nil
  }

  func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  static func find(_ pattern: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
    guard !pattern.isEmpty, bytes.count >= pattern.count else { return nil }
    var i = max(0, from)
    while i + pattern.count <= bytes.count {
      if bytes[i] == pattern[0] && Array(bytes[i..<i + pattern.count]) == pattern { return i + pattern.count }
      i += 1
    }
    return nil
  }
}
