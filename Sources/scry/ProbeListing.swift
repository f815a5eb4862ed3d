import Glibc
import ScryKernel
import ScryLanguage
import ScryRuntime

/// `scry -l [PATTERN]`: probes this machine offers, one per line as bpftrace lists them;
/// with `-v`, each tracepoint's fields with their C types.
enum ProbeListing {
  /// Prints matches to standard output; false when nothing matched.
  static func list(pattern rawPattern: String, verbose: Bool) -> Bool {
    // `tracepoint:sched:*` and `t:sched:*` alike; a bare word searches every provider.
    var pattern = rawPattern
    if let colon = pattern.firstIndex(of: ":"), let kind = ProbeKind(provider: String(pattern[..<colon])) {
      pattern = kind.rawValue + pattern[colon...]
    } else if !pattern.contains(":") && pattern != "*" {
      pattern = "*" + pattern + "*"
    }
    if let functions = userFunctions(pattern) {
      writeAll(1, functions.map { $0 + "\n" }.joined())
      return !functions.isEmpty
    }
    var out = ""
    var matched = false
    func emit(_ name: String, _ details: () -> String = { "" }) {
      guard Glob.matches(pattern, name) else { return }
      matched = true
      out += name + "\n"
      if verbose { out += details() }
    }
    for event in PerfEventName.software { emit("software:\(event.name):") }
    for event in PerfEventName.hardware { emit("hardware:\(event.name):") }
    if let tracefs = try? TraceFS.locate() {
      for category in tracefs.categories().sorted() {
        let prefix = "tracepoint:\(category):"
        // Skip whole categories the pattern cannot match, so `-l 'tracepoint:sched:*'` reads one folder.
        if pattern.hasPrefix("tracepoint:"), !pattern.hasPrefix("tracepoint:*"), !Glob.matches(String(pattern.split(separator: ":").dropFirst().first ?? "*"), category) {
          continue
        }
        for event in tracefs.events(in: category).sorted() {
          emit(prefix + event) {
            guard let format = try? tracefs.format(category: category, name: event) else { return "" }
            return format.eventFields.map { "    \(declaration(of: $0));\n" }.joined()
          }
        }
      }
    }
    writeAll(1, out)
    return matched
  }

  /// `uprobe:BINARY:PATTERN` (or `uretprobe:`): the binary's functions, as bpftrace lists them;
  /// nil when the pattern is not a uprobe pattern naming a binary.
  static func userFunctions(_ pattern: String) -> [String]? {
    let parts = pattern.split(separator: ":", maxSplits: 2).map(String.init)
    guard parts.count >= 2, parts[0] == "uprobe" || parts[0] == "uretprobe", !parts[1].contains("*") else { return nil }
    guard let path = SharedLibraries.resolve(parts[1], pid: nil), let elf = try? ELFFile(path: path) else {
      printError("scry: cannot find or read the binary '\(parts[1])'")
      return []
    }
    let functions = parts.count == 3 ? elf.functions(matching: parts[2]) : elf.functions()
    return functions.map { "\(parts[0]):\(path):\($0.name)" }
  }

  /// A field as bpftrace's `-lv` shows it: `char prev_comm[16]`, `pid_t prev_pid`.
  static func declaration(of field: EventField) -> String {
    if field.isDataLocation { return "__data_loc \(field.cType)[] \(field.name)" }
    if let count = field.arrayCount { return "\(field.cType) \(field.name)[\(count == 0 ? "" : String(count))]" }
    return "\(field.cType) \(field.name)"
  }
}
