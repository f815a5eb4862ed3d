import Glibc
import ScryLanguage
import ScryPlan

/// Builds a map's packed key into a buffer owned by the access site, and hashes it.
final class MapKey {
  let components: [BytesNode]
  private let parts: [Unretained<BytesNode>]
  let buffer: Scratch
  /// `buffer.pointer`, read without touching `buffer`'s reference count.
  let pointer: UnsafeMutableRawPointer
  let byteSize: Int
  init(_ components: [BytesNode]) {
    self.components = components
    self.parts = components.unretained
    self.byteSize = components.reduce(0) { $0 + $1.byteSize }
    self.buffer = Scratch(byteSize)
    self.pointer = buffer.pointer
  }
  @inline(__always)
  func build(_ m: Machine) -> UInt64 {
    var offset = 0
    for part in parts {
      offset += part.with { node in
        node.eval(m, into: pointer + offset)
        return node.byteSize
      }
    }
    return MapStorage.hash(pointer, count: byteSize)
  }
}

/// A warning `-k`/`-kk` print when a map access fails, as bpftrace 0.17 prints a helper's error:
/// `LOCATION: WARNING: MESSAGE` and the source line. Built whole when the action is bound, so a
/// failure writes it and allocates nothing; without `-k` there is none to check.
final class HelperWarning {
  let text: String
  let json: String
  /// bpftrace's warning for `helper` returning `code` at `site`, as text and as a json record.
  init(_ site: SourceSite, helper: String, code: Int32, source: SourceFile?) {
    text = HelperErrors.text(helper: helper, code: code, span: site.span, source: source, format: .text)
    json = HelperErrors.text(helper: helper, code: code, span: site.span, source: source, format: .json)
  }

  /// Writes the warning into the output, where bpftrace writes it: between the event's lines.
  func report(_ m: Machine) {
    m.output.append(m.output.format == .json ? json : text)
  }
}

/// Reads an integer map value (0 when the key is absent). Aggregations read as bpftrace shows them.
final class MapReadInt: IntNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  let aggregate: AggregateKind?
  /// `-kk`: an absent key is reported.
  let warning: HelperWarning?
  init(map: MapStorage, key: MapKey, aggregate: AggregateKind?, warning: HelperWarning? = nil) {
    self.map = map
    self.key = key
    self.aggregate = aggregate
    self.warning = warning
  }
  override func eval(_ m: Machine) -> UInt64 {
    let hash = key.build(m)
    guard let value = map.lookup(key: key.pointer, hash: hash, insert: false) else {
      warning?.report(m)
      return 0
    }
    let first = value.loadUnaligned(as: UInt64.self)
    if case .avg? = aggregate {
      let count = value.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
      return count == 0 ? 0 : UInt64(bitPattern: Int64(bitPattern: first) / Int64(bitPattern: count))
    }
    return first
  }
}

final class MapReadBytes: BytesNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  /// `-kk`: an absent key is reported.
  let warning: HelperWarning?
  init(map: MapStorage, key: MapKey, type: ScryType, warning: HelperWarning? = nil) {
    self.map = map
    self.key = key
    self.warning = warning
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    let hash = key.build(m)
    if let value = map.lookup(key: key.pointer, hash: hash, insert: false) {
      destination.copyMemory(from: value, byteCount: byteSize)
    } else {
      warning?.report(m)
      destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    }
  }
}

final class MapStoreInt: StmtNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  let value: IntNode
  init(map: MapStorage, key: MapKey, value: IntNode) {
    self.map = map
    self.key = key
    self.value = value
  }
  override func exec(_ m: Machine) -> Flow {
    let v = value.eval(m)
    let hash = key.build(m)
    map.lookup(key: key.pointer, hash: hash, insert: true)?.storeBytes(of: v, as: UInt64.self)
    return .next
  }
}

final class MapStoreBytes: StmtNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  let value: BytesNode
  let scratch: Scratch
  init(map: MapStorage, key: MapKey, value: BytesNode) {
    self.map = map
    self.key = key
    self.value = value
    self.scratch = Scratch(value.byteSize)
  }
  override func exec(_ m: Machine) -> Flow {
    value.eval(m, into: scratch.pointer)
    let hash = key.build(m)
    map.lookup(key: key.pointer, hash: hash, insert: true)?.copyMemory(
      from: scratch.pointer, byteCount: value.byteSize)
    return .next
  }
}

/// `@x++`, `@x += v`, `--@x`…: read-modify-write of an integer value; evaluates to the old
/// (postfix) or new (prefix and compound) value.
final class MapUpdateInt: IntNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  let operation: UpdateOperation
  let operand: IntNode?
  let returnsOld: Bool
  init(map: MapStorage, key: MapKey, operation: UpdateOperation, operand: IntNode?, returnsOld: Bool) {
    self.map = map
    self.key = key
    self.operation = operation
    self.operand = operand
    self.returnsOld = returnsOld
  }
  override func eval(_ m: Machine) -> UInt64 {
    let rhs = operand?.eval(m) ?? 1
    let hash = key.build(m)
    guard let value = map.lookup(key: key.pointer, hash: hash, insert: true) else { return 0 }
    let old = value.loadUnaligned(as: UInt64.self)
    let new = operation.apply(old, rhs)
    value.storeBytes(of: new, as: UInt64.self)
    return returnsOld ? old : new
  }
}

