/// The syntax tree exactly as the parser built it. The checker never mutates it:
/// what it learns (types, resolved names) lives in side tables keyed by `NodeID`.

/// Identity of one expression or statement node, unique within a `Program`.
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
  public let raw: UInt32
  public init(_ raw: UInt32) { self.raw = raw }
  public var description: String { "#\(raw)" }
}

/// A whole script: probe blocks in source order.
public final class Program: Sendable {
  public let source: SourceFile
  public let probes: [ProbeBlock]
  /// Number of nodes allocated; every `NodeID` is below it (side tables can be arrays).
  public let nodeCount: Int
  /// The C the script carries for bpftrace's clang, in script order: preprocessor lines
  /// (`#include <…>`, `#define N 4`) and type definitions (`struct Foo { int m; };`), read by
  /// `CDeclarationParser`.
  public let declarations: [SourceSpan]
  /// The order a `for` over a map walks it in, keyed by the loop's statement id: SystemTap's
  /// `foreach (k in arr- limit 5)`. A loop not listed walks the map as stored.
  public let mapLoopOrders: [NodeID: MapLoopOrder]
  /// Whether the maps print at exit as bpftrace prints them; SystemTap programs print their own.
  public let printsMapsAtExit: Bool
  /// How `print(@h)` draws a histogram: bpftrace's rows, or SystemTap's `value |---- count` table.
  public let histogramStyle: HistogramStyle
  /// The preamble's `config = { name = value; … }` entries, in order (bpftrace 0.20+).
  public let config: [ConfigEntry]
  /// The preamble's `let @name = hash(100);` map declarations (bpftrace 0.23+).
  public let mapDeclarations: [MapDeclaration]
  /// Where each macro call was expanded, so a diagnostic inside a macro's body can name its call.
  public let macroExpansions: [MacroExpansion]
  /// Maps the front end made for its own use (`PointerStringMaps`): never printed or exported.
  public let internalMaps: Set<String>

  public init(
    source: SourceFile, probes: [ProbeBlock], nodeCount: Int, declarations: [SourceSpan] = [],
    mapLoopOrders: [NodeID: MapLoopOrder] = [:], printsMapsAtExit: Bool = true, histogramStyle: HistogramStyle = .bpftrace,
    config: [ConfigEntry] = [], mapDeclarations: [MapDeclaration] = [], macroExpansions: [MacroExpansion] = [],
    internalMaps: Set<String> = []
  ) {
    self.internalMaps = internalMaps
    self.histogramStyle = histogramStyle
    self.source = source
    self.probes = probes
    self.nodeCount = nodeCount
    self.declarations = declarations
    self.config = config
    self.mapDeclarations = mapDeclarations
    self.macroExpansions = macroExpansions
    self.mapLoopOrders = mapLoopOrders
    self.printsMapsAtExit = printsMapsAtExit
  }
}

public enum HistogramStyle: Sendable, Hashable {
  case bpftrace
  case systemTap
}

/// Which entries a map loop visits, in what order: sorted on the key (element `keyElement` of a
/// tuple key, or the whole key) or on the value, and at most `limit` of them.
public struct MapLoopOrder: Sendable, Hashable {
  public enum SortKey: Sendable, Hashable {
    case value
    /// The key's element at this index (0 for a single key).
    case key(element: Int)
  }
  public var sortKey: SortKey?
  public var descending: Bool
  public var limit: UInt64?

  public init(sortKey: SortKey?, descending: Bool, limit: UInt64?) {
    self.sortKey = sortKey
    self.descending = descending
    self.limit = limit
  }
}

/// One `name = value` of a config block. The value is kept as written: an integer, a word
/// (`perf`, `true`) or a string, read by the checker against `ConfigVariable`.
public struct ConfigEntry: Sendable, Hashable {
  public enum Value: Sendable, Hashable {
    case integer(UInt64)
    case word(String)
    case string(String)
  }
  public let name: String
  public let nameSpan: SourceSpan
  public let value: Value
  public let valueSpan: SourceSpan
}

