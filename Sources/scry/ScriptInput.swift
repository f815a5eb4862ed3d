import Glibc
import ScryLanguage

/// Where the program comes from: `-e`, a file, or standard input (`-`, or no script off a terminal),
/// read with a size cap so `/dev/zero` or a huge file is refused before it is read whole.
enum ScriptInput {
  /// No script is this large; the parser keeps offsets in 32 bits.
  static let maxBytes = 16 << 20

  enum Failure: Error, CustomStringConvertible {
    case unreadable(path: String, errno: Int32)
    case tooLarge(path: String)

    var description: String {
      switch self {
      // bpftrace's words, which wrappers may look for.
      case .unreadable(let path, let code): return "ERROR: failed to open file '\(path)': \(String(cString: strerror(code)))"
      case .tooLarge(let path):
        return "scry: '\(path)' is larger than \(ScriptInput.maxBytes >> 20) MiB: that is not a script"
      }
    }
  }

  /// The file at `path` as a script; `-` is standard input.
  static func read(path: String) throws(Failure) -> SourceFile {
    if path == "-" { return SourceFile(name: "stdin", text: try readStandardInput()) }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .unreadable(path: path, errno: errno) }
    defer { close(fd) }
    var info = stat()
    if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { throw .unreadable(path: path, errno: EISDIR) }
    // A regular file says its size; a device or pipe is read until the cap says no.
    if (info.st_mode & S_IFMT) == S_IFREG && Int(info.st_size) > maxBytes { throw .tooLarge(path: path) }
    return SourceFile(name: path, text: try readCapped(fd, name: path))
  }

  /// Standard input, capped like a file.
  static func readStandardInput() throws(Failure) -> String {
    try readCapped(0, name: "stdin")
  }

  private static func readCapped(_ fd: Int32, name: String) throws(Failure) -> String {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = Glibc.read(fd, &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw .unreadable(path: name, errno: errno) }
      if n == 0 { break }
      bytes += chunk[0..<n]
      if bytes.count > maxBytes { throw .tooLarge(path: name) }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