extension UpdateOperation {
  @inline(__always)
  func apply(_ a: UInt64, _ b: UInt64) -> UInt64 { op.apply(a, b, isSigned: isSigned) }
}

/// `@x = count()`, `@x[k] = hist(v)`…
final class MapAggregate: StmtNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  let kind: AggregateKind
  let operand: IntNode?
  // The same three, for the per-event path without reference counting.
  private let mapRef: Unretained<MapStorage>
  private let keyRef: Unretained<MapKey>
  private let operandRef: Unretained<IntNode>?
  private let keyPointer: UnsafeMutableRawPointer
  init(map: MapStorage, key: MapKey, kind: AggregateKind, operand: IntNode?) {
    self.map = map
    self.key = key
    self.kind = kind
    self.operand = operand
    self.mapRef = Unretained(map)
    self.keyRef = Unretained(key)
    self.operandRef = operand.map { Unretained($0) }
    self.keyPointer = key.pointer
  }
  override func exec(_ m: Machine) -> Flow {
    let v = operandRef?.with { $0.eval(m) } ?? 0
    let hash = keyRef.with { $0.build(m) }
    let pointer = keyPointer
    guard let value = mapRef.with({ $0.lookup(key: pointer, hash: hash, insert: true) }) else { return .next }
    switch kind {
    case .count: Aggregation.count(value)
    case .sum: Aggregation.sum(value, v)
    case .avg: Aggregation.avg(value, v)
    case .min(let isSigned): Aggregation.min(value, v, isSigned: isSigned)
    case .max(let isSigned): Aggregation.max(value, v, isSigned: isSigned)
    case .stats: Aggregation.stats(value, v)
    case .hist: Aggregation.hist(value, v)
    case .lhist(let low, let high, let step): Aggregation.lhist(value, v, min: low, max: high, step: step)
    }
    return .next
  }
}

final class MapDelete: StmtNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  /// `-k`: a key with no element is reported.
  let warning: HelperWarning?
  init(map: MapStorage, key: MapKey, warning: HelperWarning? = nil) {
    self.map = map
    self.key = key
    self.warning = warning
  }
  override func exec(_ m: Machine) -> Flow {
    // bpftrace 0.17 keeps a keyless count or avg after delete(), shown as `@: 0`.
    if map.keySize == 0, map.info.valueType == .aggregate(.count) || map.info.valueType.isAverage {
      map.zero()
      return .next
    }
    let hash = key.build(m)
    if !map.remove(key: key.pointer, hash: hash) { warning?.report(m) }
    return .next
  }
}

/// `delete(@m[k, *])`: removes every element whose key matches on the components given.
final class MapDeleteMatching: StmtNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  /// Byte ranges of the key that must match (the wildcards' ranges are left out).
  let ranges: [Range<Int>]
  init(map: MapStorage, key: MapKey, matched: [Bool]) {
    self.map = map
    self.key = key
    var ranges: [Range<Int>] = []
    var offset = 0
    for (component, isMatched) in zip(key.components, matched) {
      if isMatched { ranges.append(offset..<offset + component.byteSize) }
      offset += component.byteSize
    }
    self.ranges = ranges
  }
  override func exec(_ m: Machine) -> Flow {
    _ = key.build(m)
    let wanted = UnsafeRawPointer(key.pointer)
    map.removeAll { candidate in
      for range in ranges where memcmp(candidate + range.lowerBound, wanted + range.lowerBound, range.count) != 0 {
        return false
      }
      return true
    }
    return .next
  }
}

extension ScryType {
  var isAverage: Bool {
    if case .aggregate(.avg) = self { return true }
    return false
  }
}

final class MapHasKey: IntNode {
  unowned(unsafe) let map: MapStorage
  let key: MapKey
  init(map: MapStorage, key: MapKey) {
    self.map = map
    self.key = key
  }
  override func eval(_ m: Machine) -> UInt64 {
    let hash = key.build(m)
    return map.lookup(key: key.pointer, hash: hash, insert: false) == nil ? 0 : 1
  }
}

final class MapLength: IntNode {
  unowned(unsafe) let map: MapStorage
  init(map: MapStorage) { self.map = map }
  override func eval(_ m: Machine) -> UInt64 { UInt64(map.count) }
}

/// `clear(@m)` and `zero(@m)`.
final class MapReset: StmtNode {
  unowned(unsafe) let map: MapStorage
  let keepsKeys: Bool
  init(map: MapStorage, keepsKeys: Bool) {
    self.map = map
    self.keepsKeys = keepsKeys
  }
  override func exec(_ m: Machine) -> Flow {
    m.foldCounters?(m)
    // bpftrace shows a keyless count as `@: 0` after clear(), where other keyless maps vanish.
    if keepsKeys || (map.keySize == 0 && map.info.valueType == .aggregate(.count)) { map.zero() } else { map.clear() }
    return .next
  }
}
