import Testing

@testable import ScryExport
@testable import ScryRuntime

/// The exposition text, byte for byte where the format fixes it.
@Suite struct ExpositionTests {
  static func snapshot(_ maps: [MapSnapshot]) -> MetricsSnapshot {
    var run = RunStatistics()
    run.eventsRead = 12
    run.probesAttached = 1
    run.residentBytes = 4096
    run.droppedInserts = [("@calls", 3)]
    return MetricsSnapshot(maps: maps, run: run)
  }

  static let calls = MapSnapshot(
    name: "@calls", writers: ["tracepoint:syscalls:sys_enter_getppid"], keyCount: 1, kind: .counter,
    series: [MapSnapshot.Series(labels: ["a\"b\\c\nd"], value: 5)])

  @Test func counterTextFormat() {
    let text = Exposition().render(Self.snapshot([Self.calls]), format: .prometheus)
    #expect(
      text.hasPrefix(
        """
        # HELP scry_calls_total Scry map @calls, written by tracepoint:syscalls:sys_enter_getppid
        # TYPE scry_calls_total counter
        scry_calls_total{key="a\\"b\\\\c\\nd"} 5

        """))
    #expect(text.contains("scry_events_total 12\n"))
    #expect(text.contains("scry_map_dropped_inserts_total{map=\"@calls\"} 3\n"))
    #expect(text.contains("# TYPE scry_rss_bytes gauge\nscry_rss_bytes 4096\n"))
    #expect(!text.contains("# EOF"))
  }

  @Test func openMetricsNamesCounterFamiliesWithoutTotalAndEnds() {
    let text = Exposition().render(Self.snapshot([Self.calls]), format: .openMetrics)
    #expect(text.contains("# TYPE scry_calls counter\nscry_calls_total{key="))
    #expect(text.hasSuffix("scry_rss_bytes 4096\n# EOF\n"))
  }

  @Test func log2HistogramBucketsAreCumulativeWithSumAndCount() {
    // Values 0, 1, 5, 5: buckets [0], [1], [4, 8).
    guard case .histogram(let bounds)? = MetricsSnapshot.kind(of: .init(name: "@lat", keyTypes: [], valueType: .aggregate(.hist), declaration: .at(0))) else {
      Issue.record("hist is not a histogram")
      return
    }
    #expect(bounds.prefix(4) == [0, 1, 3, 7])
    #expect(bounds.count == 32 && bounds[31] == Int64(Int32.max))
    var buckets = [UInt64](repeating: 0, count: bounds.count + 1)
    buckets[0] = 1
    buckets[1] = 1
    buckets[3] = 2
    let lat = MapSnapshot(
      name: "@lat", writers: [], keyCount: 0, kind: .histogram(upperBounds: bounds),
      series: [MapSnapshot.Series(labels: [], buckets: buckets, sum: 11, count: 4)])
    let text = Exposition().render(Self.snapshot([lat]), format: .prometheus)
    #expect(
      text.contains(
        """
        # TYPE scry_lat histogram
        scry_lat_bucket{le="0"} 1
        scry_lat_bucket{le="1"} 2
        scry_lat_bucket{le="3"} 2
        scry_lat_bucket{le="7"} 4
        scry_lat_bucket{le="15"} 4

        """))
    #expect(text.contains("scry_lat_bucket{le=\"2147483647\"} 4\nscry_lat_bucket{le=\"+Inf\"} 4\nscry_lat_sum 11\nscry_lat_count 4\n"))
    let open = Exposition().render(Self.snapshot([lat]), format: .openMetrics)
    #expect(open.contains("scry_lat_bucket{le=\"7.0\"} 4\n"))
    #expect(open.contains("scry_lat_sum 11\n"))
    // OpenMetrics: no _sum beside a negative bound or a negative sum; the text format keeps it.
    let below = MapSnapshot(
      name: "@t", writers: [], keyCount: 0, kind: .histogram(upperBounds: [-11, -1]),
      series: [MapSnapshot.Series(labels: [], buckets: [1, 0, 0], sum: -20, count: 1)])
    let negative = Exposition().render(Self.snapshot([below]), format: .openMetrics)
    #expect(!negative.contains("scry_t_sum") && negative.contains("scry_t_count 1\n"))
    #expect(Exposition().render(Self.snapshot([below]), format: .prometheus).contains("scry_t_sum -20\n"))
  }

  @Test func linearHistogramBoundsFollowTheSteps() {
    let kind = MetricsSnapshot.kind(of: .init(name: "@l", keyTypes: [], valueType: .aggregate(.lhist(min: 0, max: 30, step: 10)), declaration: .at(0)))
    // Below 0 folded into [0,10), then [10,20), [20,30), then 30 and up.
    #expect(kind == .histogram(upperBounds: [9, 19, 29]))
    let shifted = MetricsSnapshot.kind(of: .init(name: "@l", keyTypes: [], valueType: .aggregate(.lhist(min: 5, max: 25, step: 10)), declaration: .at(0)))
    #expect(shifted == .histogram(upperBounds: [4, 14, 24]))
  }

  @Test func tupleKeysAndNamedLabels() {
    let map = MapSnapshot(
      name: "@io", writers: [], keyCount: 2, kind: .gauge, series: [MapSnapshot.Series(labels: ["12", "cat"], value: -3)])
    #expect(Exposition().render(Self.snapshot([map]), format: .prometheus).contains("scry_io{key0=\"12\",key1=\"cat\"} -3\n"))
    let named = Exposition(labelNames: ["@io": ["pid", "comm"]]).render(Self.snapshot([map]), format: .prometheus)
    #expect(named.contains("scry_io{pid=\"12\",comm=\"cat\"} -3\n"))
  }

  @Test func summariesAndNames() {
    let map = MapSnapshot(
      name: "@", writers: [], keyCount: 0, kind: .summary, series: [MapSnapshot.Series(labels: [], sum: 30, count: 3)])
    let text = Exposition().render(Self.snapshot([map]), format: .prometheus)
    #expect(text.contains("# TYPE scry_map summary\nscry_map_sum 30\nscry_map_count 3\n"))
    #expect(Exposition.metricName("@a-b.c") == "scry_a_b_c")
    // A map named like one of Scry's own families does not collide with it.
    let events = MapSnapshot(name: "@events", writers: [], keyCount: 0, kind: .counter, series: [.init(labels: [], value: 1)])
    #expect(Exposition().render(Self.snapshot([events]), format: .prometheus).contains("scry_events_2_total 1\n"))
  }

  @Test func negotiationFollowsAcceptAsPrometheusSendsIt() {
    let prometheus3 =
      "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    #expect(ExpositionFormat.negotiate(accept: prometheus3) == .openMetrics)
    #expect(ExpositionFormat.negotiate(accept: "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5") == .prometheus)
    #expect(ExpositionFormat.negotiate(accept: "text/plain;version=0.0.4;q=0.3,application/openmetrics-text;version=1.0.0;q=0.9") == .openMetrics)
    #expect(ExpositionFormat.negotiate(accept: nil) == .prometheus)
    #expect(ExpositionFormat.negotiate(accept: "application/json") == .prometheus)
    #expect(ExpositionFormat.negotiate(accept: "application/openmetrics-text;version=2.0.0") == .prometheus)
  }

  @Test func labelAnnotations() {
    let source = Array("tracepoint:a:b { @x[pid, comm] = count(); } // scry:labels @x=pid,comm @y=a\n// other\n".utf8)
    let found = LabelAnnotation.find(in: source)
    #expect(found.map(\.map) == ["@x", "@y"])
    #expect(found[0].labels == ["pid", "comm"])
    #expect(found[0].problem(keyCount: 2) == nil)
    #expect(found[0].problem(keyCount: 1)?.message.contains("1 key component") == true)
    #expect(found[1].problem(keyCount: nil)?.message == "'@y' is not a map of this script")
    #expect(LabelAnnotation(map: "@x", labels: ["le"], start: 0, end: 0).problem(keyCount: 1) != nil)
    #expect(LabelAnnotation(map: "@x", labels: ["9a"], start: 0, end: 0).problem(keyCount: 1) != nil)
  }

  @Test func serveAddresses() throws {
    #expect(try Endpoint.listening("9100") == Endpoint(host: "127.0.0.1", port: 9100))
    #expect(try Endpoint.listening("0.0.0.0:80") == Endpoint(host: "0.0.0.0", port: 80))
    #expect(try Endpoint.listening("[::1]:9100") == Endpoint(host: "::1", port: 9100))
    #expect(throws: ExportError.self) { try Endpoint.listening("99999") }
    #expect(throws: ExportError.self) { try Endpoint.listening("host:") }
    #expect(throws: ExportError.self) { try HTTPURL("https://x:1", defaultPath: "/") }
    #expect(try HTTPURL("http://127.0.0.1:9091", defaultPath: "/metrics/job/scry").path == "/metrics/job/scry")
  }
}
