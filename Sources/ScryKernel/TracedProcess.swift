import CScrySystem
import Glibc

/// The process a trace is about: either one we launch (`-c`) or one that exists (`-p`).
///
/// A launched command is forked at once but held before `execvp` until `start()`, so
/// probes (and their `pid` filters) can be attached first and no event of the command
/// is missed. `exitFD` is a pidfd that becomes readable when the process exits.
/// The corresponding kernel calls are `fork(2)`, `execvp(3)`, `pidfd_open(2)`, `waitpid(2)`.
public final class TracedProcess {
  /// The traced process id.
  public let pid: Int32
  /// Whether we forked it (and so must reap it).
  public let isLaunched: Bool
  /// The command line, split as it was executed (empty when attached).
  public let arguments: [String]
  private let pidfd: OwnedFD
  /// Write end of the pipe the child waits on; -1 once started.
  private var gateFD: Int32
  /// Read end of the CLOEXEC pipe on which the child reports a failed exec; -1 once read.
  private var execStatusFD: Int32
  private var exitStatus: Int32?

  /// A pidfd readable when the process exits (for an `Epoll`).
  public var exitFD: Int32 { pidfd.raw }

  /// Forks `command` (split into words as a shell would, see `words(of:)`; no shell runs) held before exec.
  public init(launching command: String) throws {
    let words = try TracedProcess.words(of: command)
    guard !words.isEmpty else {
      throw KernelError(operation: "launch", subject: "''", errno: 0, explanation: "the command is empty")
    }
    arguments = words
    isLaunched = true
    var gate: [Int32] = [-1, -1]
    var status: [Int32] = [-1, -1]
    _ = try checkedCall("pipe2") { scry_pipe_cloexec(&gate) }
    do {
      _ = try checkedCall("pipe2") { scry_pipe_cloexec(&status) }
    } catch {
      close(gate[0])
      close(gate[1])
      throw error
    }
    // strdup'ed argv: the child only reads it between fork and exec.
    var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
    argv.append(nil)
    let child = argv.withUnsafeBufferPointer { scry_spawn_gated($0.baseAddress, gate[0], gate[1], status[1]) }
    let forkErrno = Glibc.errno
    for p in argv { free(p) }
    close(gate[0])
    close(status[1])
    guard child > 0 else {
      close(gate[1])
      close(status[0])
      throw KernelError(operation: "fork", subject: "'\(command)'", errno: forkErrno)
    }
    pid = child
    gateFD = gate[1]
    execStatusFD = status[0]
    let raw = scry_pidfd_open(child)
    guard raw >= 0 else {
      let e = Glibc.errno
      close(gate[1])
      close(status[0])
      var ignored: Int32 = 0
      _ = waitpid(child, &ignored, 0)  // closing the gate made the child exit
      throw KernelError(operation: "pidfd_open", subject: "pid \(child)", errno: e)
    }
    pidfd = OwnedFD(raw)
  }

  /// Follows the existing process `pid`; throws if there is no such process.
  public init(attachingTo pid: Int32) throws {
    guard pid > 0 else {
      throw KernelError(operation: "attach", subject: "pid \(pid)", errno: ESRCH, explanation: "not a valid pid")
    }
    let raw = scry_pidfd_open(pid)
    guard raw >= 0 else {
      let e = Glibc.errno
      throw KernelError(
        operation: "attach", subject: "pid \(pid)", errno: e,
        explanation: e == ESRCH ? "no such process" : nil)
    }
    pidfd = OwnedFD(raw)
    self.pid = pid
    isLaunched = false
    arguments = []
    gateFD = -1
    execStatusFD = -1
  }

