import Glibc
import ScryLanguage

/// Compiled actions are trees of small final classes evaluated by virtual call: no existentials,
/// no closures, no allocation per event. Each node owns whatever scratch bytes it needs, allocated
/// once at compile time (actions never re-enter, so per-node scratch is safe).
/// See docs/internals.md for why a tree rather than a register VM.

/// An integer-valued expression. Values are 64-bit patterns: signed types sign-extended.
class IntNode {
  func eval(_ m: Machine) -> UInt64 { fatalError("abstract") }
}

/// A bytes-valued expression (string, tuple, buffer…) with a fixed layout `type`.
class BytesNode {
  let type: ScryType
  let byteSize: Int
  init(type: ScryType) {
    self.type = type
    self.byteSize = type.byteSize
  }
  /// Writes exactly `byteSize` bytes at `destination`.
  func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) { fatalError("abstract") }
}

/// What a statement tells its enclosing loop or block.
enum Flow {
  case next
  case breakLoop
  case continueLoop
  case returnProbe
}

class StmtNode {
  func exec(_ m: Machine) -> Flow { fatalError("abstract") }
}

/// Owned scratch memory of a fixed size, zeroed at creation.
final class Scratch {
  let pointer: UnsafeMutableRawPointer
  let count: Int
  init(_ count: Int) {
    self.count = max(count, 8)
    pointer = UnsafeMutableRawPointer.allocate(byteCount: self.count, alignment: 16)
    pointer.initializeMemory(as: UInt8.self, repeating: 0, count: self.count)
  }
  deinit { pointer.deallocate() }
}

/// A child node walked on every event, held without reference counting: its parent keeps the
/// owning array as well, so the walk itself does no retain or release.
/// (`unowned(unsafe)` is not enough: the compiler still retains the node around each call.)
struct Unretained<Node: AnyObject> {
  let reference: Unmanaged<Node>
  init(_ node: Node) { reference = .passUnretained(node) }

  /// Calls `body` with the node, without retaining it for the call.
  @inline(__always)
  func with<Result>(_ body: (Node) -> Result) -> Result { reference._withUnsafeGuaranteedRef(body) }
}

extension Array where Element: AnyObject {
  var unretained: [Unretained<Element>] { map { Unretained($0) } }
}

/// A compiled probe block: optional predicate and statements.
public final class Action {
  let predicate: IntNode?
  let body: [StmtNode]
  private let steps: [Unretained<StmtNode>]
  private let test: Unretained<IntNode>?
  /// Bytes of the variables this block uses, zeroed before each run as bpftrace does.
  let variablesSize: Int

  init(predicate: IntNode?, body: [StmtNode], variablesSize: Int) {
    self.predicate = predicate
    self.body = body
    self.steps = body.unretained
    self.test = predicate.map { Unretained($0) }
    self.variablesSize = variablesSize
  }

  /// Runs the block for the event already loaded into `m`.
  /// `skipPredicate` is set when the kernel already applied the whole predicate.
  @inline(__always)
  public func run(_ m: Machine, skipPredicate: Bool = false) {
    if !skipPredicate, let test, test.with({ $0.eval(m) }) == 0 { return }
    if variablesSize > 0 { m.variables.initializeMemory(as: UInt8.self, repeating: 0, count: variablesSize) }
    for step in steps where step.with({ $0.exec(m) }) != .next { return }
  }
}
