import Glibc
import ScryKernel
import ScryRuntime

/// `--push URL` (a Prometheus Pushgateway) and `--otlp URL` (an OpenTelemetry collector's OTLP/HTTP
/// endpoint): every interval, and once more at the end of the run, the maps are sent there. A peer
/// that is down does not stop the tracing: the failure is said once, and once again when the peer
/// answers again; each attempt is bounded (2 s) since it runs on the event loop.
public final class MetricsPusher: LoopService {
  public enum Destination: Sendable {
    /// PUT of the text format to `/metrics/job/scry` (or the URL's own path): the group is replaced.
    case pushgateway
    /// POST of OTLP's JSON encoding to `/v1/metrics` (or the URL's own path).
    case otlp
  }

  public let url: HTTPURL
  public let destination: Destination
  private let timer: TimerFD
  private let exposition: Exposition
  private let report: (String) -> Void
  private var failing = false
  /// When the run started, for OTLP's cumulative start time.
  private let startNanoseconds = OTLPEncoding.nowNanoseconds()

  public init(
    url: String, destination: Destination, intervalSeconds: Double, exposition: Exposition,
    report: @escaping (String) -> Void
  ) throws(ExportError) {
    self.url = try HTTPURL(url, defaultPath: destination == .pushgateway ? "/metrics/job/scry" : "/v1/metrics")
    self.destination = destination
    guard intervalSeconds > 0, intervalSeconds.isFinite else {
      throw ExportError("--push-interval must be a positive number of seconds")
    }
    do {
      timer = try TimerFD(periodNanoseconds: UInt64(intervalSeconds * 1e9))
    } catch {
      throw ExportError("cannot start the push timer: \(error)")
    }
    self.exposition = exposition
    self.report = report
  }

  public var pollFD: Int32 { timer.fd }

  public func serve(snapshot: () -> MetricsSnapshot) {
    _ = timer.read()
    push(snapshot())
  }

  public func finish(snapshot: () -> MetricsSnapshot) {
    push(snapshot())
  }

  /// The request body for a snapshot, and its content type.
  func body(_ snapshot: MetricsSnapshot) -> (contentType: String, bytes: [UInt8]) {
    switch destination {
    case .pushgateway:
      return (ExpositionFormat.prometheus.contentType, Array(exposition.render(snapshot, format: .prometheus).utf8))
    case .otlp:
      let json = OTLPEncoding(exposition: exposition, startNanoseconds: startNanoseconds).json(snapshot)
      return ("application/json", Array(json.utf8))
    }
  }

  private func push(_ snapshot: MetricsSnapshot) {
    let (contentType, bytes) = body(snapshot)
    let method = destination == .pushgateway ? "PUT" : "POST"
    let problem: String?
    switch HTTPClient.send(method, to: url, contentType: contentType, body: bytes) {
    case .success(let status) where (200..<300).contains(status): problem = nil
    case .success(let status): problem = "it answered HTTP \(status)"
    case .failure(let error): problem = error.description
    }
    let what = destination == .pushgateway ? "push metrics to" : "send OTLP metrics to"
    if let problem, !failing {
      failing = true
      report("WARNING: cannot \(what) \(url): \(problem); tracing goes on, and Scry retries at each interval\n")
    } else if problem == nil && failing {
      failing = false
      report("metrics reach \(url) again\n")
    }
  }
}
