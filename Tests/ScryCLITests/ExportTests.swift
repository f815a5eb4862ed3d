import Foundation
import Glibc
import Testing

/// `--serve`, `--push` and `--otlp` against the real thing: Prometheus and the Pushgateway from
/// Debian's packages, an OTLP/HTTP request recorded by a loopback listener, and real tracepoints
/// counting a workload's exact number of getppid calls.
@Suite(.serialized) struct ExportTests {
  /// The workload under a name of its own, so its comm is the label to look for.
  static let workloadName = "scrywl\(getpid() % 100_000)"
  static let calls = 3000

  /// Builds the workload for one test; the caller removes it (`defer { unlink(workload) }`).
  func workloadOrSkip() -> String? {
    guard kernelAvailable("export tests") else { return nil }
    let binary = "/tmp/" + Self.workloadName
    guard (try? buildFixture("workload.c", into: binary)) != nil else {
      Issue.record("could not build the workload with cc")
      return nil
    }
    return binary
  }

  static var script: String {
    "tracepoint:syscalls:sys_enter_getppid /comm == \"\(workloadName)\"/ { @calls[comm] = count(); @lat = hist(nsecs % 4096); }"
  }

  @Test func prometheusScrapesExactCountsAndAHistogram() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    guard let prometheus = requiredProgram("/usr/bin/prometheus", package: "prometheus") else { return }
    let port = freeLoopbackPort()
    // The label named by the script's annotation.
    let scry = try BackgroundProcess(
      scryBinary(), ["-q", "--serve", String(port), "-e", "// scry:labels @calls=comm\n" + Self.script], tag: "serve")
    defer { scry.stop() }
    // The listener answers once the probes are attached and the loop runs.
    try #require(eventually(seconds: 30) { httpGet(port: port, "/metrics") } != nil, "\(scry.output)")
    let run = Run.program(workload, ["syscall", String(Self.calls)])
    try #require(run.status == 0, "\(run.stderr)")

    let directory = "/tmp/scry-prometheus-\(getpid())"
    mkdir(directory, 0o755)
    defer { _ = Run.program("/bin/rm", ["-rf", directory]) }
    let config = """
      global:
        scrape_interval: 1s
        scrape_timeout: 1s
      scrape_configs:
        - job_name: scry
          static_configs:
            - targets: ['127.0.0.1:\(port)']

      """
    try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
    let webPort = freeLoopbackPort()
    let server = try BackgroundProcess(
      prometheus,
      [
        "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
        "--web.listen-address=127.0.0.1:\(webPort)",
      ], tag: "prometheus")
    defer { server.stop(SIGTERM) }