  /// Lets a launched command exec; throws if the exec failed (e.g. no such program).
  /// Does nothing for an attached process or a second call.
  public func start() throws {
    guard gateFD >= 0 else { return }
    var go: UInt8 = 0x67
    let written = write(gateFD, &go, 1)
    let writeErrno = Glibc.errno
    close(gateFD)
    gateFD = -1
    if written != 1 {
      throw KernelError(operation: "start", subject: "'\(arguments[0])'", errno: writeErrno)
    }
    // EOF means exec succeeded (the CLOEXEC end closed); an int is the exec errno.
    var code: Int32 = 0
    var got = 0
    while true {
      got = Glibc.read(execStatusFD, &code, MemoryLayout<Int32>.size)
      if got < 0 && Glibc.errno == EINTR { continue }
      break
    }
    close(execStatusFD)
    execStatusFD = -1
    if got == MemoryLayout<Int32>.size {
      _ = finish()
      throw KernelError(
        operation: "exec", subject: "'\(arguments[0])'", errno: code,
        explanation: code == ENOENT ? "no such program in PATH" : "cannot run it")
    }
  }

  /// Reaps a launched child (waiting for it to exit) and returns its status as a shell
  /// would: the exit code, or 128 + the signal number. For an attached process, returns 0
  /// without waiting. Idempotent.
  @discardableResult
  public func finish() -> Int32 {
    if let exitStatus { return exitStatus }
    guard isLaunched else { return 0 }
    if gateFD >= 0 {  // never started: a closed gate makes the child exit 127
      close(gateFD)
      gateFD = -1
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      if Glibc.errno != EINTR {
        exitStatus = 0
        return 0
      }
    }
    let code = Self.shellStatus(status)
    exitStatus = code
    return code
  }

  /// Sends SIGTERM to a launched child still running (bpftrace ends its `-c` command so when the
  /// trace ends by exit() or a signal); an attached process is left alone.
  public func terminate() {
    guard isLaunched, exitStatus == nil, gateFD < 0, !hasExited else { return }
    kill(pid, SIGTERM)
  }

  /// Whether the process has already exited (the pidfd is readable), without blocking.
  public var hasExited: Bool {
    var p = pollfd(fd: pidfd.raw, events: Int16(POLLIN), revents: 0)
    return poll(&p, 1, 0) == 1
  }

  /// Decodes a `waitpid` status: exit code, or 128 + signal.
  static func shellStatus(_ status: Int32) -> Int32 {
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
  }

  deinit {
    if execStatusFD >= 0 { close(execStatusFD) }
    if isLaunched && exitStatus == nil {
      // A started child still running when the trace ends is stopped, not left behind.
      if gateFD < 0 && !hasExited { kill(pid, SIGTERM) }
      _ = finish()
    }
  }
}

extension TracedProcess {
  /// `command` split into words as `sh` splits a simple command: blanks separate words, '…' keeps
  /// everything literally, "…" keeps everything but `\` before `"`, `\`, `$`, `` ` `` or a newline, and
  /// `\` outside quotes keeps the next character. Nothing is expanded (no `$VAR`, globs or `~`).
  /// Throws when a quote is not closed.
  public static func words(of command: String) throws(KernelError) -> [String] {
    var words: [String] = []
    var word: [Character] = []
    var inWord = false
    var iterator = command.makeIterator()
    func unterminated(_ what: String) -> KernelError {
      KernelError(operation: "launch", subject: "'\(command)'", errno: 0, explanation: "\(what) is not closed")
    }
    while let c = iterator.next() {
      switch c {
      case " ", "\t", "\n":
        if inWord { words.append(String(word)) }
        word = []
        inWord = false
      case "'":
        inWord = true
        while true {
          guard let q = iterator.next() else { throw unterminated("a ' quote") }
          if q == "'" { break }
          word.append(q)
        }
      case "\"":
        inWord = true
        while true {
          guard let q = iterator.next() else { throw unterminated("a \" quote") }
          if q == "\"" { break }
          if q == "\\" {
            guard let escaped = iterator.next() else { throw unterminated("a \" quote") }
            if !"\"\\$`\n".contains(escaped) { word.append(q) }
            if escaped != "\n" { word.append(escaped) }
            continue
          }
          word.append(q)
        }
      case "\\":
        inWord = true
        if let escaped = iterator.next(), escaped != "\n" { word.append(escaped) }
      default:
        inWord = true
        word.append(c)
      }
    }
    if inWord { words.append(String(word)) }
    return words
  }
}
