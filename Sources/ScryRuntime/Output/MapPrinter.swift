import ScryLanguage

/// Prints whole maps as bpftrace 0.17 does: `print(@m, top, div)` and the dump at exit.
/// Text: one `@m[key]: value` line per entry, then a newline (an empty map prints just the newline);
/// avg/stats add a blank line; histograms are separated and followed by blank lines. JSON: one object a line.
public enum MapPrinter {
  typealias Entry = (key: UnsafeRawPointer, value: UnsafeMutableRawPointer)

  /// `print(@m, top, div)`; top 0 prints every entry, div 0 or 1 leaves values alone.
  public static func print(_ map: MapStorage, top: Int, divisor: Int, to out: OutputBuffer) {
    let info = map.info
    var entries = map.entries()
    let divisor = UInt64(Swift.max(divisor, 1))
    switch info.valueType {
    case .aggregate(.hist), .aggregate(.lhist):
      guard case .aggregate(let kind) = info.valueType else { return }
      if map.histogramStyle == .systemTap {
        for entry in entries { SystemTapHistogram.append(entry.value, kind: kind, to: out) }
        return
      }
      let buckets = HistogramPrinter.bucketCount(kind)
      let totals = entries.map { e in (0..<buckets).reduce(UInt64(0)) { $0 &+ e.value.load(fromByteOffset: $1 * 8, as: UInt64.self) } }
      entries = stableSorted(entries) { totals[$0] < totals[$1] }
      entries = keepTop(entries, top)
      printHistograms(map, entries, kind: kind, divisor: divisor, to: out)
    case .aggregate(.avg(let isSigned)), .aggregate(.stats(let isSigned)):
      entries = stableSorted(entries) { i, j in
        let a = average(entries[i].value, isSigned: isSigned)
        let b = average(entries[j].value, isSigned: isSigned)
        return isSigned ? Int64(bitPattern: a) < Int64(bitPattern: b) : a < b
      }
      // bpftrace 0.17 applies top and div to avg maps and ignores them for stats.
      if case .aggregate(.avg) = info.valueType {
        printStats(map, keepTop(entries, top), divisor: divisor, to: out)
      } else {
        printStats(map, entries, divisor: 1, to: out)
      }
    default:
      switch info.valueType {
      case .aggregate(.min), .aggregate(.max): entries = entries.filter { isSet($0.value) }
      default: break
      }
      let valueType = scalarType(info.valueType)
      if valueType.isInteger {
        let isSigned: Bool
        if case .integer(let t) = valueType { isSigned = t.isSigned } else { isSigned = false }
        entries = stableSorted(entries) { i, j in
          let a = entries[i].value.load(as: UInt64.self)
          let b = entries[j].value.load(as: UInt64.self)
          return isSigned ? Int64(bitPattern: a) < Int64(bitPattern: b) : a < b
        }
      } else {
        entries = stableSorted(entries) { i, j in
          compareKeys(entries[i].key, entries[j].key, types: info.keyTypes) < 0
        }
      }
      entries = keepTop(entries, top)
      printScalars(map, entries, valueType: valueType, divisor: divisor, to: out)
    }
  }

  /// At exit: a blank pair of lines (bpftrace prints them even with no maps), then every map by name.
  public static func printAtExit(_ maps: [MapStorage], to out: OutputBuffer) {
    out.append("\n\n")
    printAll(maps, to: out)
  }

  /// Every map by name, as SIGUSR1 prints them while the program goes on.
  public static func printAll(_ maps: [MapStorage], to out: OutputBuffer) {
    let sorted = maps.filter { !$0.info.isInternal }
      .sorted { Array($0.info.name.utf8).lexicographicallyPrecedes(Array($1.info.name.utf8)) }
    for map in sorted { print(map, top: 0, divisor: 0, to: out) }
  }

  // MARK: - Kinds

