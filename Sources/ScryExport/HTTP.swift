import Glibc

/// The head of an HTTP/1.x request: what the server needs to route it and negotiate the format.
struct HTTPRequest {
  var method = ""
  var target = ""
  var headers: [(name: String, value: String)] = []
  /// The request line had a method, a target and an HTTP/1.x version.
  var isValid = false

  /// nil until the bytes hold the whole head (up to the blank line); a body is ignored.
  init?(parsing bytes: [UInt8]) {
    let end: [UInt8] = [13, 10, 13, 10]
    guard bytes.count >= 4, let headEnd = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == end })
    else { return nil }
    let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
    var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).makeIterator()
    let requestLine = lines.next()?.split(separator: " ") ?? []
    guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return }
    method = String(requestLine[0])
    target = String(requestLine[1])
    while let line = lines.next() {
      guard let colon = line.firstIndex(of: ":") else { return }
      headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingSpaces()))
    }
    isValid = true
  }

  func header(_ name: String) -> String? {
    let values = headers.filter { $0.name == name }.map(\.value)
    return values.isEmpty ? nil : values.joined(separator: ",")
  }
}

/// An answer; every one closes its connection.
struct HTTPResponse {
  var status: Int
  var body: [UInt8]
  var contentType = "text/plain; charset=utf-8"
  var headers: [String] = []
  /// HEAD: the headers of the GET answer without its body.
  var omitsBody = false

  init(status: Int, body: String, contentType: String = "text/plain; charset=utf-8", headers: [String] = []) {
    self.init(status: status, body: Array(body.utf8), contentType: contentType, headers: headers)
  }

  init(status: Int, body: [UInt8], contentType: String, headers: [String] = []) {
    self.status = status
    self.body = body
    self.contentType = contentType
    self.headers = headers
  }

  static func reason(_ status: Int) -> String {
    switch status {
    case 200: return "OK"
    case 400: return "Bad Request"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 431: return "Request Header Fields Too Large"
    default: return "Error"
    }
  }

  var bytes: [UInt8] {
    var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
    head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
    for header in headers { head += header + "\r\n" }
    head += "\r\n"
    return Array(head.utf8) + (omitsBody ? [] : body)
  }
}

/// A URL of the form `http://HOST[:PORT][/PATH]`: all an exporter's peer needs.
public struct HTTPURL: Sendable, CustomStringConvertible {
  public var endpoint: Endpoint
  public var path: String
  public let text: String

  public init(_ text: String, defaultPath: String) throws(ExportError) {
    self.text = text
    guard text.hasPrefix("http://") else {
      throw ExportError("'\(text)' is not an http:// URL (like http://127.0.0.1:9091); https is not supported")
    }
    let rest = text.dropFirst("http://".count)
    let slash = rest.firstIndex(of: "/") ?? rest.endIndex
    let authority = String(rest[..<slash])
    let path = String(rest[slash...])
    self.path = path.isEmpty || path == "/" ? defaultPath : path
    var host = authority
    var port: UInt16 = 80
    if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
      host = String(authority[authority.index(after: authority.startIndex)..<close])
      let after = authority[authority.index(after: close)...]
      if after.hasPrefix(":") {
        guard let p = UInt16(after.dropFirst()) else { throw ExportError("'\(text)': the port is not a number from 0 to 65535") }
        port = p
      }
    } else if let colon = authority.lastIndex(of: ":") {
      host = String(authority[..<colon])
      guard let p = UInt16(authority[authority.index(after: colon)...]) else {
        throw ExportError("'\(text)': the port is not a number from 0 to 65535")
      }
      port = p
    }
    guard !host.isEmpty else { throw ExportError("'\(text)' names no host") }
    endpoint = Endpoint(host: host, port: port)
  }

  public var description: String { text }
}

/// One request, one connection, bounded in time: for pushes from the event loop.
enum HTTPClient {
  /// Sends the request and returns the status code, or why it failed.
  static func send(
    _ method: String, to url: HTTPURL, contentType: String, body: [UInt8], timeoutMilliseconds: Int64 = 2000
  ) -> Result<Int, ExportError> {
    let deadline = Socket.nowMilliseconds() + timeoutMilliseconds
    let family: Int32
    let address: [UInt8]
    do {
      (family, address) = try url.endpoint.resolve(passive: false)
    } catch {
      return .failure(error)
    }
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(ExportError("cannot open a socket: \(Socket.errnoText())")) }
    defer { close(fd) }
    let connected = address.withUnsafeBytes {
      connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
    }
    if connected != 0 {
      guard errno == EINPROGRESS, Socket.wait(fd, events: Int16(POLLOUT), until: deadline) else {
        return .failure(ExportError(errno == EINPROGRESS ? "timed out connecting" : Socket.errnoText()))
      }
      var code: Int32 = 0
      var length = socklen_t(MemoryLayout<Int32>.size)
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
      if code != 0 { return .failure(ExportError(Socket.errnoText(code))) }
    }
    var head = "\(method) \(url.path) HTTP/1.1\r\nHost: \(url.endpoint)\r\nUser-Agent: scry\r\n"
    head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
    guard Socket.writeAll(fd, Array(head.utf8) + body, deadline: deadline) else {
      return .failure(ExportError("cannot send the request: \(Socket.errnoText())"))
    }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1024)
    while !response.contains(10) {
      guard Socket.wait(fd, events: Int16(POLLIN), until: deadline) else { return .failure(ExportError("no answer in time")) }
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
      if n <= 0 { break }
      response += buffer[0..<n]
    }
    let statusLine = String(decoding: response.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
    guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else {
      return .failure(ExportError("the answer is not HTTP"))
    }
    return .success(status)
  }
}
