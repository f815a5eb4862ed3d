import Glibc
import ScryLanguage
import ScryRuntime

/// What Tab offers for the word under the cursor: REPL commands, probe providers, tracepoint
/// categories and names (from the catalog, read from tracefs on first use and cached), software
/// and hardware events, paths after `uprobe:`, builtins, functions and the session's maps.
struct Completion {
  let catalog: TraceFSCatalog
  /// The session's map names (`@count`), asked at each Tab.
  let mapNames: () -> [String]

  static let commands = [
    ".help", ".probes", ".list", ".maps", ".detach", ".clear", ".plan", ".save", ".load", ".output", ".wait", ".quit",
  ]
  static let providers = [
    "tracepoint", "kprobe", "kretprobe", "uprobe", "uretprobe", "interval", "profile", "software", "hardware", "usdt",
    "rawtracepoint",
  ]
  static let keywords = ["if", "else", "while", "for", "unroll", "let", "return", "break", "continue"]
  /// Candidates replacing `word`; nil asks readline for its filename completion.
  func candidates(word: String, lineBefore: String) -> [String]? {
    let leading = lineBefore.drop { $0 == " " || $0 == "\t" }
    if leading.hasPrefix(".save ") || leading.hasPrefix(".load ") { return nil }
    if leading.isEmpty && word.hasPrefix(".") { return Self.commands.filter { $0.hasPrefix(word) } }
    if leading.hasPrefix(".output ") { return ["text", "json"].filter { $0.hasPrefix(word) } }
    if let colon = word.firstIndex(of: ":") {
      return probeCandidates(provider: String(word[..<colon]), rest: String(word[word.index(after: colon)...]))
    }
    if word.hasPrefix("@") { return mapNames().filter { $0.hasPrefix(word) } }
    let names =
      Self.providers.map { $0 + ":" } + ["BEGIN", "END"] + Builtin.names + Function.allCases.filter { !$0.isSystemTapOnly }.map { $0.name + "(" }
      + Self.keywords + mapNames().filter { !$0.hasPrefix("@") }
    return names.filter { $0.hasPrefix(word) }
  }

  private func probeCandidates(provider: String, rest: String) -> [String] {
    let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    let head = provider + ":"
    switch ProbeKind(provider: provider) {
    case .tracepoint?:
      let all = catalog.tracepoints(category: "*", name: "*")
      if parts.count == 1 {
        return Array(Set(all.map(\.category))).filter { $0.hasPrefix(parts[0]) }.map { head + $0 + ":" }
      }
      return all.filter { $0.category == parts[0] && $0.name.hasPrefix(parts[1]) }.map { head + $0.category + ":" + $0.name }
    case .software?:
      return PerfEventName.software.map(\.name).filter { $0.hasPrefix(rest) }.map { head + $0 }
    case .hardware?:
      return PerfEventName.hardware.map(\.name).filter { $0.hasPrefix(rest) }.map { head + $0 }
    case .interval?, .profile?:
      return ["s:", "ms:", "us:", "hz:"].filter { $0.hasPrefix(rest) }.map { head + $0 }
    case .uprobe?, .uretprobe?:
      if parts.count >= 2 {
        // uprobe:/bin/bash:read → the binary's functions.
        guard case .found(_, let functions) = catalog.userFunctions(binary: parts[0], pattern: parts[1] + "*") else {
          return []
        }
        return functions.map { head + parts[0] + ":" + $0.name }
      }
      return Self.paths(matching: rest).map { head + $0 }
    case .usdt?:
      if parts.count >= 2 {
        // usdt:/usr/bin/python3:py → the binary's probes as PROVIDER:NAME.
        guard case .found(let probes) = catalog.staticProbes(binary: parts[0], provider: "*", name: "*") else { return [] }
        let written = parts.dropFirst().joined(separator: ":")
        return Array(Set(probes.map { $0.provider + ":" + $0.name })).filter { $0.hasPrefix(written) }.sorted()
          .map { head + parts[0] + ":" + $0 }
      }
      return Self.paths(matching: rest).map { head + $0 }
    default:
      return []
    }
  }

  /// Files and directories starting with `prefix`; directories end in '/', files in ':' (a function follows).
  static func paths(matching prefix: String) -> [String] {
    let slash = prefix.lastIndex(of: "/")
    let directory = slash.map { String(prefix[...$0]) } ?? ""
    let namePrefix = slash.map { String(prefix[prefix.index(after: $0)...]) } ?? prefix
    guard let dir = opendir(directory.isEmpty ? "." : directory) else { return [] }
    defer { closedir(dir) }
    var out: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
      guard name != ".", name != "..", name.hasPrefix(namePrefix) else { continue }
      if namePrefix.isEmpty && name.hasPrefix(".") { continue }
      var info = stat()
      let path = directory + name
      let isDirectory = stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
      out.append(path + (isDirectory ? "/" : ":"))
    }
    return out
  }
}
