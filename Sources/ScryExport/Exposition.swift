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

  /// The exposition as text (for pushes and tests).
  public func render(_ snapshot: MetricsSnapshot, format: ExpositionFormat) -> String {
    String(decoding: renderBytes(snapshot, format: format), as: UTF8.self)
  }

  /// The exposition as bytes: what a scrape sends, written without intermediate strings.
  public func renderBytes(_ snapshot: MetricsSnapshot, format: ExpositionFormat) -> [UInt8] {
    var out = ExpositionText()
    out.bytes.reserveCapacity(4096 + snapshot.maps.reduce(0) { $0 + $1.series.count * 48 })
    for (map, base) in zip(snapshot.maps, familyNames(snapshot.maps)) {
      let labels = labels(of: map)
      let help = Self.help(map)
      let prefixes = Self.labelPrefixes(labels)
      switch map.kind {
      case .counter:
        appendHeader(Family(name: base, type: "counter", help: help), format: format, to: &out)
        let name = Array((base + "_total").utf8)
        for series in map.series {
          out.appendName(name, prefixes, series.labels)
          out.append(integer: series.value)
        }
      case .gauge:
        appendHeader(Family(name: base, type: "gauge", help: help), format: format, to: &out)
        let name = Array(base.utf8)
        for series in map.series {
          out.appendName(name, prefixes, series.labels)
          out.append(integer: series.value)
        }
      case .summary:
        appendHeader(Family(name: base, type: "summary", help: help), format: format, to: &out)
        let sum = Array((base + "_sum").utf8)
        let count = Array((base + "_count").utf8)
        for series in map.series {
          out.appendName(sum, prefixes, series.labels)
          out.append(integer: series.sum)
          out.appendName(count, prefixes, series.labels)
          out.append(decimal: series.count)
          out.bytes.append(10)
        }
      case .histogram(let bounds):
        appendHeader(Family(name: base, type: "histogram", help: help), format: format, to: &out)
        // The `le` pairs are the same for every series: written once.
        let limits = (bounds.map { "le=\"" + Self.bound($0, format: format) + "\"} " } + ["le=\"+Inf\"} "]).map { Array($0.utf8) }
        // OpenMetrics: a histogram with a negative bound, or negative values, has no `_sum`.
        let sumAllowed = format == .prometheus || bounds.allSatisfy { $0 >= 0 }
        for series in map.series {
          appendHistogram(
            base, limits: limits, series: series, labelText: Self.labelText(labels, series.labels),
            exposesSum: sumAllowed && (format == .prometheus || series.sum >= 0), to: &out)
        }
      }
    }
    appendRun(snapshot.run, format: format, to: &out)
    if format == .openMetrics { out += "# EOF\n" }
    return out.bytes
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
    _ base: String, limits: [[UInt8]], series: MapSnapshot.Series, labelText: [UInt8], exposesSum: Bool,
    to out: inout ExpositionText
  ) {
    let bucket = Array((base + "_bucket{").utf8) + labelText + (labelText.isEmpty ? [] : [UInt8(ascii: ",")])
    var cumulative: UInt64 = 0
    for (count, limit) in zip(series.buckets, limits) {
      cumulative &+= count
      out.bytes += bucket
      out.bytes += limit
      out.append(decimal: cumulative)
      out.bytes.append(10)
    }
    if exposesSum { appendSample(base + "_sum", labelText, value: series.sum, to: &out) }
    appendSample(base + "_count", labelText, value: series.count, to: &out)
  }

  /// The session's own families; a map whose name would collide gets a suffix instead.
  static let runFamilies = [
    "scry_events", "scry_lost_events", "scry_failed_reads", "scry_map_dropped_inserts", "scry_probes_attached",
    "scry_rss_bytes",
  ]

  func appendRun(_ run: RunStatistics, format: ExpositionFormat, to out: inout ExpositionText) {
    let counters: [(String, String, UInt64)] = [
      ("scry_events", "Events handed to the script's actions", run.eventsRead),
      ("scry_lost_events", "Events the kernel dropped because a ring was full", run.eventsLost),
      ("scry_failed_reads", "Reads of memory that failed and read as 0 or empty", run.failedReads),
    ]
    for (name, help, value) in counters {
      appendHeader(Family(name: name, type: "counter", help: help), format: format, to: &out)
      appendSample(name + "_total", [], value: value, to: &out)
    }
    appendHeader(
      Family(name: "scry_map_dropped_inserts", type: "counter", help: "Inserts dropped because the map was full"),
      format: format, to: &out)
    for (map, count) in run.droppedInserts {
      appendSample("scry_map_dropped_inserts_total", Self.labelText(["map"], [map]), value: count, to: &out)
    }
    appendHeader(
      Family(name: "scry_probes_attached", type: "gauge", help: "Probes the script attached"), format: format, to: &out)
    appendSample("scry_probes_attached", [], value: run.probesAttached, to: &out)
    appendHeader(
      Family(name: "scry_rss_bytes", type: "gauge", help: "Resident memory of the Scry process"), format: format, to: &out)
    appendSample("scry_rss_bytes", [], value: run.residentBytes, to: &out)
  }

  func appendHeader(_ family: Family, format: ExpositionFormat, to out: inout ExpositionText) {
    // The text format names a counter's family by its sample (`_total`); OpenMetrics without it.
    let name = format == .prometheus && family.type == "counter" ? family.name + "_total" : family.name
    out += "# HELP " + name + " " + Self.escapedHelp(family.help, format: format) + "\n"
    out += "# TYPE " + name + " " + family.type + "\n"
  }

  /// One sample line; `labelText` is the `a="x",b="y"` inside the braces (empty: no braces).
  func appendSample(_ name: String, _ labelText: [UInt8], value: UInt64, to out: inout ExpositionText) {
    appendName(name, labelText, to: &out)
    out.append(decimal: value)
    out.bytes.append(10)
  }

  func appendSample(_ name: String, _ labelText: [UInt8], value: Int64, to out: inout ExpositionText) {
    appendName(name, labelText, to: &out)
    if value < 0 { out.bytes.append(UInt8(ascii: "-")) }
    out.append(decimal: value.magnitude)
    out.bytes.append(10)
  }

  func appendSample(_ name: String, _ labelText: [UInt8], value: Int, to out: inout ExpositionText) {
    appendSample(name, labelText, value: Int64(value), to: &out)
  }

  /// `name{labels} `, without braces when there are no labels.
  func appendName(_ name: String, _ labelText: [UInt8], to out: inout ExpositionText) {
    out += name
    if !labelText.isEmpty {
      out.bytes.append(UInt8(ascii: "{"))
      out.bytes += labelText
      out.bytes.append(UInt8(ascii: "}"))
    }
    out.bytes.append(UInt8(ascii: " "))
  }

  /// `name="value"` pairs, values escaped.
  static func labelText(_ names: [String], _ values: [String]) -> [UInt8] {
    var text = ExpositionText()
    text.appendLabels(labelPrefixes(names), values)
    return text.bytes
  }

  /// What comes before each label's value: `a="`, then `,b="`….
  static func labelPrefixes(_ names: [String]) -> [[UInt8]] {
    names.enumerated().map { Array((($0.offset > 0 ? "," : "") + $0.element + "=\"").utf8) }
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

/// The bytes of an exposition being written.
struct ExpositionText {
  var bytes: [UInt8] = []

  static func += (text: inout ExpositionText, string: String) {
    text.bytes.append(contentsOf: string.utf8)
  }

  /// `name{a="x",b="y"} `, values escaped; no braces without labels.
  mutating func appendName(_ name: [UInt8], _ prefixes: [[UInt8]], _ values: [String]) {
    bytes += name
    if !prefixes.isEmpty {
      bytes.append(UInt8(ascii: "{"))
      appendLabels(prefixes, values)
      bytes.append(UInt8(ascii: "}"))
    }
    bytes.append(UInt8(ascii: " "))
  }

  mutating func appendLabels(_ prefixes: [[UInt8]], _ values: [String]) {
    for (i, prefix) in prefixes.enumerated() {
      bytes += prefix
      if i < values.count { appendEscaped(values[i]) }
      bytes.append(UInt8(ascii: "\""))
    }
  }

  /// A label value: backslash, double quote and newline escaped (both formats).
  mutating func appendEscaped(_ value: String) {
    for byte in value.utf8 {
      switch byte {
      case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
      case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
      case 10: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
      default: bytes.append(byte)
      }
    }
  }

  /// A signed value and the line's end.
  mutating func append(integer value: Int64) {
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    append(decimal: value.magnitude)
    bytes.append(10)
  }

  /// Decimal digits of `value`, written in place.
  mutating func append(decimal value: UInt64) {
    var digits = 1
    var rest = value
    while rest >= 10 {
      rest /= 10
      digits += 1
    }
    let start = bytes.count
    bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
    var v = value
    var i = start + digits - 1
    while v > 0 {
      bytes[i] = UInt8(ascii: "0") + UInt8(v % 10)
      v /= 10
      i -= 1
    }
  }
}
