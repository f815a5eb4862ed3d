import ScryRuntime

/// The two text formats Prometheus scrapes: the classic text format 0.0.4 and OpenMetrics 1.0.
public enum ExpositionFormat: Sendable, Equatable {
  case prometheus
  case openMetrics

  public var contentType: String {
    switch self {
    case .prometheus: return "text/plain; version=0.0.4; charset=utf-8"
    case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
    }
  }

  /// The format an `Accept` header asks for, as Prometheus's client libraries choose it: media
  /// ranges by falling `q` (ties in header order), the first one Scry can write wins; none (or no
  /// header) means the text format.
  public static func negotiate(accept: String?) -> ExpositionFormat {
    guard let accept else { return .prometheus }
    var ranges: [(type: String, version: String?, q: Double, order: Int)] = []
    for (order, part) in accept.split(separator: ",").enumerated() {
      let fields = part.split(separator: ";").map { $0.trimmingSpaces() }
      guard let type = fields.first?.lowercased(), !type.isEmpty else { continue }
      var version: String?
      var q = 1.0
      for field in fields.dropFirst() {
        let pair = field.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
        guard pair.count == 2 else { continue }
        switch pair[0].lowercased() {
        case "version": version = pair[1]
        case "q": q = Double(pair[1]) ?? 0
        default: break
        }
      }
      if q > 0 { ranges.append((type, version, q, order)) }
    }
    ranges.sort { $0.q != $1.q ? $0.q > $1.q : $0.order < $1.order }
    for range in ranges {
      switch range.type {
      case "application/openmetrics-text" where [nil, "1.0.0", "0.0.1"].contains(range.version):
        return .openMetrics
      case "text/plain" where [nil, "0.0.4"].contains(range.version), "*/*", "text/*":
        return .prometheus
      default: continue
      }
    }
    return .prometheus
  }
}

/// Writes a snapshot in either format. Metric names are `scry_` and the map's name with every
/// character outside `[a-zA-Z0-9_]` made `_`; keys become labels (`key`, or `key0`, `key1`… for
/// several, unless the script named them). Maps with no metric form were left out of the snapshot.
public struct Exposition {
  /// Label names a script gave, by map name (`@lat` → ["pid", "comm"]).
  public var labelNames: [String: [String]]

  public init(labelNames: [String: [String]] = [:]) {
    self.labelNames = labelNames
  }

  /// One family as both formats need it: the name in `# TYPE` and the sample names.
  struct Family {
    var name: String
    var type: String
    var help: String
  }

  public func render(_ snapshot: MetricsSnapshot, format: ExpositionFormat) -> String {
    var out = ""
    out.reserveCapacity(4096)
    for (map, base) in zip(snapshot.maps, familyNames(snapshot.maps)) {
      let labels = labels(of: map)
      let help = Self.help(map)
      switch map.kind {
      case .counter:
        appendHeader(Family(name: base, type: "counter", help: help), format: format, to: &out)
        for series in map.series {
          appendSample(base + "_total", labels: labels, values: series.labels, value: String(series.value), to: &out)
        }
      case .gauge:
        appendHeader(Family(name: base, type: "gauge", help: help), format: format, to: &out)
        for series in map.series {
          appendSample(base, labels: labels, values: series.labels, value: String(series.value), to: &out)
        }
      case .summary:
        appendHeader(Family(name: base, type: "summary", help: help), format: format, to: &out)
        for series in map.series {
          appendSample(base + "_sum", labels: labels, values: series.labels, value: String(series.sum), to: &out)
          appendSample(base + "_count", labels: labels, values: series.labels, value: String(series.count), to: &out)
        }
      case .histogram(let bounds):
        appendHeader(Family(name: base, type: "histogram", help: help), format: format, to: &out)
        for series in map.series {
          appendHistogram(base, bounds: bounds, series: series, labels: labels, format: format, to: &out)
        }
      }
    }
    appendRun(snapshot.run, format: format, to: &out)
    if format == .openMetrics { out += "# EOF\n" }
    return out
  }

  /// Each map's family name, unique among the maps and the run's own families.
  public func familyNames(_ maps: [MapSnapshot]) -> [String] {
    var used = Set(Self.runFamilies)
    return maps.map { Self.uniqueName(Self.metricName($0.name), used: &used) }
  }

  public func labels(of map: MapSnapshot) -> [String] {
    labelNames[map.name] ?? Self.defaultLabelNames(map.keyCount)
  }

  static func help(_ map: MapSnapshot) -> String {
    "Scry map " + map.name + (map.writers.isEmpty ? "" : ", written by " + map.writers.joined(separator: "; "))
  }

  func appendHistogram(
    _ base: String, bounds: [Int64], series: MapSnapshot.Series, labels: [String], format: ExpositionFormat,
    to out: inout String
  ) {
    var cumulative: UInt64 = 0
    for (i, count) in series.buckets.enumerated() {
      cumulative &+= count
      let bound = i < bounds.count ? Self.bound(bounds[i], format: format) : "+Inf"
      appendSample(
        base + "_bucket", labels: labels + ["le"], values: series.labels + [bound], value: String(cumulative), to: &out)
    }
    appendSample(base + "_sum", labels: labels, values: series.labels, value: String(series.sum), to: &out)
    appendSample(base + "_count", labels: labels, values: series.labels, value: String(series.count), to: &out)
  }

