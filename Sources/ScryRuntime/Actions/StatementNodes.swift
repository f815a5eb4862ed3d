import Glibc
import ScryLanguage
import ScryPlan

final class ExpressionStatement: StmtNode {
  let expression: IntNode
  init(_ expression: IntNode) { self.expression = expression }
  override func exec(_ m: Machine) -> Flow {
    _ = expression.eval(m)
    return .next
  }
}

final class VariableStoreInt: StmtNode {
  let offset: Int
  let value: IntNode
  init(offset: Int, value: IntNode) {
    self.offset = offset
    self.value = value
  }
  override func exec(_ m: Machine) -> Flow {
    m.variables.storeBytes(of: value.eval(m), toByteOffset: offset, as: UInt64.self)
    return .next
  }
}

final class VariableStoreBytes: StmtNode {
  let offset: Int
  let value: BytesNode
  let scratch: Scratch
  init(offset: Int, value: BytesNode) {
    self.offset = offset
    self.value = value
    self.scratch = Scratch(value.byteSize)
  }
  override func exec(_ m: Machine) -> Flow {
    // Through scratch: the value may read the variable it replaces (`$s = ($s.1, $s.0)`).
    value.eval(m, into: scratch.pointer)
    (m.variables + offset).copyMemory(from: scratch.pointer, byteCount: value.byteSize)
    return .next
  }
}

final class VariableUpdateInt: IntNode {
  let offset: Int
  let operation: UpdateOperation
  let operand: IntNode?
  let returnsOld: Bool
  init(offset: Int, operation: UpdateOperation, operand: IntNode?, returnsOld: Bool) {
    self.offset = offset
    self.operation = operation
    self.operand = operand
    self.returnsOld = returnsOld
  }
  override func eval(_ m: Machine) -> UInt64 {
    let rhs = operand?.eval(m) ?? 1
    let old = m.variables.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    let new = operation.apply(old, rhs)
    m.variables.storeBytes(of: new, toByteOffset: offset, as: UInt64.self)
    return returnsOld ? old : new
  }
}

/// Runs statements in order, passing break/continue/return up.
final class Sequence: StmtNode {
  let statements: [StmtNode]
  private let steps: [Unretained<StmtNode>]
  init(_ statements: [StmtNode]) {
    self.statements = statements
    self.steps = statements.unretained
  }
  override func exec(_ m: Machine) -> Flow {
    for step in steps {
      let flow = step.with { $0.exec(m) }
      if flow != .next { return flow }
    }
    return .next
  }
}

final class IfStatement: StmtNode {
  let condition: IntNode
  let then: Sequence
  let otherwise: Sequence?
  init(_ condition: IntNode, then: Sequence, otherwise: Sequence?) {
    self.condition = condition
    self.then = then
    self.otherwise = otherwise
  }
  override func exec(_ m: Machine) -> Flow {
    if condition.eval(m) != 0 { return then.exec(m) }
    return otherwise?.exec(m) ?? .next
  }
}

/// `while` and `unroll`: bounded, as bpftrace's verifier bounds loops.
final class LoopStatement: StmtNode {
  /// Iterations one loop may run per event before it is cut short (bpftrace's verifier allows ~1M instructions).
  static let iterationLimit: UInt64 = 1 << 20
  let condition: IntNode?
  let count: IntNode?
  let body: Sequence
  init(condition: IntNode?, count: IntNode?, body: Sequence) {
    self.condition = condition
    self.count = count
    self.body = body
  }
  override func exec(_ m: Machine) -> Flow {
    let limit = count.map { min($0.eval(m), LoopStatement.iterationLimit) } ?? LoopStatement.iterationLimit
    var i: UInt64 = 0
    while i < limit {
      if let condition, condition.eval(m) == 0 { break }
      i += 1
      switch body.exec(m) {
      case .breakLoop: return .next
      case .returnProbe: return .returnProbe
      case .next, .continueLoop: continue
      }
    }
    return .next
  }
}

/// `for ($i : start..end)`.
final class RangeLoop: StmtNode {
  let offset: Int
  let start: IntNode
  let end: IntNode
  let body: Sequence
  init(offset: Int, start: IntNode, end: IntNode, body: Sequence) {
    self.offset = offset
    self.start = start
    self.end = end
    self.body = body
  }
  override func exec(_ m: Machine) -> Flow {
    var i = Int64(bitPattern: start.eval(m))
    let end = Int64(bitPattern: self.end.eval(m))
    var iterations: UInt64 = 0
    while i < end && iterations < LoopStatement.iterationLimit {
      m.variables.storeBytes(of: i, toByteOffset: offset, as: Int64.self)
      iterations += 1
      i += 1
      switch body.exec(m) {
      case .breakLoop: return .next
      case .returnProbe: return .returnProbe
      case .next, .continueLoop: continue
      }
    }
    return .next
  }
}

