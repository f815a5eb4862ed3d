/// Built-in variables (`pid`, `comm`, `arg0`…), resolved from identifiers by the checker.
public enum Builtin: Hashable, Sendable {
  case pid, tid, uid, gid, nsecs, elapsed, cpu, comm, probe, function, rand, cgroup, retval, args
  case kstack, ustack, curtask, username, cpid, jiffies, numaid
  /// `arg0`…`arg9`
  case arg(Int)
  /// `sarg0`… (stack arguments)
  case stackArg(Int)

  public init?(name: String) {
    switch name {
    case "pid": self = .pid
    case "tid": self = .tid
    case "uid": self = .uid
    case "gid": self = .gid
    case "nsecs": self = .nsecs
    case "elapsed": self = .elapsed
    case "cpu": self = .cpu
    case "comm": self = .comm
    case "probe": self = .probe
    case "func": self = .function
    case "rand": self = .rand
    case "cgroup": self = .cgroup
    case "retval": self = .retval
    case "args": self = .args
    case "kstack": self = .kstack
    case "ustack": self = .ustack
    case "curtask": self = .curtask
    case "username": self = .username
    case "cpid": self = .cpid
    case "jiffies": self = .jiffies
    case "numaid": self = .numaid
    default:
      if name.hasPrefix("arg"), let n = Int(name.dropFirst(3)), n >= 0, n <= 9, name.count == 4 { self = .arg(n) }
      else if name.hasPrefix("sarg"), let n = Int(name.dropFirst(4)), n >= 0, n <= 9, name.count == 5 {
        self = .stackArg(n)
      } else { return nil }
    }
  }

  public static let names = [
    "pid", "tid", "uid", "gid", "nsecs", "elapsed", "cpu", "comm", "probe", "func", "rand", "cgroup", "retval",
    "args", "kstack", "ustack", "curtask", "username", "cpid", "jiffies", "numaid",
  ] + (0...9).map { "arg\($0)" }
}

/// A map as the whole program uses it: its display name and settled types.
public struct MapInfo: Sendable, Hashable {
  /// `@name`, `@` for the anonymous map, or the bare name of a SystemTap-style global.
  public var name: String
  /// Types of the key components, empty for a map without keys.
  public var keyTypes: [ScryType]
  public var valueType: ScryType
  /// Where the map got its type.
  public var declaration: SourceSpan

  public init(name: String, keyTypes: [ScryType], valueType: ScryType, declaration: SourceSpan) {
    self.name = name
    self.keyTypes = keyTypes
    self.valueType = valueType
    self.declaration = declaration
  }
}

/// What a name in expression position turned out to be.
public enum NameResolution: Sendable, Hashable {
  case builtin(Builtin)
  /// A map read: `@x`, `@x[k]` or a bare global; the map's name as in `CheckedProgram.maps`.
  case map(String)
  /// A scratch variable, by slot (unique per probe block and declaration).
  case variable(slot: Int)
  /// `$1`…: its value, or 0/"" when not given.
  case positional(Int)
}

/// The checker's result: the parser's tree plus side tables keyed by node id.
/// When `diagnostics` has errors the tables are partial and the program must not be planned.
public struct CheckedProgram: Sendable {
  public let program: Program
  public var diagnostics: [Diagnostic]
  /// Type of each expression, indexed by `NodeID.raw`; `.none` for statements and unknowns.
  public var types: [ScryType]
  /// Resolution of each identifier, variable, map and positional expression.
  public var resolutions: [NodeID: NameResolution]
  /// Every map by name, in order of first appearance.
  public var maps: [MapInfo]
  /// Type of each scratch variable slot.
  public var variableTypes: [ScryType]
  /// Concrete probes of each probe block, parallel to `program.probes`.
  public var probes: [[ResolvedProbe]]
  /// Positional parameters as given on the command line.
  public var positionals: [String]

  public init(program: Program) {
    self.program = program
    self.diagnostics = []
    self.types = Array(repeating: .none, count: program.nodeCount)
    self.resolutions = [:]
    self.maps = []
    self.variableTypes = []
    self.probes = []
    self.positionals = []
  }

  public func type(of expr: Expr) -> ScryType { types[Int(expr.id.raw)] }
  public func map(named name: String) -> MapInfo? { maps.first { $0.name == name } }
}
