import Glibc
import ScryKernel
import ScryLanguage
import ScryRuntime

/// `scry -l [PATTERN]`: probes this machine offers, one per line as bpftrace lists them;
/// with `-v`, each tracepoint's fields with their C types; with `-p PID`, the functions of the
/// process's executable.
enum ProbeListing {
  /// A character no probe name has and no wildcard is: a control character anywhere, or, in the
  /// provider (or a bare word, before any ':'), anything but letters, digits and `_ * ? . -`.
  /// After the first ':' a file path may hold nearly anything, so only control characters count.
  static func invalidCharacter(in pattern: String) -> Character? {
    if pattern.hasPrefix("struct ") || pattern.hasPrefix("union ") { return nil }
    if let control = pattern.first(where: { $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f } }) {
      return control
    }
    let provider = pattern.prefix { $0 != ":" }
    return provider.first { !($0.isLetter || $0.isNumber || "_*?.-".contains($0)) }
  }

  /// Prints matches to standard output; false when nothing matched.
  static func list(pattern rawPattern: String, verbose: Bool, pid: Int32? = nil) -> Bool {
    // `struct task_*`, `union bpf_attr`: the kernel's types from BTF, as bpftrace lists them.
    if rawPattern.hasPrefix("struct ") || rawPattern.hasPrefix("union ") {
      let names = KernelTypeListing.names(matching: rawPattern)
      for name in names {
        writeAll(1, verbose ? (KernelTypeListing.definition(of: name) ?? name + "\n") + "\n" : name + "\n")
      }
      return !names.isEmpty
    }
    // `tracepoint:sched:*` and `t:sched:*` alike; a bare word searches every provider.
    var pattern = rawPattern
    if let colon = pattern.firstIndex(of: ":"), let kind = ProbeKind(provider: String(pattern[..<colon])) {
      pattern = kind.rawValue + pattern[colon...]
    } else if !pattern.contains(":") && pattern != "*" {
      pattern = "*" + pattern + "*"
    }
    if pattern.hasPrefix("usdt:") {
      let probes = staticProbes(pattern, pid: pid)
      writeAll(1, probes.map { $0 + "\n" }.joined())
      return !probes.isEmpty
    }
    // `*:FILE:*`: any provider that probes a file, so its functions, then its USDT probes.
    let parts = pattern.split(separator: ":", omittingEmptySubsequences: false)
    if pid == nil, parts.count >= 3, parts[0] == "*", parts[1].contains("/") {
      let rest = pattern.dropFirst(2)
      let names = (userFunctions("uprobe:" + rest, verbose: verbose) ?? []) + staticProbes("usdt:" + rest, pid: nil)
      writeAll(1, names.map { $0 + "\n" }.joined())
      return !names.isEmpty
    }
    if let pid {
      // A pattern any provider may match lists the USDT probes of the files the process maps too.
      var names = processFunctions(pid, matching: pattern)
      if pattern.hasPrefix("*") {
        names += staticProbes("usdt:*", pid: pid).filter { Glob.matches(pattern, $0) }
      }
      writeAll(1, names.map { $0 + "\n" }.joined())
      return !names.isEmpty
    }
    if let functions = userFunctions(pattern, verbose: verbose) {
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
    for kind in [ProbeKind.interval, .profile] {
      for unit in ["hz", "us", "ms", "s"] { emit("\(kind.rawValue):\(unit):") }
    }
    // Each event, then its alias, as bpftrace lists them (`software:cpu-clock:`, `software:cpu:`).
    for (kind, table) in [("software", PerfEventName.software), ("hardware", PerfEventName.hardware)] {
      for event in table {
        for name in [event.name] + event.aliases { emit("\(kind):\(name):") }
      }
    }
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

  /// `scry -l -e PROGRAM`, `scry -l FILE`: the program's probes, one per line as bpftrace lists
  /// them, without attaching: a spec with a wildcard as `-l` lists its pattern, any other as written
  /// (its provider's full name). False when the program does not parse or lists nothing.
  static func listProgram(_ source: SourceFile, pid: Int32?) -> Bool {
    let (program, diagnostics) = Parser.parse(source)
    if diagnostics.hasErrors {
      printError(DiagnosticRenderer(useColor: isatty(2) != 0).render(Array(diagnostics.prefix(20)), in: source), newline: false)
      return false
    }
    var listed = false
    for spec in program.probes.flatMap(\.specs) {
      let kind = ProbeKind(provider: spec.provider)
      let text = ([kind?.rawValue ?? spec.provider] + spec.parts).joined(separator: ":")
      guard text.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) else {
        writeAll(1, text + "\n")
        listed = true
        continue
      }
      if let pid, kind == .uprobe || kind == .uretprobe {
        // The process's functions are listed as uprobes; a uretprobe pattern lists the same functions.
        let functions = processFunctions(pid, matching: "uprobe" + text.drop { $0 != ":" })
        let prefix = kind!.rawValue
        writeAll(1, functions.map { prefix + $0.drop { $0 != ":" } + "\n" }.joined())
        listed = listed || !functions.isEmpty
        continue
      }
      listed = list(pattern: text, verbose: false, pid: pid) || listed
    }
    return listed
  }

  /// `uprobe:BINARY:PATTERN` (or `uretprobe:`): the binary's functions, as bpftrace lists them;
  /// a wildcard in BINARY lists every executable file it matches, each under the path as matched.
  /// nil when the pattern is not a uprobe pattern naming a binary. With `verbose`, each uprobe
  /// function is followed by its parameters from the binary's DWARF, one indented line each
  /// (`    int argc`), as bpftrace's `-lv`.
  static func userFunctions(_ pattern: String, verbose: Bool = false) -> [String]? {
    let parts = pattern.split(separator: ":", maxSplits: 2).map(String.init)
    guard parts.count >= 2, parts[0] == "uprobe" || parts[0] == "uretprobe", parts[1] != "*" else { return nil }
    if parts[1].contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
      return Glob.executableFiles(matching: parts[1]).flatMap { path in
        functions(of: path, named: path, matching: parts.count == 3 ? parts[2] : nil).map { "\(parts[0]):\($0)" }
      }
    }
    guard let path = SharedLibraries.resolve(parts[1], pid: nil), (try? ELFFile(path: path)) != nil else {
      printError("scry: cannot find or read the binary '\(parts[1])'")
      return []
    }
    let names = functions(of: path, named: path, matching: parts.count == 3 ? parts[2] : nil).map { "\(parts[0]):\($0)" }
    // bpftrace lists parameters for uprobes only: a uretprobe has none to read.
    guard verbose, parts[0] == "uprobe" else { return names }
    let catalog = TraceFSCatalog()
    return names.map { line in
      let function = String(line.split(separator: ":").last ?? "")
      guard case .found(let parameters) = catalog.userParameters(binary: path, function: function) else { return line }
      return ([line] + parameters.map { "    \($0.cType) \($0.name)" }).joined(separator: "\n")
    }
  }

  /// `usdt:PATH:[PROVIDER:]NAME` (with `-p`, `usdt:*` or no path: every file the process maps):
  /// each probe once, as bpftrace lists them (`usdt:/usr/bin/python3:python:gc__start`).
  static func staticProbes(_ pattern: String, pid: Int32?) -> [String] {
    var parts = pattern.split(separator: ":", omittingEmptySubsequences: false).dropFirst().map(String.init)
    if parts.count == 1 { parts.append("*") }  // `usdt:PATH` or `usdt:*`
    let binary = parts[0].isEmpty || parts[0] == "*" ? nil : parts[0]
    let provider = parts.count >= 3 ? parts[1] : "*"
    let name = parts[parts.count - 1]
    switch TraceFSCatalog(targetPid: pid).staticProbes(binary: binary, provider: provider, name: name) {
    case .found(let probes):
      var seen = Set<String>()
      // Sorted as whole lines, as bpftrace sorts them (`python3.11:…` before `python3:…`).
      return probes.map { "usdt:\($0.path):\($0.provider):\($0.name)" }.filter { seen.insert($0).inserted }.sorted()
    case .failed(let message, _):
      // Nothing matching lists nothing, as in bpftrace; a file that cannot be read says why.
      if !message.hasPrefix("no usdt probe") { printError("scry: " + message) }
      return []
    }
  }

  /// `-l -p PID`: the functions of the process's executable, named through its root as bpftrace
  /// names them (`uprobe:/proc/PID/root/usr/bin/bash:readline`), filtered by `pattern`.
  static func processFunctions(_ pid: Int32, matching pattern: String) -> [String] {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
    guard length > 0 else {
      printError("scry: no process with pid \(pid) to list")
      return []
    }
    let executable = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let path = "/proc/\(pid)/root" + executable
    return functions(of: path, named: path, matching: nil).map { "uprobe:\($0)" }.filter { Glob.matches(pattern, $0) }
  }

  /// `NAME:function` for each function of the ELF file at `path`.
  private static func functions(of path: String, named name: String, matching pattern: String?) -> [String] {
    guard let elf = try? ELFFile(path: path) else { return [] }
    let functions = pattern.map { elf.functions(matching: $0) } ?? elf.functions()
    return functions.map { "\(name):\($0.name)" }
  }

  /// A field as bpftrace's `-lv` shows it: `char prev_comm[16]`, `pid_t prev_pid`.
  static func declaration(of field: EventField) -> String {
    if field.isDataLocation { return "__data_loc \(field.cType)[] \(field.name)" }
    if let count = field.arrayCount { return "\(field.cType) \(field.name)[\(count == 0 ? "" : String(count))]" }
    return "\(field.cType) \(field.name)"
  }
}
