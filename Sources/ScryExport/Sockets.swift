import Glibc

/// Why an exporter could not start or reach its peer; the text is what the user reads.
public struct ExportError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A TCP endpoint: host (a name or a numeric address) and port.
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
  public var host: String
  public var port: UInt16

  public init(host: String, port: UInt16) {
    self.host = host
    self.port = port
  }

  /// `--serve`'s `[ADDR:]PORT`: `9100`, `0.0.0.0:9100`, `[::1]:9100`; the address defaults to loopback.
  public static func listening(_ text: String) throws(ExportError) -> Endpoint {
    let usage = "--serve takes [ADDR:]PORT, a port from 0 to 65535 with an optional address, like 9100 or 0.0.0.0:9100"
    var host = "127.0.0.1"
    var portText = Substring(text)
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
      host = String(text[text.index(after: text.startIndex)..<close])
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":") else { throw ExportError("'\(text)': \(usage)") }
      portText = rest.dropFirst()
    } else if let colon = text.lastIndex(of: ":") {
      host = String(text[..<colon])
      portText = text[text.index(after: colon)...]
    }
    guard !host.isEmpty, let port = UInt16(portText) else { throw ExportError("'\(text)': \(usage)") }
    return Endpoint(host: host, port: port)
  }

  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

  /// The first address `host` resolves to, as a sockaddr.
  func resolve(passive: Bool) throws(ExportError) -> (family: Int32, address: [UInt8]) {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, String(port), &hints, &list)
    guard status == 0, let first = list else {
      throw ExportError("cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
    }
    defer { freeaddrinfo(list) }
    let bytes = UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen))
    return (first.pointee.ai_family, Array(bytes))
  }
}

enum Socket {
  static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

  /// A non-blocking listening socket on `endpoint`; the port actually bound (for port 0) comes back.
  static func listen(on endpoint: Endpoint) throws(ExportError) -> (fd: Int32, port: UInt16) {
    let (family, address) = try endpoint.resolve(passive: true)
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw ExportError("cannot open a socket: \(errnoText())") }
    var on: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    let bound = address.withUnsafeBytes {
      bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
    }
    if bound != 0 {
      let code = errno
      close(fd)
      let hint =
        code == EADDRINUSE
        ? " (another program listens there: choose another port)"
        : code == EADDRNOTAVAIL ? " (no interface of this machine has that address)" : ""
      throw ExportError("cannot listen on \(endpoint): \(errnoText(code))\(hint)")
    }
    guard Glibc.listen(fd, 64) == 0 else {
      let code = errno
      close(fd)
      throw ExportError("cannot listen on \(endpoint): \(errnoText(code))")
    }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let port = withUnsafeMutablePointer(to: &storage) { pointer -> UInt16 in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
      // sin_port and sin6_port sit at the same offset, in network order.
      return UInt16(bigEndian: UnsafeRawPointer(pointer).load(fromByteOffset: 2, as: UInt16.self))
    }
    return (fd, port)
  }

  /// Writes all of `bytes` to a non-blocking socket, waiting for room at most until `deadline`
  /// (CLOCK_MONOTONIC milliseconds): a peer that does not read cannot hold the loop for long.
  static func writeAll(_ fd: Int32, _ bytes: [UInt8], deadline: Int64) -> Bool {
    var offset = 0
    while offset < bytes.count {
      let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
      if n > 0 {
        offset += n
        continue
      }
      if n < 0 && errno == EINTR { continue }
      guard n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), wait(fd, events: Int16(POLLOUT), until: deadline) else {
        return false
      }
    }
    return true
  }

  /// Waits until `fd` has `events` or the deadline passes.
  static func wait(_ fd: Int32, events: Int16, until deadline: Int64) -> Bool {
    while true {
      let left = deadline - nowMilliseconds()
      if left <= 0 { return false }
      var entry = pollfd(fd: fd, events: events, revents: 0)
      let n = poll(&entry, 1, Int32(left))
      if n < 0 && errno == EINTR { continue }
      return n > 0 && entry.revents & events != 0
    }
  }

  static func nowMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
  }
}
