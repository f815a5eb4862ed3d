import Glibc

/// Shell-style wildcards as probe specs use them: `*` any run, `?` one character. Iterative with
/// one backtrack point, so never recursive. Tracepoint names, listings and ELF symbols share it.
public enum Glob {
  public static func matches(_ pattern: String, _ text: String) -> Bool {
    matches(pattern: Array(pattern.utf8), text: Array(text.utf8))
  }

  /// Whether `pattern` has a wildcard at all (else it names one thing).
  public static func hasWildcard(_ pattern: [UInt8]) -> Bool {
    pattern.contains(UInt8(ascii: "*")) || pattern.contains(UInt8(ascii: "?"))
  }

  public static func matches(pattern p: [UInt8], text t: [UInt8]) -> Bool {
    var pi = 0
    var ti = 0
    var star = -1
    var mark = 0
    while ti < t.count {
      if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
        pi += 1
        ti += 1
      } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
        star = pi
        mark = ti
        pi += 1
      } else if star >= 0 {
        pi = star + 1
        mark += 1
        ti = mark
      } else {
        return false
      }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
  }

  /// Regular executable files matching a shell pattern, in glob(3)'s (sorted) order: the binaries
  /// of `uprobe:/usr/bin/python3*:…` and `usdt:/opt/*/bin/*:…`.
  public static func executableFiles(matching pattern: String) -> [String] {
    var matches = glob_t()
    defer { globfree(&matches) }
    guard glob(pattern, 0, nil, &matches) == 0 else { return [] }
    return (0..<Int(matches.gl_pathc)).compactMap { i in
      guard let raw = matches.gl_pathv[i] else { return nil }
      let path = String(cString: raw)
      var info = stat()
      guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(path, X_OK) == 0 else { return nil }
      return path
    }
  }
}