  /// The type a scalar map value prints as: count/sum/min/max print as integers.
  static func scalarType(_ type: ScryType) -> ScryType {
    switch type {
    case .aggregate(.count): return .uint64
    case .aggregate(.sum(let isSigned)): return .integer(IntegerType(bits: 64, isSigned: isSigned))
    // bpftrace 0.17 prints min and max as signed whatever their input.
    case .aggregate(.min), .aggregate(.max): return .int64
    default: return type
    }
  }

  static func isSet(_ value: UnsafeRawPointer) -> Bool { value.load(fromByteOffset: 8, as: UInt64.self) != 0 }

  static func average(_ value: UnsafeRawPointer, isSigned: Bool) -> UInt64 {
    let sum = value.load(as: UInt64.self)
    let count = value.load(fromByteOffset: 8, as: UInt64.self)
    guard count != 0 else { return 0 }
    return isSigned ? UInt64(bitPattern: Int64(bitPattern: sum) / Int64(bitPattern: count)) : sum / count
  }

  static func stableSorted(_ entries: [Entry], by less: (Int, Int) -> Bool) -> [Entry] {
    let order = entries.indices.sorted { i, j in less(i, j) || (!less(j, i) && i < j) }
    return order.map { entries[$0] }
  }

  static func keepTop(_ entries: [Entry], _ top: Int) -> [Entry] {
    top > 0 && entries.count > top ? Array(entries.suffix(top)) : entries
  }

  /// bpftrace's key order for maps whose values do not sort: element by element, numbers by value, strings by strcmp.
  static func compareKeys(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, types: [ScryType]) -> Int {
    var offset = 0
    for t in types {
      let c = compareValues(a + offset, b + offset, type: t)
      if c != 0 { return c }
      offset += t.byteSize
    }
    return 0
  }

  static func compareValues(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, type: ScryType) -> Int {
    switch type {
    case .integer(let t) where t.isSigned:
      let x = Int64(bitPattern: a.loadUnaligned(as: UInt64.self))
      let y = Int64(bitPattern: b.loadUnaligned(as: UInt64.self))
      return x < y ? -1 : (x > y ? 1 : 0)
    case .integer, .boolean, .pointer, .symbol:
      let x = a.loadUnaligned(as: UInt64.self)
      let y = b.loadUnaligned(as: UInt64.self)
      return x < y ? -1 : (x > y ? 1 : 0)
    case .tuple(let elements):
      return compareKeys(a, b, types: elements)
    default:
      let n = type.byteSize
      for i in 0..<n {
        let x = a.load(fromByteOffset: i, as: UInt8.self)
        let y = b.load(fromByteOffset: i, as: UInt8.self)
        if x != y { return x < y ? -1 : 1 }
        if x == 0 && type.isString { return 0 }
      }
      return 0
    }
  }

  // MARK: - Text and JSON

  /// `{"type": TYPE, "data": {"@m": VALUE}}` for a keyless map, `{"@m": {KEY: VALUE, …}}` otherwise:
  /// the one JSON shape every kind of map shares; `value` writes one entry's value.
  static func appendJSONMap(
    _ type: StaticString, _ info: MapInfo, _ entries: [Entry], to out: OutputBuffer, value: (UnsafeRawPointer) -> Void
  ) {
    guard !entries.isEmpty else { return }
    out.append("{\"type\": \"")
    out.append(type)
    out.append("\", \"data\": {\"")
    out.append(ValueFormatter.jsonEscaped(info.name))
    out.append("\": ")
    if info.keyTypes.isEmpty {
      value(entries[0].value)
    } else {
      out.appendByte(UInt8(ascii: "{"))
      for (i, e) in entries.enumerated() {
        if i > 0 { out.append(", ") }
        ValueFormatter.appendKeyJSON(e.key, types: info.keyTypes, to: out)
        out.append(": ")
        value(e.value)
      }
      out.appendByte(UInt8(ascii: "}"))
    }
    out.append("}}\n")
  }