/// `let @name = kind(max_entries);` in the preamble.
public struct MapDeclaration: Sendable, Hashable {
  public let name: String
  public let nameSpan: SourceSpan
  /// `hash`, `lruhash`, `percpuhash`, `percpulruhash`… as written; the checker knows which exist.
  public let kind: String
  public let kindSpan: SourceSpan
  public let maxEntries: UInt64?
  public let span: SourceSpan
}

/// One macro call replaced by the macro's body: the body's span in the source and the call's.
public struct MacroExpansion: Sendable, Hashable {
  public let name: String
  public let body: SourceSpan
  public let call: SourceSpan
}

/// `spec[, spec…] [/predicate/] { statements }` or `spec < statements >`.
public final class ProbeBlock: Sendable {
  public let span: SourceSpan
  public let specs: [ProbeSpec]
  public let predicate: Expr?
  public let body: Block
  /// Written with the `< … >` notation rather than braces.
  public let isAngleBlock: Bool

  public init(span: SourceSpan, specs: [ProbeSpec], predicate: Expr?, body: Block, isAngleBlock: Bool) {
    self.span = span
    self.specs = specs
    self.predicate = predicate
    self.body = body
    self.isAngleBlock = isAngleBlock
  }
}

/// A probe spec split generically at `:` (quotes removed, wildcards kept):
/// `tracepoint:sched:sched_switch` is provider "tracepoint", parts ["sched", "sched_switch"];
/// `BEGIN` is provider "BEGIN", parts []. Providers and aliases are resolved by the checker.
public struct ProbeSpec: Sendable, Hashable {
  public let span: SourceSpan
  public let provider: String
  public let parts: [String]
  /// Span of each part, parallel to `parts`, for precise diagnostics.
  public let partSpans: [SourceSpan]

  public init(span: SourceSpan, provider: String, parts: [String], partSpans: [SourceSpan]) {
    self.span = span
    self.provider = provider
    self.parts = parts
    self.partSpans = partSpans
  }

  /// The spec as text, `provider:part:part`.
  public var text: String { ([provider] + parts).joined(separator: ":") }
}

/// `{ statement; … }`: a scope for `let` variables.
public final class Block: Sendable {
  public let span: SourceSpan
  public let statements: [Stmt]
  public init(span: SourceSpan, statements: [Stmt]) {
    self.span = span
    self.statements = statements
  }
}

public final class Stmt: Sendable {
  public let id: NodeID
  public let span: SourceSpan
  public let kind: Kind

  public init(id: NodeID, span: SourceSpan, kind: Kind) {
    self.id = id
    self.span = span
    self.kind = kind
  }

  public enum Kind: Sendable {
    /// An expression evaluated for its effect: a call, `@x++`.
    case expression(Expr)
    /// `target = value` (operator nil) or `target op= value`. Target is a map, a bare global or a variable.
    case assign(target: Expr, op: BinaryOperator?, value: Expr)
    /// `let $x [: type] [= value]`, scoped to the enclosing block.
    case letDecl(name: String, nameSpan: SourceSpan, type: TypeName?, value: Expr?)
    /// `if (cond) { } else if … else { }`: `elseBranch` is a block, or nil.
    case ifElse(condition: Expr, then: Block, elseBranch: Block?)
    /// `unroll (N) { }`
    case unroll(count: Expr, body: Block)
    /// `while (cond) { }`
    case whileLoop(condition: Expr, body: Block)
    /// `for ($kv : @map) { }`
    case forMap(variable: String, variableSpan: SourceSpan, map: Expr, body: Block)
    /// `for ($i : start..end) { }`, end exclusive.
    case forRange(variable: String, variableSpan: SourceSpan, start: Expr, end: Expr, body: Block)
    case breakLoop
    case continueLoop
    case returnProbe
    /// A nested `{ }` block.
    case block(Block)
  }
}

public final class Expr: Sendable {
  public let id: NodeID
  public let span: SourceSpan
  public let kind: Kind

