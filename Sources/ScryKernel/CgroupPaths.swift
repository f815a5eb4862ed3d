import Glibc

/// Paths of cgroups by id, as bpftrace's `cgroup_path` prints them: for each mounted cgroup
/// hierarchy that has a directory with that id, `NAME:/path` (the v2 hierarchy is `unified`, a v1
/// hierarchy is named by its controllers or its `name=`), `unified` first, then by name.
///
/// A cgroup's id is its directory's inode number in the v2 hierarchy, so that is where an id is
/// meant; the v1 hierarchies are searched too because bpftrace does, but only their directories:
/// bpftrace also reports v1 *files* whose inode number happens to equal the id (its
/// `memory:/process_api/memory.failcnt` for a v2 id is such a coincidence).
public final class CgroupPaths {
  public struct Hierarchy: Sendable, Equatable {
    public var name: String
    public var mountPoint: String
  }

  /// The cgroup hierarchies mounted where Scry runs, read once (from /proc/self/mountinfo).
  public private(set) lazy var hierarchies: [Hierarchy] = Self.mountedHierarchies()
  private var known: [UInt64: [(hierarchy: String, path: String)]] = [:]

  public init() {}

  /// The id of the cgroup whose directory is `path` (its inode number), nil if it is not a directory.
  public static func id(ofDirectory path: String) -> UInt64? {
    var status = stat()
    guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else { return nil }
    return UInt64(status.st_ino)
  }

  /// `NAME:/path` for each hierarchy whose name matches `filter` (a shell pattern; nil: every one),
  /// joined by commas; empty when no hierarchy has the id.
  public func path(of id: UInt64, filter: String? = nil) -> String {
    let found = known[id] ?? search(id)
    return
      found
      .filter { filter == nil || fnmatch(filter!, $0.hierarchy, 0) == 0 }
      .map { "\($0.hierarchy):\($0.path)" }
      .joined(separator: ",")
  }

  private func search(_ id: UInt64) -> [(hierarchy: String, path: String)] {
    var found: [(hierarchy: String, path: String)] = []
    for hierarchy in hierarchies {
      if let path = Self.directory(withInode: id, under: hierarchy.mountPoint, relative: "/") {
        found.append((hierarchy.name, path))
      }
    }
    // Cgroups come and go: an id not found now may exist at the next event, so only hits are kept.
    if !found.isEmpty { known[id] = found }
    return found
  }

  /// Depth-first search for the directory whose inode is `inode`; cgroup trees are small.
  private static func directory(withInode inode: UInt64, under root: String, relative: String) -> String? {
    var status = stat()
    let here = relative == "/" ? root : root + relative
    guard stat(here, &status) == 0 else { return nil }
    if UInt64(status.st_ino) == inode { return relative }
    guard let dir = opendir(here) else { return nil }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
      guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
      if name == "." || name == ".." { continue }
      let child = relative == "/" ? "/" + name : relative + "/" + name
      if let found = directory(withInode: inode, under: root, relative: child) { return found }
    }
    return nil
  }

  /// Every cgroup (v1) and cgroup2 mount, `unified` first, then by name.
  static func mountedHierarchies(mountInfo: String? = nil) -> [Hierarchy] {
    guard let text = mountInfo ?? (try? FileSystem.readText("/proc/self/mountinfo")) else { return [] }
    var found: [Hierarchy] = []
    for line in text.split(separator: "\n") {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
      let halves = line.split(separator: " - ", maxSplits: 1)
      guard halves.count == 2 else { continue }
      let fields = halves[0].split(separator: " ")
      let tail = halves[1].split(separator: " ")
      guard fields.count >= 5, tail.count >= 3 else { continue }
      let mountPoint = String(fields[4])
      switch tail[0] {
      case "cgroup2":
        found.append(Hierarchy(name: "unified", mountPoint: mountPoint))
      case "cgroup":
        let options = tail[2].split(separator: ",").filter { $0 != "rw" && $0 != "ro" }
        let named = options.first { $0.hasPrefix("name=") }.map { String($0.dropFirst(5)) }
        let controllers = options.filter { !$0.contains("=") && !Self.mountFlags.contains(String($0)) }
        guard let name = named ?? (controllers.isEmpty ? nil : controllers.joined(separator: ",")) else { continue }
        found.append(Hierarchy(name: name, mountPoint: mountPoint))
      default:
        continue
      }
    }
    // The same hierarchy may be mounted twice; the first mount serves.
    var seen = Set<String>()
    found = found.filter { seen.insert($0.name).inserted }
    return found.sorted { a, b in
      a.name == "unified" || b.name == "unified" ? a.name == "unified" && b.name != "unified" : a.name < b.name
    }
  }

  /// Super options of a v1 cgroup mount that are not controllers.
  private static let mountFlags: Set<String> = ["noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"]
}
