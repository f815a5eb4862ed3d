/// A map as the whole program uses it: its display name and settled types.
public struct MapInfo: Sendable, Hashable {
  /// `@name`, `@` for the anonymous map, or the bare name of a SystemTap-style global.
  public var name: String
  /// Types of the key components, empty for a map without keys.
  public var keyTypes: [ScryType]
  public var valueType: ScryType
  /// Where the map got its type.
  public var declaration: SourceSpan
  /// The entries a `let @m = hash(N);` declaration allows; nil for the session's default.
  public var maxEntries: Int?
  /// A map the front end made for its own use: never printed at exit, by SIGUSR1 or as a metric.
  public var isInternal: Bool

  public init(
    name: String, keyTypes: [ScryType], valueType: ScryType, declaration: SourceSpan, maxEntries: Int? = nil,
    isInternal: Bool = false
  ) {
    self.isInternal = isInternal
    self.name = name
    self.keyTypes = keyTypes
    self.valueType = valueType
    self.declaration = declaration
    self.maxEntries = maxEntries
  }
}

/// What a script's config block set, for the stages after the checker.
public struct ScriptConfig: Sendable, Equatable {
  /// `max_map_keys`, `max_cat_bytes`, `max_probes`, `max_strlen`: the numbers the block set.
  public var numbers: [ConfigVariable.Setting: Int] = [:]
  /// `print_maps_on_exit`; nil when not set.
  public var printsMapsOnExit: Bool?
  public init() {}
}

/// What a name in expression position turned out to be.
public enum NameResolution: Sendable, Hashable {
  case builtin(Builtin)
  /// A map read: `@x`, `@x[k]` or a bare global; the map's name as in `CheckedProgram.maps`.
  case map(String)
  /// A scratch variable, by slot (unique per probe block and declaration).
  case variable(slot: Int)
  /// `$1`…: its text, or nil when not given (0 as a number, empty as a string).
  case positional(Int)
}

/// The checker's result: the parser's tree plus side tables keyed by node id.
/// When `diagnostics` has errors the tables are partial and the program must not be planned.
public struct CheckedProgram: Sendable {
  /// The parser's tree; a USDT block whose probes' arguments differ is split (StaticProbeSplit.swift).
  public internal(set) var program: Program
  public var diagnostics: [Diagnostic]
  /// Type of each expression, indexed by `NodeID.raw`; `.none` for statements and unknowns.
  public var types: [ScryType]
  /// Resolution of each identifier, variable, map and positional expression.
  public var resolutions: [NodeID: NameResolution]
  /// The function each call expression names.
  public var calls: [NodeID: Function]
  /// The parsed format of each `printf`, `cat` and `system` call, by call expression.
  public var formats: [NodeID: PrintfFormat]
  /// Values the checker settled while checking a call: the address `kaddr("sym")` names,
  /// the number of `signal("SIGTERM")`, by call expression.
  public var constants: [NodeID: UInt64]
  /// The variable each `uaddr("sym")` names, by call expression and then by probe name (a block's
  /// probes may be in different binaries).
  public var userDataSymbols: [NodeID: [String: UserDataSymbol]] = [:]
  /// Strings the checker settled from the probes: `probetype`, by identifier expression.
  public var texts: [NodeID: String] = [:]
  /// The named program parameters `getopt()` reads: any other given is an error.
  public var namedParametersRead: Set<String> = []
  /// Every map by name, in order of first appearance.
  public var maps: [MapInfo]
  /// Type of each scratch variable slot.
  public var variableTypes: [ScryType]
  /// Concrete probes of each probe block, parallel to `program.probes`.
  public var probes: [[ResolvedProbe]]
  /// Positional parameters as given on the command line.
  public var positionals: [String]
  /// The C types the program names (its declarations, the kernel's BTF), for the planner's layouts.
  public var cTypes = CTypes()
  /// The field each field access (`a.f`, `p->f`) resolved to, with its offset in its record.
  public var fields: [NodeID: RecordField] = [:]
  /// The config block's settings that the runtime and the CLI apply (numbers by setting).
  public var config = ScriptConfig()

  public init(program: Program) {
    self.program = program
    self.diagnostics = []
    self.types = Array(repeating: .none, count: program.nodeCount)
    self.resolutions = [:]
    self.calls = [:]
    self.formats = [:]
    self.constants = [:]
    self.maps = []
    self.variableTypes = []
    self.probes = []
    self.positionals = []
  }

  public func type(of expr: Expr) -> ScryType { types[Int(expr.id.raw)] }
  /// The function a call expression names; nil for anything else.
  public func function(of expr: Expr) -> Function? { calls[expr.id] }
  public func map(named name: String) -> MapInfo? { maps.first { $0.name == name } }
  /// An index known before the event: a literal, or a positional parameter given as a number
  /// (`$a->x[$1]`: bpftrace substitutes `$1` before compiling).
  public func constantIndex(_ e: Expr) -> UInt64? {
    switch e.kind {
    case .integer(let n): return n
    case .positional(let n):
      guard let text = PositionalParameter.text(n, in: positionals), let value = PositionalParameter.integer(text) else { return nil }
      return UInt64(bitPattern: value)
    default: return nil
    }
  }
}
