/// The preamble: the config block's entries against `ConfigVariable`, and map declarations.
extension Checker {
  /// Map kinds a `let @m = kind(N);` may name (bpftrace 0.23–0.26). Scry keeps every map in one
  /// user-space table: the per-CPU kinds read the same, and the LRU kinds drop a new key when full
  /// rather than evicting an old one (see docs/language.md).
  static let mapKinds: Set<String> = ["hash", "lruhash", "percpuhash", "percpulruhash"]

  /// The licenses the kernel counts as GPL-compatible (include/linux/license.h).
  static let gplCompatibleLicenses: Set<String> = [
    "GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL",
  ]

  /// Reads the config block into `result.config`, `options` and `stackMode`; runs before the walks.
  mutating func checkConfig() {
    var seen: [String: SourceSpan] = [:]
    for entry in result.program.config {
      guard let variable = ConfigVariable.named(entry.name) else {
        error(entry.nameSpan, "unknown config variable '\(entry.name)'",
              hint: Suggestions.hint(for: entry.name.lowercased(), in: ConfigVariable.all.map(\.name))
                ?? "known: " + ConfigVariable.all.map(\.name).joined(separator: ", "))
        continue
      }
      if let earlier = seen[variable.name] {
        error(entry.nameSpan, "config variable '\(variable.name)' is set twice",
              notes: [.init(span: earlier, message: "first set here")])
        continue
      }
      seen[variable.name] = entry.nameSpan
      guard let value = configValue(entry, variable) else { continue }
      if variable.name == "license" && !Self.gplCompatibleLicenses.contains(value.word) {
        // bpftrace's words: the kernel refuses its tracing helpers to other licenses.
        error(entry.valueSpan,
              "Your bpftrace program cannot load because you are using a license that is non-GPL compatible. License: \(value.word)",
              hint: "GPL-compatible: " + Self.gplCompatibleLicenses.sorted().joined(separator: ", "))
        continue
      }
      if options.environmentSettings.contains(variable.setting) { continue }  // the environment wins
      switch variable.setting {
      case .stringLength:
        options.stringCapacity = value.number
        result.config.numbers[.stringLength] = value.number
      case .mapKeysMax, .catBytesMax, .maxProbes: result.config.numbers[variable.setting] = value.number
      case .stackMode: stackMode = StackType.Mode(rawValue: value.word) ?? .bpftrace
      case .printMapsOnExit: result.config.printsMapsOnExit = value.number != 0
      case .missingProbes: missingProbes = value.word
      case .noEffect: break
      }
    }
  }

  /// The entry's value if it suits the variable: a number (booleans as 1/0) or a word.
  private mutating func configValue(_ entry: ConfigEntry, _ variable: ConfigVariable) -> (number: Int, word: String)? {
    let written: String
    switch entry.value {
    case .integer(let n): written = "\(n)"
    case .word(let w): written = w
    case .string(let s): written = s
    }
    if let reason = variable.refusedValues[written] {
      error(entry.valueSpan, "'\(variable.name) = \(written)' is not supported", hint: reason)
      return nil
    }
    switch (variable.kind, entry.value) {
    case (.number(let minimum, let maximum), .integer(let n)):
      guard n >= UInt64(minimum) && n <= UInt64(maximum) else {
        error(entry.valueSpan, "'\(variable.name)' must be from \(minimum) to \(maximum), not \(n)")
        return nil
      }
      return (Int(n), written)
    case (.boolean, .integer(let n)) where n <= 1: return (Int(n), written)
    case (.boolean, .word(let w)) where w == "true" || w == "false": return (w == "true" ? 1 : 0, w)
    case (.word(let words), .word(let w)) where words.contains(w): return (0, w)
    case (.word(let words), .string(let s)) where words.contains(s): return (0, s)
    case (.string, .string(let s)): return (0, s)
    case (.emptyString(let reason), .string(let s)):
      if !s.isEmpty {
        error(entry.valueSpan, "'\(variable.name) = \"\(s)\"' is not supported", hint: reason)
        return nil
      }
      return (0, s)
    default:
      error(entry.valueSpan, "'\(written)' is not a value for '\(variable.name)'", hint: "it takes \(describe(variable.kind))")
      return nil
    }
  }

  private func describe(_ kind: ConfigVariable.Kind) -> String {
    switch kind {
    case .number(let minimum, let maximum): return "a whole number from \(minimum) to \(maximum)"
    case .word(let words): return "one of " + words.joined(separator: ", ")
    case .boolean: return "true or false"
    case .string: return "a string"
    case .emptyString: return "only the empty string \"\""
    }
  }

  /// Checks `let @m = kind(N);` and bounds the map it declares to N entries.
  mutating func applyMapDeclarations() {
    var seen: [String: SourceSpan] = [:]
    for declaration in result.program.mapDeclarations {
      if let earlier = seen[declaration.name] {
        error(declaration.nameSpan, "map '\(declaration.name)' is declared twice", notes: [.init(span: earlier, message: "first declared here")])
        continue
      }
      seen[declaration.name] = declaration.nameSpan
      guard Checker.mapKinds.contains(declaration.kind) else {
        error(declaration.kindSpan, "unknown map kind '\(declaration.kind)'",
              hint: Suggestions.hint(for: declaration.kind, in: Array(Checker.mapKinds))
                ?? "known kinds: " + Checker.mapKinds.sorted().joined(separator: ", "))
        continue
      }
      guard let maxEntries = declaration.maxEntries else { continue }
      guard maxEntries >= 1 && maxEntries <= UInt64(Int32.max) else {
        error(declaration.span, "a map holds from 1 to \(Int32.max) entries, not \(maxEntries)")
        continue
      }
      guard let index = result.maps.firstIndex(where: { $0.name == declaration.name }) else {
        warning(declaration.nameSpan, "map '\(declaration.name)' is declared but never assigned")
        continue
      }
      result.maps[index].maxEntries = Int(maxEntries)
    }
  }
}
