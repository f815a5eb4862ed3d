import Glibc

/// Finds the file a uprobe target names, as bpftrace 0.17 does for `uprobe:TARGET:func`.
///
/// bpftrace accepts `uprobe:libc:malloc` (a name starting with "lib", looked up as "libc.so*"),
/// not `c` or `libc.so.6`; Scry also accepts an exact file name such as `libc.so.6`, which
/// bpftrace rejects, since that cannot change the meaning of a script bpftrace runs.
public enum SharedLibraries {
  /// A library named as bpftrace allows (`libc`, `libpthread`; also `libc.so.6`) to a path:
  /// through /proc/PID/maps when pid is given (the mapped file whose basename starts with
  /// `libNAME.` or `libNAME-` and contains ".so", or equals the name), else through the dynamic
  /// linker's cache /etc/ld.so.cache (the first entry whose name starts with `libNAME.so` or
  /// equals the name), else nil. A name containing '/' is a path and returned as is when it
  /// exists (with a pid, an absolute one missing here is looked up under /proc/PID/root). Any other name is first looked up in $PATH as an executable (`uprobe:bash:readline`).
  public static func resolve(_ name: String, pid: Int32?) -> String? {
    if name.utf8.contains(UInt8(ascii: "/")) {
      if access(name, F_OK) == 0 { return name }
      // A file of the traced process's own mount namespace (a container's), as bpftrace finds it.
      if let pid, name.hasPrefix("/"), access("/proc/\(pid)/root" + name, F_OK) == 0 { return "/proc/\(pid)/root" + name }
      return nil
    }
    if name.isEmpty { return nil }
    if let executable = executableInPath(name) { return executable }
    if let pid, let mapped = mappedLibrary(name, pid: pid) { return mapped }
    guard let cache = try? LinkerCache() else { return nil }
    return cachedLibrary(name, in: cache)
  }

  /// The first entry of `cache` that `name` designates, or nil.
  static func cachedLibrary(_ name: String, in cache: LinkerCache) -> String? {
    let prefix = name.hasPrefix("lib") ? name + ".so" : nil
    for entry in cache.entries {
      if entry.name == name || (prefix.map { entry.name.hasPrefix($0) } ?? false) { return entry.path }
    }
    return nil
  }

  /// The library `name` designates among the files mapped by process `pid`, or nil.
  static func mappedLibrary(_ name: String, pid: Int32) -> String? {
    guard let maps = try? FileSystem.readText("/proc/\(pid)/maps") else { return nil }
    return library(name, inMaps: maps)
  }

  /// The library `name` designates among the paths of a /proc/PID/maps text, or nil.
  static func library(_ name: String, inMaps maps: String) -> String? {
    let stems = name.hasPrefix("lib") ? [name + ".", name + "-"] : []
    for line in maps.split(separator: "\n") {
      // The path is the last field and the only one that can contain '/'; it may contain spaces.
      guard let slash = line.firstIndex(of: "/") else { continue }
      let path = line[slash...]
      if path.hasSuffix(" (deleted)") { continue }
      let base = path[(path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex)...]
      if base == name { return String(path) }
      if base.contains(".so"), stems.contains(where: { base.hasPrefix($0) }) { return String(path) }
    }
    return nil
  }

  /// The first executable regular file called `name` in the directories of $PATH, or nil.
  static func executableInPath(_ name: String) -> String? {
    guard let value = getenv("PATH") else { return nil }
    for directory in String(cString: value).split(separator: ":") where !directory.isEmpty {
      let candidate = directory + "/" + name
      var info = stat()
      if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
        return candidate
      }
    }
    return nil
  }
}