  /// The session's own families; a map whose name would collide gets a suffix instead.
  static let runFamilies = [
    "scry_events", "scry_lost_events", "scry_failed_reads", "scry_map_dropped_inserts", "scry_probes_attached",
    "scry_rss_bytes",
  ]

  func appendRun(_ run: RunStatistics, format: ExpositionFormat, to out: inout String) {
    let counters: [(String, String, UInt64)] = [
      ("scry_events", "Events handed to the script's actions", run.eventsRead),
      ("scry_lost_events", "Events the kernel dropped because a ring was full", run.eventsLost),
      ("scry_failed_reads", "Reads of memory that failed and read as 0 or empty", run.failedReads),
    ]
    for (name, help, value) in counters {
      appendHeader(Family(name: name, type: "counter", help: help), format: format, to: &out)
      appendSample(name + "_total", labels: [], values: [], value: String(value), to: &out)
    }
    appendHeader(
      Family(name: "scry_map_dropped_inserts", type: "counter", help: "Inserts dropped because the map was full"),
      format: format, to: &out)
    for (map, count) in run.droppedInserts {
      appendSample("scry_map_dropped_inserts_total", labels: ["map"], values: [map], value: String(count), to: &out)
    }
    appendHeader(
      Family(name: "scry_probes_attached", type: "gauge", help: "Probes the script attached"), format: format, to: &out)
    appendSample("scry_probes_attached", labels: [], values: [], value: String(run.probesAttached), to: &out)
    appendHeader(
      Family(name: "scry_rss_bytes", type: "gauge", help: "Resident memory of the Scry process"), format: format, to: &out)
    appendSample("scry_rss_bytes", labels: [], values: [], value: String(run.residentBytes), to: &out)
  }

  func appendHeader(_ family: Family, format: ExpositionFormat, to out: inout String) {
    // The text format names a counter's family by its sample (`_total`); OpenMetrics without it.
    let name = format == .prometheus && family.type == "counter" ? family.name + "_total" : family.name
    out += "# HELP " + name + " " + Self.escapedHelp(family.help, format: format) + "\n"
    out += "# TYPE " + name + " " + family.type + "\n"
  }

  func appendSample(_ name: String, labels: [String], values: [String], value: String, to out: inout String) {
    out += name
    if !labels.isEmpty {
      out += "{"
      for (i, label) in labels.enumerated() {
        if i > 0 { out += "," }
        out += label + "=\"" + Self.escapedLabelValue(i < values.count ? values[i] : "") + "\""
      }
      out += "}"
    }
    out += " " + value + "\n"
  }

  // MARK: - Names and escaping

  /// `@calls` → `scry_calls`; `@` (the anonymous map) → `scry_map`.
  public static func metricName(_ mapName: String) -> String {
    var name = mapName.hasPrefix("@") ? String(mapName.dropFirst()) : mapName
    if name.isEmpty { name = "map" }
    return "scry_" + String(String.UnicodeScalarView(name.unicodeScalars.map { isNameCharacter($0) ? $0 : "_" }))
  }

  static func uniqueName(_ name: String, used: inout Set<String>) -> String {
    var candidate = name
    var n = 2
    while used.contains(candidate) {
      candidate = name + "_" + String(n)
      n += 1
    }
    used.insert(candidate)
    return candidate
  }

  static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
    (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
  }

  /// A valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved (`__…`), not `le` (histograms' own).
  public static func isValidLabelName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, !(first >= "0" && first <= "9") else { return false }
    return name.unicodeScalars.allSatisfy(isNameCharacter) && !name.hasPrefix("__") && name != "le"
  }

  public static func defaultLabelNames(_ count: Int) -> [String] {
    count == 1 ? ["key"] : (0..<count).map { "key" + String($0) }
  }

  /// Both formats: backslash, double quote and newline escaped.
  public static func escapedLabelValue(_ value: String) -> String {
    var out = ""
    for c in value.unicodeScalars {
      switch c {
      case "\\": out += "\\\\"
      case "\"": out += "\\\""
      case "\n": out += "\\n"
      default: out.unicodeScalars.append(c)
      }
    }
    return out
  }

  /// The text format escapes backslash and newline in HELP; OpenMetrics also the double quote.
  static func escapedHelp(_ text: String, format: ExpositionFormat) -> String {
    var out = ""
    for c in text.unicodeScalars {
      switch c {
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\"" where format == .openMetrics: out += "\\\""
      default: out.unicodeScalars.append(c)
      }
    }
    return out
  }

  /// A bucket bound: OpenMetrics wants canonical floats (`1.0`), the text format takes integers.
  static func bound(_ value: Int64, format: ExpositionFormat) -> String {
    format == .openMetrics ? String(value) + ".0" : String(value)
  }
}

extension Substring {
  func trimmingSpaces() -> String {
    var s = self
    while s.first == " " || s.first == "\t" { s = s.dropFirst() }
    while s.last == " " || s.last == "\t" { s = s.dropLast() }
    return String(s)
  }
}
