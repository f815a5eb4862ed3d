import Glibc
import Synchronization

/// The function symbols of a binary's separate debug file.
public struct DebugSymbols: Sendable, Equatable {
  /// Where they were read from, e.g. /usr/lib/debug/.build-id/93/ac61….debug.
  public var path: String
  /// The defined functions of the debug file's .symtab, one per name, sorted by name. Their
  /// addresses are the original binary's: debug files keep the addresses but not the code.
  public var functions: [ELFSymbol]
}

/// Finds and reads the separate debug files of stripped binaries, as gdb, perf and bpftrace do:
/// first by GNU build-id (`ROOT/.build-id/XX/REST.debug`, Debian's -dbg packages), then by the
/// `.gnu_debuglink` name in the binary's directory, its `.debug/` subdirectory and `ROOT/DIR/`.
public enum DebugFiles {
  /// The global debug directory gdb and perf search by default.
  public static let defaultRoot = "/usr/lib/debug"

  /// Every binary's lookup result, found misses included, so each debug file is searched for and
  /// read once per process: a library is opened by the catalog, by `-l` and by the symbolizer,
  /// and under several paths (/lib vs /usr/lib, /proc/PID/root/…). Keyed by build-id when the
  /// binary has one (that names the contents, whatever the path), else by the binary's real path.
  private static let cache = Mutex(Cache())

  private struct Cache {
    var results: [String: DebugSymbols?] = [:]
    /// How many times each debug file was read through the cache, for the tests.
    var reads: [String: Int] = [:]
  }

  /// The debug symbols for `elf`, from the cache or found under `defaultRoot`; nil when none.
  static func symbols(for elf: ELFFile) -> DebugSymbols? {
    let buildID = elf.buildIDHex
    guard buildID != nil || elf.debugLink != nil else { return nil }
    let key = buildID.map { "build-id:" + $0 } ?? "path:" + (realPath(elf.path) ?? elf.path)
    // Held while reading: a second thread asking for the same file waits rather than reads it twice.
    return cache.withLock { cache in
      if let known = cache.results[key] { return known }
      let path = locate(for: elf, root: defaultRoot)
      if let path { cache.reads[path, default: 0] += 1 }
      let found = path.flatMap(read)
      cache.results[key] = .some(found)
      return found
    }
  }

  /// How many times the debug file at `path` was read through the cache (at most once).
  static func readCount(of path: String) -> Int {
    cache.withLock { $0.reads[path] ?? 0 }
  }

  /// The path of `elf`'s debug file under `root`, verified to belong to it: same build-id, or
  /// (when either file lacks one) the .gnu_debuglink CRC-32 of its contents; nil when none is found.
  public static func locate(for elf: ELFFile, root: String) -> String? {
    let buildID = elf.buildIDHex
    if let buildID, buildID.utf8.count > 2 {
      let candidate = root + "/.build-id/" + buildID.prefix(2) + "/" + buildID.dropFirst(2) + ".debug"
      if let debug = try? ELFFile(path: candidate), debug.buildIDHex == buildID { return candidate }
    }
    guard let link = elf.debugLink, !link.name.contains("/") else { return nil }
    var directories = [directory(of: elf.path)]
    // Debian links /lib to /usr/lib: look under the real directory too, as gdb does.
    if let real = realPath(elf.path).map(directory), real != directories[0] { directories.append(real) }
    for directory in directories {
      for candidate in [directory + "/" + link.name, directory + "/.debug/" + link.name, root + directory + "/" + link.name] {
        guard !sameFile(candidate, elf.path), let debug = try? ELFFile(path: candidate) else { continue }
        if let buildID, let other = debug.buildIDHex {
          if other == buildID { return candidate }
        } else if crc32(debug.bytes) == link.crc {
          return candidate
        }
      }
    }
    return nil
  }

  /// The function symbols of the debug file at `path`; nil when it cannot be read.
  static func read(_ path: String) -> DebugSymbols? {
    guard let debug = try? ELFFile(path: path) else { return nil }
    // The debug file's own index: its .symtab (its .dynsym is NOBITS and skipped).
    let functions = ELFFunctionIndex(file: debug, debugFunctions: []).sorted
    return functions.isEmpty ? nil : DebugSymbols(path: path, functions: functions)
  }

  /// The CRC-32 (IEEE 802.3, zlib's) of the whole file, as .gnu_debuglink records it.
  static func crc32(_ bytes: ELFBytes) -> UInt32 {
    guard let base = bytes.base else { return 0 }
    return crc32(UnsafeRawBufferPointer(start: base, count: bytes.count))
  }

  static func crc32(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in buffer {
      crc = crcTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
    }
    return ~crc
  }

  private static let crcTable: [UInt32] = (0..<256).map { index in
    var value = UInt32(index)
    for _ in 0..<8 { value = value & 1 != 0 ? 0xedb8_8320 ^ (value >> 1) : value >> 1 }
    return value
  }

  static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "" : String(path[..<slash])
  }

  static func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  private static func sameFile(_ a: String, _ b: String) -> Bool {
    var first = stat()
    var second = stat()
    return stat(a, &first) == 0 && stat(b, &second) == 0 && first.st_dev == second.st_dev && first.st_ino == second.st_ino
  }
}