/// `for ($kv : @map)`: `$kv` is the tuple (key, value); iterates over a snapshot of the entries.
final class MapLoop: StmtNode {
  unowned(unsafe) let map: MapStorage
  let offset: Int
  let keySize: Int
  let valueSize: Int
  let body: Sequence
  let order: MapLoopOrder?
  init(map: MapStorage, offset: Int, body: Sequence, order: MapLoopOrder?) {
    self.map = map
    self.offset = offset
    self.keySize = map.keySize
    self.valueSize = map.valueSize
    self.body = body
    self.order = order
  }
  override func exec(_ m: Machine) -> Flow {
    // A snapshot, so that the body may update the map it walks.
    var entries: [UInt8] = []
    map.forEach { key, value in
      entries.append(contentsOf: UnsafeRawBufferPointer(start: key, count: keySize))
      entries.append(contentsOf: UnsafeRawBufferPointer(start: value, count: valueSize))
    }
    let stride = keySize + valueSize
    guard stride > 0 else { return .next }
    if let order { entries = ordered(entries, stride: stride, order: order) }
    var position = 0
    while position + stride <= entries.count {
      entries.withUnsafeBytes { (m.variables + offset).copyMemory(from: $0.baseAddress! + position, byteCount: stride) }
      position += stride
      switch body.exec(m) {
      case .breakLoop: return .next
      case .returnProbe: return .returnProbe
      case .next, .continueLoop: continue
      }
    }
    return .next
  }
}

extension MapLoop {
  /// The snapshot's entries sorted and cut as SystemTap's `foreach` asks. Integers compare as
  /// signed 64-bit values, anything else (strings) byte by byte; equal entries keep their order.
  func ordered(_ entries: [UInt8], stride: Int, order: MapLoopOrder) -> [UInt8] {
    let count = entries.count / stride
    var indices = Array(0..<count)
    if let sortKey = order.sortKey {
      let (start, width): (Int, Int)
      switch sortKey {
      case .value: (start, width) = (keySize, valueSize)
      case .key(let element):
        let offsets = map.info.keyTypes.reduce(into: [0]) { $0.append($0.last! + $1.byteSize) }
        (start, width) = element < map.info.keyTypes.count ? (offsets[element], map.info.keyTypes[element].byteSize) : (0, keySize)
      }
      let isInteger: Bool
      switch sortKey {
      case .value:
        // count, sum, min and max keep their value in the first 8 bytes.
        if case .aggregate = map.info.valueType { isInteger = true } else { isInteger = map.info.valueType.isInteger }
      case .key(let element): isInteger = element < map.info.keyTypes.count && map.info.keyTypes[element].isInteger
      }
      entries.withUnsafeBytes { bytes in
        func less(_ a: Int, _ b: Int) -> Bool {
          let x = bytes.baseAddress! + a * stride + start
          let y = bytes.baseAddress! + b * stride + start
          if isInteger {
            let u = Int64(bitPattern: x.loadUnaligned(as: UInt64.self))
            let v = Int64(bitPattern: y.loadUnaligned(as: UInt64.self))
            return order.descending ? u > v : u < v
          }
          let c = memcmp(x, y, width)
          return order.descending ? c > 0 : c < 0
        }
        indices.sort { less($0, $1) || (!less($1, $0) && $0 < $1) }
      }
    }
    if let limit = order.limit, UInt64(indices.count) > limit { indices.removeLast(indices.count - Int(limit)) }
    var result: [UInt8] = []
    result.reserveCapacity(indices.count * stride)
    for i in indices { result.append(contentsOf: entries[(i * stride)..<((i + 1) * stride)]) }
    return result
  }
}

final class FlowStatement: StmtNode {
  let flow: Flow
  init(_ flow: Flow) { self.flow = flow }
  override func exec(_ m: Machine) -> Flow { flow }
}

/// A block expression's integer value: its statements run (their flow cannot leave the block:
/// the checker refuses `return`, `break` and `continue` there), then the value.
final class IntSequence: IntNode {
  let body: Sequence
  let value: IntNode
  init(_ body: Sequence, _ value: IntNode) {
    self.body = body
    self.value = value
  }
  override func eval(_ m: Machine) -> UInt64 {
    _ = body.exec(m)
    return value.eval(m)
  }
}

/// A block expression's byte value.
final class BytesSequence: BytesNode {
  let body: Sequence
  let value: BytesNode
  init(_ body: Sequence, _ value: BytesNode) {
    self.body = body
    self.value = value
    super.init(type: value.type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    _ = body.exec(m)
    value.eval(m, into: destination)
  }
}
