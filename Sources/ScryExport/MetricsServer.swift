import Glibc
import ScryKernel
import ScryRuntime

/// `scry --serve`: a small HTTP/1.1 server on the session's event loop. It answers `GET /metrics`
/// (and `HEAD`) with the maps in the format the `Accept` header asks for, and closes each
/// connection after its answer. It runs on the actions' thread between events, so a scrape reads
/// the maps with no lock and no torn histogram, and costs the events nothing when nobody scrapes.
/// Nothing it serves can change what is traced.
public final class MetricsServer: LoopService {
  public let endpoint: Endpoint
  /// The port bound (the one asked for, or the kernel's choice for port 0).
  public let port: UInt16
  private let listener: Int32
  private let epoll: Epoll
  private let exposition: Exposition
  /// Open connections and the request bytes read so far, in accept order.
  private var connections: [(fd: Int32, request: [UInt8])] = []
  private var ready = [UInt64](repeating: 0, count: 64)

  static let listenerToken = UInt64.max
  /// Connections beyond this close the oldest; a request larger than `maxRequest` gets 431.
  static let maxConnections = 32
  static let maxRequest = 16 * 1024

  public init(endpoint: Endpoint, exposition: Exposition) throws(ExportError) {
    let (fd, port) = try Socket.listen(on: endpoint)
    do {
      epoll = try Epoll()
      try epoll.add(fd, token: Self.listenerToken)
    } catch {
      close(fd)
      throw ExportError("cannot watch the listening socket: \(error)")
    }
    self.listener = fd
    self.port = port
    self.endpoint = endpoint
    self.exposition = exposition
  }

  deinit {
    for connection in connections { close(connection.fd) }
    close(listener)
  }

  public var pollFD: Int32 { epoll.fd }

  public var url: String { "http://\(Endpoint(host: endpoint.host, port: port))/metrics" }

  public func serve(snapshot: () -> MetricsSnapshot) {
    let count = epoll.wait(into: &ready, timeoutMilliseconds: 0)
    for token in ready.prefix(count) {
      if token == Self.listenerToken {
        acceptAll()
      } else {
        read(Int32(truncatingIfNeeded: token), snapshot: snapshot)
      }
    }
  }

  public func finish(snapshot: () -> MetricsSnapshot) {}

  private func acceptAll() {
    while true {
      // accept4 is not in Glibc's Swift module: accept, then the flags.
      let fd = accept(listener, nil, nil)
      if fd < 0 {
        if errno == EINTR { continue }
        return  // EAGAIN: none left; anything else (EMFILE…) is retried on the next wake.
      }
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
      if connections.count >= Self.maxConnections { drop(at: 0) }
      do {
        try epoll.add(fd, token: UInt64(fd))
        connections.append((fd, []))
      } catch {
        close(fd)
      }
    }
  }

  private func drop(at index: Int) {
    close(connections[index].fd)  // closing also leaves the epoll
    connections.remove(at: index)
  }

  private func read(_ fd: Int32, snapshot: () -> MetricsSnapshot) {
    guard let index = connections.firstIndex(where: { $0.fd == fd }) else { return }
    var buffer = [UInt8](repeating: 0, count: 4096)
    // A client may send its request and shut its side at once: answer what arrived before the end.
    var peerClosed = false
    while true {
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n > 0 {
        connections[index].request += buffer[0..<n]
        if connections[index].request.count > Self.maxRequest {
          respond(fd, HTTPResponse(status: 431, body: "request too large\n"))
          drop(at: index)
          return
        }
        continue
      }
      if n < 0 && errno == EINTR { continue }
      peerClosed = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break
    }
    if let request = HTTPRequest(parsing: connections[index].request) {
      respond(fd, answer(request, snapshot: snapshot))
      drop(at: index)
    } else if peerClosed {
      drop(at: index)
    }
  }

  func answer(_ request: HTTPRequest, snapshot: () -> MetricsSnapshot) -> HTTPResponse {
    guard request.isValid else { return HTTPResponse(status: 400, body: "bad request\n") }
    guard request.method == "GET" || request.method == "HEAD" else {
      return HTTPResponse(status: 405, body: "only GET and HEAD\n", headers: ["Allow: GET, HEAD"])
    }
    let path = request.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
    switch path {
    case "/metrics":
      let format = ExpositionFormat.negotiate(accept: request.header("accept"))
      var response = HTTPResponse(
        status: 200, body: exposition.renderBytes(snapshot(), format: format), contentType: format.contentType)
      response.omitsBody = request.method == "HEAD"
      return response
    case "/":
      return HTTPResponse(status: 200, body: "Scry exports its maps at /metrics\n")
    default:
      return HTTPResponse(status: 404, body: "not found: the metrics are at /metrics\n")
    }
  }

  private func respond(_ fd: Int32, _ response: HTTPResponse) {
    _ = Socket.writeAll(fd, response.bytes, deadline: Socket.nowMilliseconds() + 2000)
  }
}
