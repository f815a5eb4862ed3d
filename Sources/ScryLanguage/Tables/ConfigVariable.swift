/// bpftrace's config variables: the one table behind a script's `config = { … }` block and the
/// `BPFTRACE_*` / `SCRY_*` environment variables Scry honours (read by the CLI's
/// `TracingEnvironment`). A config block names a variable in lower case (`max_map_keys`), by an
/// older name (`map_keys_max`), or as its environment variable (`BPFTRACE_MAX_MAP_KEYS`).
public struct ConfigVariable: Sendable {
  /// What setting the variable changes in Scry.
  public enum Setting: String, Sendable, Hashable {
    /// Bytes kept of a string `str()` reads.
    case stringLength
    /// Keys a map may hold.
    case mapKeysMax
    /// Bytes `cat()` reads.
    case catBytesMax
    /// Probes one program may attach.
    case maxProbes
    /// How `kstack`/`ustack` print when the call names no mode.
    case stackMode
    /// Whether the maps print when the run ends.
    case printMapsOnExit
    /// What to do with a probe that does not exist: `error`, `warn` (skip it, saying so) or `ignore`.
    case missingProbes
    /// A variable about bpftrace's BPF code generation or loading, which Scry (evaluating actions in
    /// user space) has no equivalent for and nothing to change: accepted, with no effect.
    case noEffect
  }

  /// What a value must be.
  public enum Kind: Sendable {
    /// A whole number from `minimum` to `maximum`.
    case number(minimum: Int = 1, maximum: Int)
    /// One of these words.
    case word([String])
    /// `true` or `false` (or 1 and 0).
    case boolean
    /// A string, any.
    case string
    /// Only the empty string: any other would change output Scry keeps as bpftrace 0.17's.
    case emptyString(because: String)
  }

  /// The name bpftrace 0.26 documents, in lower case.
  public let name: String
  /// Older names bpftrace accepted for it (0.17–0.19 environment spellings), in lower case.
  public let aliases: [String]
  public let setting: Setting
  public let kind: Kind
  /// Values the variable may name that Scry refuses, with why (`missing_probes = warn`).
  public let refusedValues: [String: String]
  /// The environment names the CLI reads, without `BPFTRACE_`/`SCRY_` (empty: only the config block).
  public let environmentNames: [String]
  /// Whether the environment value may end in `k` or `m` (kibibytes, mebibytes).
  public let acceptsSizeSuffix: Bool
  /// What it sets, for `--help` and the man page (variables read from the environment).
  public let summary: String

  init(
    _ name: String, aliases: [String] = [], _ setting: Setting, _ kind: Kind, refusedValues: [String: String] = [:],
    environment: [String] = [], acceptsSizeSuffix: Bool = false, summary: String = ""
  ) {
    self.summary = summary
    self.name = name
    self.aliases = aliases
    self.setting = setting
    self.kind = kind
    self.refusedValues = refusedValues
    self.environmentNames = environment
    self.acceptsSizeSuffix = acceptsSizeSuffix
  }

  private static let unstableModes = ["error", "warn", "enable"]

  public static let all: [ConfigVariable] = [
    // bpftrace keeps strings on the 512-byte BPF stack and, up to 0.20, refused more than 200.
    ConfigVariable(
      "max_strlen", aliases: ["strlen"], .stringLength, .number(maximum: 200), environment: ["STRLEN", "MAX_STRLEN"],
      summary: "bytes kept of a string read by str() (default 64, at most 200)"),
    ConfigVariable(
      "max_map_keys", aliases: ["map_keys_max"], .mapKeysMax, .number(maximum: Int(Int32.max)),
      environment: ["MAP_KEYS_MAX", "MAX_MAP_KEYS"],
      summary: "keys a map may hold; inserts beyond are dropped and counted (default 1048576)"),
    ConfigVariable(
      "max_cat_bytes", aliases: ["cat_bytes_max"], .catBytesMax, .number(maximum: 1 << 30),
      environment: ["CAT_BYTES_MAX", "MAX_CAT_BYTES"], acceptsSizeSuffix: true,
      summary: "bytes cat() reads from a file (default 10k; k and m suffixes)"),
    ConfigVariable(
      "max_probes", .maxProbes, .number(maximum: 1 << 20), environment: ["MAX_PROBES"],
      summary: "probes one program may attach (default 512)"),
    ConfigVariable("stack_mode", .stackMode, .word(["bpftrace", "perf", "raw"])),
    ConfigVariable("print_maps_on_exit", .printMapsOnExit, .boolean),
    ConfigVariable("missing_probes", .missingProbes, .word(["error", "warn", "ignore"])),
    ConfigVariable(
      "str_trunc_trailer", .noEffect,
      .emptyString(because: "Scry prints a truncated string as bpftrace 0.17 does, without a trailer")),
    // 0 is bpftrace 0.26's "never on the stack" (its runtime tests set it).
    ConfigVariable("on_stack_limit", .noEffect, .number(minimum: 0, maximum: Int(Int32.max))),
    ConfigVariable("log_size", .noEffect, .number(maximum: Int(Int32.max))),
    ConfigVariable("max_bpf_progs", .noEffect, .number(maximum: Int(Int32.max))),
    ConfigVariable("perf_rb_pages", .noEffect, .number(maximum: Int(Int32.max))),
    ConfigVariable("license", .noEffect, .string),
    ConfigVariable("cache_user_symbols", .noEffect, .word(["per_program", "per_pid", "none", "PER_PROGRAM", "PER_PID", "NONE"])),
    ConfigVariable("cpp_demangle", .noEffect, .boolean),
    ConfigVariable("lazy_symbolication", .noEffect, .boolean),
    ConfigVariable("show_debug_info", .noEffect, .boolean),
    ConfigVariable("unstable_map_decl", .noEffect, .word(unstableModes)),
    ConfigVariable("unstable_macro", .noEffect, .word(unstableModes)),
    ConfigVariable("unstable_tseries", .noEffect, .word(unstableModes)),
    ConfigVariable("unstable_addr", .noEffect, .word(unstableModes)),
    ConfigVariable("unstable_import", .noEffect, .word(unstableModes)),
  ]

  /// The variable a config block's name denotes: any case, with or without `BPFTRACE_`.
  public static func named(_ written: String) -> ConfigVariable? {
    var name = written.lowercased()
    if name.hasPrefix("bpftrace_") { name.removeFirst("bpftrace_".count) }
    return all.first { $0.name == name || $0.aliases.contains(name) }
  }
}