  public init(id: NodeID, span: SourceSpan, kind: Kind) {
    self.id = id
    self.span = span
    self.kind = kind
  }

  /// `*` standing for any value of a map key component.
  public var isWildcard: Bool {
    if case .wildcard = kind { return true }
    return false
  }

  public enum Kind: Sendable {
    /// An integer literal's value; `-1` is `.unary(.negate, 1)`.
    case integer(UInt64)
    /// A string literal, escapes already decoded.
    case string([UInt8])
    case boolean(Bool)
    /// `$1`, `$2`…
    case positional(Int)
    /// `$#`
    case positionalCount
    /// A bare name: a builtin (`pid`, `comm`, `args`, `arg0`…) or a bare global map read (`total`).
    case identifier(String)
    /// `$name`
    case variable(String)
    /// `@name[keys]`, `@[keys]`, `@name`, and bare globals `name[keys]` (`isBare`).
    case map(name: String, keys: [Expr], isBare: Bool)
    /// `name(args)`; `kstack`/`ustack` without parentheses are identifiers.
    case call(name: String, nameSpan: SourceSpan, args: [Expr])
    case unary(UnaryOperator, Expr)
    case binary(BinaryOperator, Expr, Expr)
    case ternary(Expr, Expr, Expr)
    /// `a.field` or `a->field` (`isArrow`).
    case field(Expr, name: String, isArrow: Bool)
    /// `t.0`
    case tupleIndex(Expr, Int)
    /// `a[i]` on an array or pointer.
    case index(Expr, Expr)
    /// `(a, b, …)`, two or more elements.
    case tuple([Expr])
    /// `(type)expr`
    case cast(TypeName, Expr)
    /// `x++`, `--x`: `isIncrement` false for `--`.
    case update(Expr, isIncrement: Bool, isPrefix: Bool)
    /// `sizeof(type)` or `sizeof(expr)`.
    case sizeofType(TypeName)
    /// `{ statements; value }`: a block expression (bpftrace 0.22+), scoped like a block. Its value is
    /// the last expression written without a `;`; nil when there is none (a macro used as a statement).
    /// `if (c) { a } else { b }` as an expression is a ternary of two of these.
    case block(Block, value: Expr?)
    /// `offsetof(struct X, a.b)`: the byte offset of a (nested) field.
    case offsetof(TypeName, fields: [String])
    /// `*` as a map key component, in `delete(@m[k, *])`: any value of that component.
    case wildcard
    /// A node the parser made in place of something missing; the checker ignores it.
    case missing
  }
}

/// A type written in the script: `uint32`, `int8 *`, `char[16]`, `string`, `struct task_struct *`.
public struct TypeName: Sendable, Hashable {
  public let span: SourceSpan
  public let name: String
  public let pointerDepth: Int
  public let arrayCount: Int?

  public init(span: SourceSpan, name: String, pointerDepth: Int = 0, arrayCount: Int? = nil) {
    self.span = span
    self.name = name
    self.pointerDepth = pointerDepth
    self.arrayCount = arrayCount
  }
}

public enum UnaryOperator: String, Sendable {
  case not = "!"
  case bitNot = "~"
  case negate = "-"
  /// `*expr`: read through a pointer.
  case deref = "*"
  /// `&expr`
  case addressOf = "&"
}

public enum BinaryOperator: String, Sendable, CaseIterable {
  case logicalOr = "||"
  case logicalAnd = "&&"
  case bitOr = "|"
  case bitXor = "^"
  case bitAnd = "&"
  case equal = "=="
  case notEqual = "!="
  case less = "<"
  case lessEqual = "<="
  case greater = ">"
  case greaterEqual = ">="
  case shiftLeft = "<<"
  case shiftRight = ">>"
  case add = "+"
  case subtract = "-"
  case multiply = "*"
  case divide = "/"
  case modulo = "%"

  /// Integer-valued operators: neither comparisons nor `&&`/`||`.
  public var isArithmetic: Bool {
    switch self {
    case .logicalOr, .logicalAnd, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual: return false
    default: return true
    }
  }
}