  static func printScalars(_ map: MapStorage, _ entries: [Entry], valueType: ScryType, divisor: UInt64, to out: OutputBuffer) {
    let info = map.info
    var scratch: (UInt64, UInt64) = (0, 0)
    func withDivided(_ value: UnsafeRawPointer, _ body: (UnsafeRawPointer) -> Void) {
      guard divisor > 1, case .integer(let t) = valueType else { return body(value) }
      let raw = value.load(as: UInt64.self)
      scratch.0 = t.isSigned ? UInt64(bitPattern: Int64(bitPattern: raw) / Int64(divisor)) : raw / divisor
      withUnsafeBytes(of: &scratch) { body($0.baseAddress!) }
    }
    switch out.format {
    case .text:
      for e in entries {
        out.append(info.name)
        ValueFormatter.appendKeyText(e.key, types: info.keyTypes, to: out)
        out.append(": ")
        withDivided(e.value) { ValueFormatter.appendText($0, type: valueType, to: out) }
        out.appendByte(UInt8(ascii: "\n"))
      }
      if entries.isEmpty { out.appendByte(UInt8(ascii: "\n")) }
    case .json:
      appendJSONMap("map", info, entries, to: out) { withDivided($0) { ValueFormatter.appendJSON($0, type: valueType, to: out) } }
    }
  }

  static func appendStatsValue(
    _ value: UnsafeRawPointer, kind: AggregateKind, json: Bool, divisor: UInt64 = 1, to out: OutputBuffer
  ) {
    let isSigned: Bool
    let isStats: Bool
    switch kind {
    case .avg(let s): (isSigned, isStats) = (s, false)
    case .stats(let s): (isSigned, isStats) = (s, true)
    default: return
    }
    func number(_ v: UInt64) {
      if isSigned { out.appendDecimal(Int64(bitPattern: v)) } else { out.appendUnsigned(v) }
    }
    let avg = average(value, isSigned: isSigned)
    guard isStats else {
      return number(isSigned ? UInt64(bitPattern: Int64(bitPattern: avg) / Int64(divisor)) : avg / divisor)
    }
    let count = value.load(fromByteOffset: 8, as: UInt64.self)
    let total = value.load(as: UInt64.self)
    out.append(json ? "{\"count\": " : "count ")
    out.appendUnsigned(count)
    out.append(json ? ", \"average\": " : ", average ")
    number(avg)
    out.append(json ? ", \"total\": " : ", total ")
    number(total)
    if json { out.appendByte(UInt8(ascii: "}")) }
  }

  static func printStats(_ map: MapStorage, _ entries: [Entry], divisor: UInt64, to out: OutputBuffer) {
    let info = map.info
    guard case .aggregate(let kind) = info.valueType else { return }
    switch out.format {
    case .text:
      for e in entries {
        out.append(info.name)
        ValueFormatter.appendKeyText(e.key, types: info.keyTypes, to: out)
        out.append(": ")
        appendStatsValue(e.value, kind: kind, json: false, divisor: divisor, to: out)
        out.appendByte(UInt8(ascii: "\n"))
      }
      out.append(entries.isEmpty ? "\n\n" : "\n")
    case .json:
      appendJSONMap("stats", info, entries, to: out) {
        appendStatsValue($0, kind: kind, json: true, divisor: divisor, to: out)
      }
    }
  }

  static func printHistograms(_ map: MapStorage, _ entries: [Entry], kind: AggregateKind, divisor: UInt64, to out: OutputBuffer) {
    let info = map.info
    switch out.format {
    case .text:
      for (i, e) in entries.enumerated() {
        if i > 0 { out.appendByte(UInt8(ascii: "\n")) }
        out.append(info.name)
        ValueFormatter.appendKeyText(e.key, types: info.keyTypes, to: out)
        out.append(": \n")
        HistogramPrinter.appendText(e.value, kind: kind, divisor: divisor, to: out)
      }
      out.appendByte(UInt8(ascii: "\n"))
    case .json:
      appendJSONMap("hist", info, entries, to: out) { HistogramPrinter.appendJSON($0, kind: kind, divisor: divisor, to: out) }
    }
  }
}
