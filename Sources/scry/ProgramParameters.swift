/// The words after the program on the command line, as bpftrace reads them: positional
/// parameters ($1, $2…) and named ones (`--name=value`, or `--name` alone, which `getopt()`
/// reads), before or after a `--`.
struct ProgramParameters {
  private(set) var positionals: [String] = []
  private(set) var named: [String: String?] = [:]
  /// A word that looks like an option of Scry's own but is none (`-idonotexist`).
  private(set) var unknownOption: String?

  init(_ words: [String]) {
    for word in words {
      if word == "--" { continue }
      if word.hasPrefix("--") {
        let body = word.dropFirst(2)
        if let equals = body.firstIndex(of: "=") {
          named[String(body[..<equals])] = String(body[body.index(after: equals)...])
        } else {
          named[String(body)] = String?.none
        }
        continue
      }
      // `-` is standard input; `-5` a negative number.
      if word.count > 1, word.hasPrefix("-"), !word.dropFirst().first!.isNumber, unknownOption == nil { unknownOption = word }
      positionals.append(word)
    }
  }
}
