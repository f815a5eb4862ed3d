import Glibc

/// The limits bpftrace reads from its environment, read once at startup: `BPFTRACE_STRLEN`,
/// `BPFTRACE_MAP_KEYS_MAX`, `BPFTRACE_CAT_BYTES_MAX`, `BPFTRACE_MAX_PROBES`, each also as `SCRY_…`
/// (which wins when both are set). Invariant: every value is at least 1 and within its bound.
struct TracingEnvironment: Equatable {
  /// Bytes kept of a string read by `str()` (bpftrace's default 64, at most 200).
  var stringLength = 64
  /// Keys a map may hold: Scry's own bound is wider than bpftrace's 4096 unless the variable is set.
  var mapKeysMax = 1 << 20
  /// Bytes `cat()` reads from a file.
  var catBytesMax = 10 * 1024
  /// Probes one program may attach.
  var maxProbes = 512

  /// One variable bpftrace honours, its bound, and where its value goes.
  struct Variable: Sendable {
    let name: String
    let maximum: Int
    let acceptsSizeSuffix: Bool
    let keyPath: WritableKeyPath<TracingEnvironment, Int> & Sendable
    /// What it bounds, for `--help` and the man page.
    let summary: String
  }

  static let variables: [Variable] = [
    // bpftrace keeps strings on the 512-byte BPF stack and refuses more than 200.
    Variable(
      name: "STRLEN", maximum: 200, acceptsSizeSuffix: false, keyPath: \.stringLength,
      summary: "bytes kept of a string read by str() (default 64, at most 200)"),
    Variable(
      name: "MAP_KEYS_MAX", maximum: Int(Int32.max), acceptsSizeSuffix: false, keyPath: \.mapKeysMax,
      summary: "keys a map may hold; inserts beyond are dropped and counted (default 1048576)"),
    Variable(
      name: "CAT_BYTES_MAX", maximum: 1 << 30, acceptsSizeSuffix: true, keyPath: \.catBytesMax,
      summary: "bytes cat() reads from a file (default 10k; k, m, g suffixes)"),
    Variable(
      name: "MAX_PROBES", maximum: 1 << 20, acceptsSizeSuffix: false, keyPath: \.maxProbes,
      summary: "probes one program may attach (default 512)"),
  ]

  /// The ENVIRONMENT section of `--help` (and so of the man page), one line per variable.
  static var helpSection: String {
    "ENVIRONMENT\n"
      + variables.map { "  BPFTRACE_\($0.name) or SCRY_\($0.name): \($0.summary)." }.joined(separator: "\n")
      + "\n  SCRY_… wins when both are set."
  }

  /// A value that is not a number in range; `description` is the sentence the CLI prints.
  struct InvalidValue: Error, CustomStringConvertible {
    let variable: String
    let value: String
    let reason: String
    var description: String { "scry: \(variable)='\(value)' is not valid: \(reason)" }
  }

  /// The settings from `environment` (the process environment when nil).
  static func read(_ environment: [String: String]? = nil) throws(InvalidValue) -> TracingEnvironment {
    let lookup: (String) -> String? = { name in
      if let environment { return environment[name] }
      return getenv(name).map { String(cString: $0) }
    }
    var settings = TracingEnvironment()
    for variable in variables {
      let scryName = "SCRY_" + variable.name
      let bpftraceName = "BPFTRACE_" + variable.name
      guard let (name, text) = lookup(scryName).map({ (scryName, $0) }) ?? lookup(bpftraceName).map({ (bpftraceName, $0) })
      else { continue }
      settings[keyPath: variable.keyPath] = try parse(text, as: name, variable: variable)
    }
    return settings
  }

  private static func parse(_ text: String, as name: String, variable: Variable) throws(InvalidValue) -> Int {
    var digits = Substring(text)
    var unit = 1
    if variable.acceptsSizeSuffix, let last = digits.last {
      switch last {
      case "k", "K": unit = 1 << 10
      case "m", "M": unit = 1 << 20
      default: break
      }
      if unit != 1 { digits = digits.dropLast() }
    }
    let suffixes = variable.acceptsSizeSuffix ? ", optionally with a k or m suffix" : ""
    guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let number = Int(digits) else {
      throw InvalidValue(variable: name, value: text, reason: "expected a whole number from 1 to \(variable.maximum)\(suffixes)")
    }
    let (value, overflow) = number.multipliedReportingOverflow(by: unit)
    guard !overflow, value >= 1, value <= variable.maximum else {
      throw InvalidValue(variable: name, value: text, reason: "it must be from 1 to \(variable.maximum)")
    }
    return value
  }
}
