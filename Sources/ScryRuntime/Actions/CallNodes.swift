import Glibc
import ScryLanguage
import ScryPlan

/// `printf(fmt, args…)`, and the formatting half of `cat` and `system`.
final class PrintfStatement: StmtNode {
  let printf: CompiledPrintf
  let arguments: TupleValue
  let scratch: Scratch
  let effect: FormattedEffect
  let text: OutputBuffer?
  /// What `cat` and `system` print, gathered for a json record.
  let record = OutputBuffer(capturing: ())
  init(printf: CompiledPrintf, arguments: TupleValue, effect: FormattedEffect) {
    self.printf = printf
    self.arguments = arguments
    self.scratch = Scratch(arguments.byteSize)
    self.effect = effect
    // `cat` and `system` format a path or command line, not output.
    self.text = effect == .print ? nil : OutputBuffer(capturing: ())
  }
  override func exec(_ m: Machine) -> Flow {
    arguments.eval(m, into: scratch.pointer)
    guard let text else {
      printf.write(arguments: scratch.pointer, to: m.output)
      return .next
    }
    text.reset()
    printf.write(arguments: scratch.pointer, to: text)
    let line = text.capturedString
    switch effect {
    case .print: break
    case .catFile:
      m.output.record("cat", scratch: record) { SideEffects.cat(path: line, limit: m.catBytesMax, to: $0) }
    case .runCommand: m.output.record("syscall", scratch: record) { SideEffects.system(line, to: $0) }
    }
    return .next
  }
}

/// `print(@map[, top[, div]])`.
final class PrintMapStatement: StmtNode {
  unowned(unsafe) let map: MapStorage
  let top: IntNode?
  let divisor: IntNode?
  init(map: MapStorage, top: IntNode?, divisor: IntNode?) {
    self.map = map
    self.top = top
    self.divisor = divisor
  }
  override func exec(_ m: Machine) -> Flow {
    m.foldCounters?(m)
    let top = Int(clamping: Int64(bitPattern: self.top?.eval(m) ?? 0))
    let divisor = Int(clamping: Int64(bitPattern: self.divisor?.eval(m) ?? 1))
    MapPrinter.print(map, top: top, divisor: max(divisor, 1), to: m.output)
    return .next
  }
}

/// `print(value)`: a value on its own line.
final class PrintValueStatement: StmtNode {
  let value: BytesNode
  let scratch: Scratch
  init(_ value: BytesNode) {
    self.value = value
    self.scratch = Scratch(value.byteSize)
  }
  override func exec(_ m: Machine) -> Flow {
    value.eval(m, into: scratch.pointer)
    ValueFormatter.printValue(scratch.pointer, type: value.type, to: m.output)
    return .next
  }
}

final class ExitStatement: StmtNode {
  let code: IntNode?
  init(code: IntNode?) { self.code = code }
  override func exec(_ m: Machine) -> Flow {
    m.exitRequested = true
    m.exitCode = Int32(truncatingIfNeeded: Int64(bitPattern: code?.eval(m) ?? 0))
    // bpftrace stops the probe at exit(): nothing after it in the block runs.
    return .returnProbe
  }
}

/// `time([fmt])`: the wall-clock time, formatted with strftime.
final class TimeStatement: StmtNode {
  let format: [CChar]
  init(format: [UInt8]) { self.format = format.map { CChar(bitPattern: $0) } + [0] }
  let record = OutputBuffer(capturing: ())
  override func exec(_ m: Machine) -> Flow {
    var seconds = time(nil)
    var parts = tm()
    localtime_r(&seconds, &parts)
    var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    withUnsafeMutableBytes(of: &buffer) { bytes in
      let n = format.withUnsafeBufferPointer {
        strftime(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count, $0.baseAddress!, &parts)
      }
      m.output.record("time", scratch: record) { $0.appendText(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) }
    }
    return .next
  }
}

/// `signal(SIG)`: sends a signal to the task that caused the event (needs `--unsafe`).
final class SignalStatement: StmtNode {
  let signal: IntNode
  init(signal: IntNode) { self.signal = signal }
  override func exec(_ m: Machine) -> Flow {
    guard m.allowsUnsafe, m.pid != 0 else { return .next }
    _ = kill(pid_t(bitPattern: m.pid), Int32(truncatingIfNeeded: signal.eval(m)))
    return .next
  }
}

/// `unwatch(addr)`: asks the run to close the watchpoints on the address, which it does before its
/// next drain (bpftrace's is asynchronous too: the event's own breakpoint may fire again meanwhile).
final class UnwatchStatement: StmtNode {
  let address: IntNode
  init(address: IntNode) { self.address = address }
  override func exec(_ m: Machine) -> Flow {
    m.unwatchedAddresses.append(address.eval(m))
    return .next
  }
}

/// Effects outside Scry that `cat` and `system` have; not on any hot path.
enum SideEffects {
  /// Copies at most `limit` bytes of the file at `path` into `output`.
  static func cat(path: String, limit: Int, to output: OutputBuffer) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      output.flush()
      let message = "ERROR: failed to open file '\(path)': \(String(cString: strerror(errno)))\n"
      _ = message.withCString { write(2, $0, strlen($0)) }
      return
    }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    var left = limit
    while left > 0 {
      let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, Swift.min($0.count, left)) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      left -= n
      buffer.withUnsafeBytes { output.appendText(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
  }

  /// Runs `command` with /bin/sh and copies what it prints into `output`, so it lands in order
  /// with the rest and in the `-o` file, as bpftrace's popen does.
  static func system(_ command: String, to output: OutputBuffer) {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { return }
    // Neither end may leak into the command or into later children.
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    let pid = fork()
    if pid == 0 {
      // The command gets the signals Scry blocked for its signalfd.
      var none = sigset_t()
      sigemptyset(&none)
      sigprocmask(SIG_SETMASK, &none, nil)
      dup2(ends[1], 1)
      let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
      execv("/bin/sh", argv)
      _exit(127)
    }
    close(ends[1])
    var buffer = [UInt8](repeating: 0, count: 4096)
    while pid > 0 {
      let n = buffer.withUnsafeMutableBytes { read(ends[0], $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      buffer.withUnsafeBytes { output.appendText(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
    close(ends[0])
    if pid > 0 {
      var status: Int32 = 0
      while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
  }
}
