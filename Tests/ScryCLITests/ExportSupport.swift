import Glibc
import Testing

/// A program running beside the test (Scry serving, Prometheus, the Pushgateway), stopped and
/// reaped by `stop()`; its output goes to files the test can read.
final class BackgroundProcess {
  let pid: pid_t
  let outputPath: String

  init(_ path: String, _ arguments: [String], tag: String) throws {
    outputPath = "/tmp/scry-export-\(tag)-\(getpid()).log"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    try #require(spawned == 0, "cannot start \(path): \(String(cString: strerror(spawned)))")
    self.pid = pid
  }

  /// Everything it wrote so far (all of it once stopped).
  var output: String { readWhole(outputPath) }

  deinit { unlink(outputPath) }

  /// The exit status once reaped; the pid is never signalled after that (it may be reused).
  private var exitStatus: Int32?

  /// Signals the process, waits for it and returns its exit status (-1 if a signal ended it).
  @discardableResult
  func stop(_ signal: Int32 = SIGINT) -> Int32 {
    if let exitStatus { return exitStatus }
    kill(pid, signal)
    return wait()
  }

  func wait() -> Int32 {
    if let exitStatus { return exitStatus }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let result = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    exitStatus = result
    return result
  }

}

/// A loopback port nobody listens on now (the kernel's choice for port 0).
func freeLoopbackPort() -> UInt16 {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var address = loopback(0)
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      _ = bind(fd, $0, length)
      _ = getsockname(fd, $0, &length)
    }
  }
  return UInt16(bigEndian: address.sin_port)
}

func loopback(_ port: UInt16) -> sockaddr_in {
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_port = port.bigEndian
  address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
  return address
}

/// `GET path` on 127.0.0.1:port; the status and body, or nil when nothing answers.
func httpGet(port: UInt16, _ path: String, accept: String? = nil) -> (status: Int, body: String)? {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var timeout = timeval(tv_sec: 5, tv_usec: 0)
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  var address = loopback(port)
  let connected = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
  }
  guard connected == 0 else { return nil }
  var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
  if let accept { request += "Accept: \(accept)\r\n" }
  request += "\r\n"
  _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
  var response: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = recv(fd, &buffer, buffer.count, 0)
    if n <= 0 { break }
    response += buffer[0..<n]
  }
  let text = String(decoding: response, as: UTF8.self)
  guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
  let statusLine = text[..<headEnd.lowerBound].split(separator: " ")
  guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
  var body = String(text[headEnd.upperBound...])
  // Prometheus answers queries in chunks: keep the JSON between the first '{' and the last '}'.
  if text[..<headEnd.lowerBound].lowercased().contains("transfer-encoding: chunked"),
    let open = body.firstIndex(of: "{"), let close = body.lastIndex(of: "}")
  {
    body = String(body[open...close])
  }
  return (status, body)
}

/// Sends `request` as is to 127.0.0.1:port, shuts the sending side, and returns all of the answer.
func rawExchange(port: UInt16, _ request: String) -> String {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  defer { close(fd) }
  var timeout = timeval(tv_sec: 5, tv_usec: 0)
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  var address = loopback(port)
  let connected = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
  }
  guard connected == 0 else { return "" }
  _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
  shutdown(fd, Int32(SHUT_WR))
  var response: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = recv(fd, &buffer, buffer.count, 0)
    if n <= 0 { break }
    response += buffer[0..<n]
  }
  return String(decoding: response, as: UTF8.self)
}

/// Polls `body` every 200 ms until it returns a value or `seconds` pass.
func eventually<T>(seconds: Double, _ body: () -> T?) -> T? {
  let rounds = Int(seconds * 5)
  for _ in 0..<rounds {
    if let value = body() { return value }
    usleep(200_000)
  }
  return nil
}

/// A program from Debian's packages the export tests need; nil (with a failure under
/// SCRY_REQUIRE_KERNEL=1, since CI installs it) when missing.
func requiredProgram(_ path: String, package: String) -> String? {
  if access(path, X_OK) == 0 { return path }
  print("skipping: \(path) is missing (apt-get install \(package))")
  if let required = getenv("SCRY_REQUIRE_KERNEL"), String(cString: required) == "1" {
    Issue.record("SCRY_REQUIRE_KERNEL=1 but \(path) is missing: the Makefile installs \(package)")
  }
  return nil
}
