import Glibc

import ScryLanguage

/// The limits bpftrace reads from its environment, read once at startup: the numeric
/// `ConfigVariable`s (`BPFTRACE_STRLEN` or `BPFTRACE_MAX_STRLEN`, `BPFTRACE_MAP_KEYS_MAX` or
/// `BPFTRACE_MAX_MAP_KEYS`, …), each also as `SCRY_…` (which wins when both are set). A script's
/// config block sets what the environment left alone. Invariant: every value is at least 1 and
/// within its bound.
struct TracingEnvironment: Equatable {
  /// Bytes kept of a string read by `str()` (bpftrace's default 64, at most 200).
  var stringLength = 64
  /// Keys a map may hold: Scry's own bound is wider than bpftrace's 4096 unless the variable is set.
  var mapKeysMax = 1 << 20
  /// Bytes `cat()` reads from a file.
  var catBytesMax = 10 * 1024
  /// Probes one program may attach.
  var maxProbes = 512
  /// The settings an environment variable gave.
  var fromEnvironment: Set<ConfigVariable.Setting> = []

  /// One variable bpftrace honours, its bound, and where its value goes.
  struct Variable: Sendable {
    let name: String
    let maximum: Int
    let acceptsSizeSuffix: Bool
    let keyPath: WritableKeyPath<TracingEnvironment, Int> & Sendable
  }

  /// Where each numeric setting lives here.
  static func keyPath(_ setting: ConfigVariable.Setting) -> (WritableKeyPath<TracingEnvironment, Int> & Sendable)? {
    switch setting {
    case .stringLength: return \TracingEnvironment.stringLength
    case .mapKeysMax: return \TracingEnvironment.mapKeysMax
    case .catBytesMax: return \TracingEnvironment.catBytesMax
    case .maxProbes: return \TracingEnvironment.maxProbes
    case .stackMode, .printMapsOnExit, .missingProbes, .noEffect: return nil
    }
  }

  static let variables: [Variable] = ConfigVariable.all.flatMap { config -> [Variable] in
    guard let keyPath = keyPath(config.setting), case .number(_, let maximum) = config.kind else { return [] }
    return config.environmentNames.map {
      Variable(name: $0, maximum: maximum, acceptsSizeSuffix: config.acceptsSizeSuffix, keyPath: keyPath)
    }
  }

  /// These settings with the script's config block applied where no environment variable spoke.
  func applying(_ config: ScriptConfig) -> TracingEnvironment {
    var settings = self
    for (setting, value) in config.numbers where !fromEnvironment.contains(setting) {
      if let keyPath = Self.keyPath(setting) { settings[keyPath: keyPath] = value }
    }
    return settings
  }

  /// The ENVIRONMENT section of `--help` (and so of the man page), one line per config variable.
  static var helpSection: String {
    let lines = ConfigVariable.all.filter { !$0.environmentNames.isEmpty }.map { config in
      "  " + config.environmentNames.map { "BPFTRACE_\($0)" }.joined(separator: ", ") + " or SCRY_…: \(config.summary)."
    }
    return "ENVIRONMENT\n" + lines.joined(separator: "\n")
      + "\n  SCRY_… wins over BPFTRACE_…; either wins over a script's config block."
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
      if let config = ConfigVariable.all.first(where: { $0.environmentNames.contains(variable.name) }) {
        settings.fromEnvironment.insert(config.setting)
      }
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