    let name = Self.workloadName
    let count = eventually(seconds: 60) { query(webPort, "scry_calls_total{comm=\"\(name)\"}").flatMap { $0 == "\(Self.calls)" ? $0 : nil } }
    #expect(count == "\(Self.calls)", "last answer: \(String(describing: query(webPort, "scry_calls_total"))); \(server.output)")
    #expect(query(webPort, "scry_lat_count") == "\(Self.calls)")
    #expect(query(webPort, "scry_lat_bucket{le=\"+Inf\"}") == "\(Self.calls)")
    // Every value of nsecs % 4096 is below 4096: the bucket up to 4095 holds them all. Prometheus
    // asked for OpenMetrics, whose bounds are floats.
    #expect(query(webPort, "scry_lat_bucket{le=\"4095.0\"}") == "\(Self.calls)")
    #expect(query(webPort, "scry_lat_bucket{le=\"1023.0\"}").flatMap { Int($0) }.map { $0 < Self.calls } == true)
    #expect(query(webPort, "scry_probes_attached") == "1")
    #expect(query(webPort, "scry_events_total").flatMap { Int($0) }.map { $0 >= Self.calls } == true)
    // The scrape itself was healthy.
    #expect(query(webPort, "up{job=\"scry\"}") == "1")
  }

  /// The value of a PromQL query's first sample, through Prometheus's HTTP API.
  func query(_ port: UInt16, _ promql: String) -> String? {
    let encoded = promql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? promql
    guard let (status, body) = httpGet(port: port, "/api/v1/query?query=" + encoded), status == 200,
      let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
      let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
      let value = result.first?["value"] as? [Any], value.count == 2
    else { return nil }
    return value[1] as? String
  }

  @Test func scrapeAnswersInTheNegotiatedFormat() throws {
    guard kernelAvailable("export tests") else { return }
    let port = freeLoopbackPort()
    let scry = try BackgroundProcess(scryBinary(), ["-q", "--serve", String(port), "-e", Self.script], tag: "format")
    defer { scry.stop() }
    let text = try #require(eventually(seconds: 30) { httpGet(port: port, "/metrics") }, "\(scry.output)")
    #expect(text.status == 200)
    #expect(text.body.contains("# TYPE scry_lat histogram\n"))
    #expect(!text.body.contains("# EOF"))
    let open = try #require(httpGet(port: port, "/metrics", accept: "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"))
    #expect(open.body.hasSuffix("# EOF\n"))
    #expect(open.body.contains("# TYPE scry_events counter\nscry_events_total "))
    #expect(httpGet(port: port, "/other")?.status == 404)
    // A request sent whole with the sending side shut at once is still answered.
    let old = rawExchange(port: port, "GET /metrics HTTP/1.0\r\n\r\n")
    #expect(old.hasPrefix("HTTP/1.1 200 OK\r\n") && old.contains("scry_events_total"), "\(old)")
    let head = rawExchange(port: port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.hasSuffix("\r\n\r\n") && !head.contains("scry_events"), "\(head)")
    #expect(rawExchange(port: port, "nonsense\r\n\r\n").hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    #expect(rawExchange(port: port, "DELETE /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
    // Nothing at all, then the end: no answer, and the server goes on.
    #expect(rawExchange(port: port, "") == "")
    #expect(httpGet(port: port, "/metrics")?.status == 200)
  }

  @Test func histogramsAndAveragesCarryExactSumsAndBounds() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    let port = freeLoopbackPort()
    let program =
      "tracepoint:syscalls:sys_enter_getppid /comm == \"\(Self.workloadName)\"/ { @h = hist(3); @l = lhist(12, 0, 20, 5); @a = avg(4); @m = max(9); }"
    let scry = try BackgroundProcess(scryBinary(), ["-q", "--serve", String(port), "-e", program], tag: "sums")
    defer { scry.stop() }
    try #require(eventually(seconds: 30) { httpGet(port: port, "/metrics") } != nil, "\(scry.output)")
    #expect(Run.program(workload, ["syscall", "100"]).status == 0)
    let body = eventually(seconds: 10) { httpGet(port: port, "/metrics").flatMap { $0.body.contains("scry_h_count 100\n") ? $0.body : nil } }
    let text = try #require(body)
    for line in [
      "scry_h_bucket{le=\"1\"} 0", "scry_h_bucket{le=\"3\"} 100", "scry_h_bucket{le=\"+Inf\"} 100", "scry_h_sum 300",
      "scry_l_bucket{le=\"9\"} 0", "scry_l_bucket{le=\"14\"} 100", "scry_l_bucket{le=\"19\"} 100", "scry_l_sum 1200",
      "scry_l_count 100", "scry_a_sum 400", "scry_a_count 100", "scry_m 9",
    ] {
      #expect(text.contains(line + "\n"), "\(line) in \(text)")
    }
    // The printed histograms at exit are bpftrace's, untouched by the running sum.
    #expect(scry.stop() == 0)
    let output = scry.output
    #expect(output.contains("@h: \n[2, 4)               100 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n"), "\(output)")
  }

  @Test func pushgatewayReceivesTheFinalCounts() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    guard let gateway = requiredProgram("/usr/bin/prometheus-pushgateway", package: "prometheus-pushgateway") else { return }
    let port = freeLoopbackPort()
    let server = try BackgroundProcess(gateway, ["--web.listen-address=127.0.0.1:\(port)"], tag: "pushgateway")
    defer { server.stop(SIGTERM) }
    try #require(eventually(seconds: 30) { httpGet(port: port, "/metrics") } != nil, "\(server.output)")
    let run = scry(
      "-q", "--push", "http://127.0.0.1:\(port)", "--push-interval", "60", "-c", "\(workload) syscall \(Self.calls)", "-e",
      Self.script)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(!run.stderr.contains("WARNING"), "\(run.stderr)")
    let metrics = try #require(httpGet(port: port, "/metrics")).body
    let line = metrics.split(separator: "\n").first {
      $0.hasPrefix("scry_calls_total{") && $0.contains("key=\"\(Self.workloadName)\"") && $0.contains("job=\"scry\"")
    }
    #expect(line?.split(separator: " ").last == "\(Self.calls)", "\(metrics)")
    #expect(metrics.contains("scry_lat_count{instance=\"\",job=\"scry\"} \(Self.calls)\n"), "\(metrics)")
  }

  @Test func aGatewayThatIsDownIsReportedOnceAndTracingGoesOn() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    let port = freeLoopbackPort()
    let run = scry(
      "--push", "http://127.0.0.1:\(port)", "--otlp", "http://127.0.0.1:\(port)/v1/metrics", "--push-interval", "0.05",
      // Half a second of pushes every 50 ms after the workload: ten failures, one warning each.
      "-c", "/bin/sh -c '\(workload) syscall 20000; sleep 0.5'", "-e",
      "tracepoint:syscalls:sys_enter_getppid /comm == \"\(Self.workloadName)\"/ { @c = count(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("@c: 20000\n"), "\(run.stdout)")
    #expect(run.stderr.components(separatedBy: "cannot push metrics to").count == 2, "\(run.stderr)")
    #expect(run.stderr.components(separatedBy: "cannot send OTLP metrics to").count == 2, "\(run.stderr)")
    #expect(run.stderr.contains("Connection refused"), "\(run.stderr)")
  }

  @Test func otlpRequestCarriesTheDataPoints() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = loopback(0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        _ = bind(listener, $0, length)
        _ = getsockname(listener, $0, &length)
      }
    }
    listen(listener, 8)
    let port = UInt16(bigEndian: address.sin_port)
    let scry = try BackgroundProcess(
      scryBinary(),
      [
        "-q", "--otlp", "http://127.0.0.1:\(port)", "--push-interval", "60", "-c", "\(workload) syscall \(Self.calls)",
        "-e", Self.script,
      ], tag: "otlp")
    // The push at the end of the run: one POST, answered 200.
    var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
    try #require(poll(&entry, 1, 60_000) == 1, "no request came: \(scry.output)")
    let connection = accept(listener, nil, nil)
    defer { close(connection) }
    let (head, body) = readRequest(connection)
    _ = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8).withUnsafeBytes { send(connection, $0.baseAddress, $0.count, 0) }
    #expect(scry.wait() == 0)
    #expect(head.hasPrefix("POST /v1/metrics HTTP/1.1\r\n"), "\(head)")
    #expect(head.lowercased().contains("content-type: application/json"))

    let json = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
    let resource = try #require((json["resourceMetrics"] as? [[String: Any]])?.first)
    let scope = try #require((resource["scopeMetrics"] as? [[String: Any]])?.first)
    let metrics = try #require(scope["metrics"] as? [[String: Any]])
    let calls = try #require(metrics.first { $0["name"] as? String == "scry_calls" }?["sum"] as? [String: Any])
    #expect(calls["isMonotonic"] as? Bool == true)
    #expect(calls["aggregationTemporality"] as? Int == 2)
    let point = try #require((calls["dataPoints"] as? [[String: Any]])?.first)
    let attribute = try #require((point["attributes"] as? [[String: Any]])?.first)
    #expect(attribute["key"] as? String == "key")
    #expect((attribute["value"] as? [String: Any])?["stringValue"] as? String == Self.workloadName)
    #expect(point["asInt"] as? String == "\(Self.calls)")
    let lat = try #require(metrics.first { $0["name"] as? String == "scry_lat" }?["histogram"] as? [String: Any])
    let histogram = try #require((lat["dataPoints"] as? [[String: Any]])?.first)
    #expect(histogram["count"] as? String == "\(Self.calls)")
    let buckets = (histogram["bucketCounts"] as? [String] ?? []).compactMap { Int($0) }
    let bounds = histogram["explicitBounds"] as? [Double] ?? []
    #expect(buckets.reduce(0, +) == Self.calls)
    #expect(buckets.count == bounds.count + 1)
  }

  /// The head and body of one HTTP request with a Content-Length.
  func readRequest(_ fd: Int32) -> (head: String, body: [UInt8]) {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    while true {
      let text = String(decoding: bytes, as: UTF8.self)
      if let end = text.range(of: "\r\n\r\n") {
        let head = String(text[..<end.lowerBound])
        let lengthLine = head.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
        let length = lengthLine.flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        let bodyStart = text.utf8.distance(from: text.startIndex, to: end.upperBound)
        if bytes.count - bodyStart >= length { return (head, Array(bytes[bodyStart..<bodyStart + length])) }
      }
      let n = recv(fd, &buffer, buffer.count, 0)
      if n <= 0 { return (text, []) }
      bytes += buffer[0..<n]
    }
  }

  @Test func sighupReloadsTheScriptAndKeepsTheListenerAndTheCounts() throws {
    guard let workload = workloadOrSkip() else { return }
    defer { unlink(workload) }
    let script = "/tmp/scry-reload-\(getpid()).trace"
    defer { unlink(script) }
    let filter = "tracepoint:syscalls:sys_enter_getppid /comm == \"\(Self.workloadName)\"/"
    try (filter + " { @calls = count(); }\n").write(toFile: script, atomically: true, encoding: .utf8)
    let port = freeLoopbackPort()
    let out = "/tmp/scry-reload-\(getpid()).out"
    defer { unlink(out) }
    let scry = try BackgroundProcess(scryBinary(), ["-o", out, "--serve", String(port), script], tag: "reload")
    try #require(eventually(seconds: 30) { httpGet(port: port, "/metrics") } != nil, "\(scry.output)")
    #expect(Run.program(workload, ["syscall", "100"]).status == 0)

    try (filter + " { @calls = count(); @more = count(); }\n").write(toFile: script, atomically: true, encoding: .utf8)
    kill(scry.pid, SIGHUP)
    // The same listener answers with the new program's map once it is attached.
    try #require(eventually(seconds: 30) { httpGet(port: port, "/metrics").flatMap { $0.body.contains("scry_more") ? $0 : nil } } != nil)
    #expect(Run.program(workload, ["syscall", "50"]).status == 0)
    let reloaded = eventually(seconds: 10) { httpGet(port: port, "/metrics").flatMap { $0.body.contains("scry_more_total 50\n") ? $0.body : nil } }
    #expect(reloaded?.contains("scry_calls_total 150\n") == true, "\(String(describing: reloaded))")

    // A script that no longer compiles is reported; the previous program goes on.
    try (filter + " { @calls = count( }\n").write(toFile: script, atomically: true, encoding: .utf8)
    kill(scry.pid, SIGHUP)
    usleep(500_000)
    let attached = eventually(seconds: 30) { httpGet(port: port, "/metrics").flatMap { $0.body.contains("scry_probes_attached 1\n") ? $0 : nil } }
    #expect(attached != nil)
    #expect(Run.program(workload, ["syscall", "50"]).status == 0)
    let kept = eventually(seconds: 10) { httpGet(port: port, "/metrics").flatMap { $0.body.contains("scry_calls_total 200\n") ? $0.body : nil } }
    #expect(kept?.contains("scry_more_total 100\n") == true, "\(String(describing: kept))")
    #expect(scry.stop() == 0)
    let output = scry.output
    #expect(output.contains("error: expected an expression"), "\(output)")
    #expect(output.contains("the previous program goes on"), "\(output)")
    // -o keeps what each program wrote: three attaches, then the maps at the end.
    let written = readWhole(out)
    #expect(written.components(separatedBy: "Attaching 1 probe...").count == 4, "\(written)")
    #expect(written.hasSuffix("@calls: 200\n@more: 100\n"), "\(written)")
  }

  @Test func badExportOptionsAreExplained() throws {
    guard kernelAvailable("export tests") else { return }
    let program = "tracepoint:syscalls:sys_enter_getppid { @c[comm] = count(); }"
    // A port in use.
    let busy = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(busy) }
    var address = loopback(0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        _ = bind(busy, $0, length)
        _ = getsockname(busy, $0, &length)
      }
    }
    listen(busy, 1)
    let port = UInt16(bigEndian: address.sin_port)
    let inUse = scry("--serve", String(port), "-e", program)
    #expect(inUse.status == 1)
    #expect(inUse.stderr.contains("ERROR: cannot listen on 127.0.0.1:\(port): Address already in use"), "\(inUse.stderr)")
    let badPort = scry("--serve", "70000", "-e", program)
    #expect(badPort.status == 1 && badPort.stderr.contains("--serve takes [ADDR:]PORT"), "\(badPort.stderr)")
    let badHost = scry("--serve", "no-such-host.invalid:9100", "-e", program)
    #expect(badHost.status == 1 && badHost.stderr.contains("cannot resolve 'no-such-host.invalid'"), "\(badHost.stderr)")
    let foreign = scry("--serve", "192.0.2.1:9100", "-e", program)
    #expect(foreign.status == 1 && foreign.stderr.contains("no interface of this machine has that address"), "\(foreign.stderr)")
    let badURL = scry("--push", "https://gateway:9091", "-e", program)
    #expect(badURL.status == 1 && badURL.stderr.contains("is not an http:// URL"), "\(badURL.stderr)")
    let badInterval = scry("--push", "http://127.0.0.1:1", "--push-interval", "0", "-e", program)
    #expect(badInterval.status == 1 && badInterval.stderr.contains("--push-interval must be a positive"), "\(badInterval.stderr)")
    let badLabels = scry("--serve", "0", "-e", "// scry:labels @c=a,b\n" + program)
    #expect(badLabels.status == 1)
    #expect(badLabels.stderr.contains("'@c' has 1 key component, but 2 label names are given"), "\(badLabels.stderr)")
    #expect(badLabels.stderr.contains("-e:1:16"), "\(badLabels.stderr)")
    let repl = scry("-i", "--serve", "9100")
    #expect(repl.status == 2 && repl.stderr.contains("take no -i or -l"), "\(repl.stderr)")
  }
}
