import Glibc

/// Small file helpers over raw syscalls (no Foundation), for /proc, /sys and tracefs.
///
/// Pseudo-files report size 0 in `stat`, so files are read until EOF in chunks.
public enum FileSystem {
  /// The whole contents of `path` as bytes; throws a `KernelError` naming the path.
  public static func readBytes(_ path: String) throws(KernelError) -> [UInt8] {
    let fd = try checkedCall("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 8192)
    while true {
      let n = try checkedCall("read", path) {
        chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      }
      if n == 0 { break }
      bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
  }

  /// The contents of `path` decoded as UTF-8 (invalid bytes repaired).
  public static func readText(_ path: String) throws(KernelError) -> String {
    String(decoding: try readBytes(path), as: UTF8.self)
  }

  /// Writes `text` to `path` (e.g. a tracefs control file).
  public static func writeText(_ path: String, _ text: String, append: Bool = false) throws(KernelError) {
    let flags = O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
    let fd = try checkedCall("open", path) { open(path, flags) }
    defer { close(fd) }
    var utf8 = Array(text.utf8)
    let count = utf8.count
    _ = try checkedCall("write", path) { utf8.withUnsafeMutableBytes { write(fd, $0.baseAddress, count) } }
  }

  /// Writes `text` to a new or truncated regular file at `path` (mode 0644), all of it.
  public static func createFile(_ path: String, _ text: String) throws(KernelError) {
    let fd = try checkedCall("open", path) { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
      let n = try checkedCall("write", path) { bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) } }
      done += n
    }
  }

  /// Whether `path` exists and is a directory.
  public static func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
  }

  /// The names of every entry of `path` (not `.` or `..`), sorted; empty if it cannot be read.
  public static func entries(of path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  /// The names of the subdirectories of `path`, sorted; empty if it cannot be read.
  public static func subdirectories(of path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
      }
      if name == "." || name == ".." { continue }
      let type = entry.pointee.d_type
      if type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && isDirectory(path + "/" + name)) {
        names.append(name)
      }
    }
    return names.sorted()
  }
}
