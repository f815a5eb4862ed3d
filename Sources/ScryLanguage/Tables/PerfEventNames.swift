/// The software and hardware events a `software:`/`hardware:` probe may name, as bpftrace and
/// perf spell them, with bpftrace's aliases and default sample periods: the one list the checker
/// resolves against, `-l` lists and completion offers. The kernel layer opens them by `name`.
public struct PerfEventName: Sendable, Hashable {
  public var name: String
  public var aliases: [String]
  /// One sample every `defaultPeriod` events when the probe gives no period (bpftrace's defaults).
  public var defaultPeriod: UInt64

  public init(_ name: String, aliases: [String] = [], period: UInt64) {
    self.name = name
    self.aliases = aliases
    self.defaultPeriod = period
  }

  public static let software: [PerfEventName] = [
    .init("alignment-faults", period: 1), .init("bpf-output", period: 1),
    .init("context-switches", aliases: ["cs"], period: 1000), .init("cpu-clock", aliases: ["cpu"], period: 1_000_000),
    .init("cpu-migrations", aliases: ["migrations"], period: 1), .init("dummy", period: 1),
    .init("emulation-faults", period: 1), .init("major-faults", period: 1), .init("minor-faults", period: 100),
    .init("page-faults", aliases: ["faults"], period: 100), .init("task-clock", period: 1_000_000),
  ]

  public static let hardware: [PerfEventName] = [
    .init("backend-stalls", period: 1_000_000), .init("branch-instructions", aliases: ["branches"], period: 100_000),
    .init("branch-misses", period: 100_000), .init("bus-cycles", period: 100_000),
    .init("cache-misses", period: 1_000_000), .init("cache-references", period: 1_000_000),
    .init("cpu-cycles", aliases: ["cycles"], period: 1_000_000), .init("frontend-stalls", period: 1_000_000),
    .init("instructions", period: 1_000_000), .init("ref-cycles", period: 1_000_000),
  ]

  /// The event a probe names by its name or an alias.
  public static func find(_ name: String, in table: [PerfEventName]) -> PerfEventName? {
    table.first { $0.name == name || $0.aliases.contains(name) }
  }
}
