/// SystemTap's syntax tree, as `StapParser` reads it. It lives only between parsing and
/// `StapLowering`, which turns it into Scry's `Program`: globals and functions must be known
/// program-wide before any probe body can be lowered (SystemTap declares them anywhere).

/// One component of a probe point: `process("/bin/ls")` is name "process", argument "/bin/ls".
struct StapPointComponent {
  var name: String
  var argument: StapLiteral?
  var span: SourceSpan
}

enum StapLiteral: Equatable {
  case string(String)
  case integer(UInt64)
}

/// `kernel.trace("sys_enter")?`: the dotted components and the optional/sufficient marks.
struct StapProbePoint {
  var components: [StapPointComponent]
  var span: SourceSpan
  var isOptional: Bool
}

/// A probe alias: the points it stands for and its prologue (or epilogue).
struct StapAlias {
  var points: [StapProbePoint]
  var body: StapStmt
  var isEpilogue: Bool

  /// The dotted name a point spells when it has no arguments and no wildcard, as aliases are named.
  static func name(of point: StapProbePoint) -> String? {
    guard point.components.allSatisfy({ $0.argument == nil && !$0.name.contains("*") }) else { return nil }
    return point.components.map(\.name).joined(separator: ".")
  }
}

struct StapProbe {
  var points: [StapProbePoint]
  var body: StapStmt
  var span: SourceSpan
}

struct StapGlobal {
  var name: String
  var span: SourceSpan
  var initializer: StapExpr?
}

struct StapFunction {
  var name: String
  var span: SourceSpan
  var parameters: [(name: String, span: SourceSpan)]
  var body: StapStmt
}

/// What `foreach` sorts on, and which way.
struct StapSort {
  /// nil sorts on the value; otherwise the 1-based key index.
  var keyIndex: Int?
  var descending: Bool
  /// `@sum+` and the like on a statistic array: the extractor the value is.
  var extractor: String?
}

final class StapStmt {
  let span: SourceSpan
  let kind: Kind
  init(_ kind: Kind, _ span: SourceSpan) {
    self.kind = kind
    self.span = span
  }

  enum Kind {
    case block([StapStmt])
    case expression(StapExpr)
    case ifElse(StapExpr, StapStmt, StapStmt?)
    case whileLoop(StapExpr, StapStmt)
    case forLoop(StapExpr?, StapExpr?, StapExpr?, StapStmt)
    /// `foreach ([a, b] in arr- limit N)`; `value` is `v = [a, b] in arr`.
    case foreach(keys: [(name: String, span: SourceSpan)], value: String?, array: String, arraySpan: SourceSpan,
      sort: StapSort?, limit: StapExpr?, body: StapStmt)
    /// `delete arr[k]`, `delete arr`, `delete scalar`
    case delete(StapExpr)
    case next
    case breakLoop
    case continueLoop
    case returnValue(StapExpr?)
    /// `try { body } catch (msg) { handler }`; the variable is optional.
    case tryCatch(StapStmt, variable: (name: String, span: SourceSpan)?, StapStmt)
    case empty
  }
}

final class StapExpr {
  let span: SourceSpan
  let kind: Kind
  init(_ kind: Kind, _ span: SourceSpan) {
    self.kind = kind
    self.span = span
  }

  enum Kind {
    case integer(UInt64)
    case string([UInt8])
    /// A local or global name.
    case name(String)
    /// `$name`, `$$vars`, `$return`, `$name->field`…
    case target(String)
    case field(StapExpr, String)
    /// `arr[k1, k2]`
    case index(String, nameSpan: SourceSpan, [StapExpr])
    /// `f(args)`: a script function or a tapset function.
    case call(String, nameSpan: SourceSpan, [StapExpr])
    /// `@count(arr[k])`, `@entry(expr)`, `@hist_linear(x, 0, 100, 10)`.
    case extractor(String, nameSpan: SourceSpan, [StapExpr])
    case unary(String, StapExpr)
    case binary(String, StapExpr, StapExpr)
    case ternary(StapExpr, StapExpr, StapExpr)
    /// `a = b`, `a += b`, `a .= b`, `a <<< b`
    case assign(String, StapExpr, StapExpr)
    case update(StapExpr, isIncrement: Bool, isPrefix: Bool)
    /// `[k1, k2] in arr`
    case membership([StapExpr], String, arraySpan: SourceSpan)
    case missing
  }
}
