import Synchronization

/// The kernel's types as a script sees them: vmlinux's BTF, then the BTF of each loaded module
/// (`/sys/kernel/btf/<module>`, split over vmlinux), searched in that order, as bpftrace does.
///
/// Modules are read lazily: only when vmlinux misses a name, one at a time (in name order) until
/// one has it, and each at most once (its blob, or its failure, is kept). Most scripts name only
/// vmlinux types and never read a module; a name nobody defines reads every module once.
///
/// A type found in a module comes with the module's blob: its ids continue vmlinux's, so only
/// that blob resolves both its own ids and the vmlinux ids its members refer to.
/// Thread-safe: the module cache is behind a lock.
public final class KernelBTF: @unchecked Sendable {
  // @unchecked: the only mutable state is `modules`, behind its Mutex.

  /// A type by the blob that defines it and its id there.
  public struct Found {
    public let btf: BTF
    public let id: UInt32
  }

  /// vmlinux's BTF, and the base of every module's.
  public let vmlinux: BTF
  /// Where the modules' blobs are; every file there but `vmlinux` is one.
  public let moduleDirectory: String
  private let modules = Mutex(ModuleCache())

  /// The running kernel's types, read on first use and shared; the error when vmlinux's BTF
  /// cannot be read (modules that cannot be read are skipped, not an error).
  public static let running: Result<KernelBTF, KernelError> = BTF.vmlinux.map { KernelBTF(vmlinux: $0) }

  /// `moduleDirectory` is injectable so tests can give modules to a kernel that has none.
  public init(vmlinux: BTF, moduleDirectory: String = "/sys/kernel/btf") {
    self.vmlinux = vmlinux
    self.moduleDirectory = moduleDirectory
  }

  // MARK: - Lookups

  /// The defined struct (or union) named `name`.
  public func structID(named name: String, isUnion: Bool = false) -> Found? {
    first { $0.structID(named: name, isUnion: isUnion) }
  }

  /// The typedef named `name`.
  public func typedefID(named name: String) -> Found? {
    first { $0.typedefID(named: name) }
  }

  /// The enum named `name`.
  public func enumID(named name: String) -> Found? {
    first { $0.enumID(named: name) }
  }

  /// The value of the enumerator `name`, from vmlinux's enums, then the modules'.
  public func enumValue(named name: String) -> Int64? {
    if let value = vmlinux.enumValue(named: name) { return value }
    var found: Int64? = nil
    _ = searchModules { module in
      // A split blob searches its base first: vmlinux has just missed, so this is the module's own.
      found = module.enumValue(named: name)
      return found != nil
    }
    return found
  }

  /// Every blob read so far: vmlinux, then the modules read (each one a miss had to open).
  public var loadedBlobs: [BTF] {
    [vmlinux] + modules.withLock { cache in cache.names.compactMap { cache.loaded[$0] ?? nil } }
  }

  /// Every blob: vmlinux, then every module's, reading those not read yet (for listings).
  public func allBlobs() -> [BTF] {
    _ = searchModules { _ in false }
    return loadedBlobs
  }

  private func first(_ lookup: (BTF) -> UInt32?) -> Found? {
    if let id = lookup(vmlinux) { return Found(btf: vmlinux, id: id) }
    var found: Found? = nil
    _ = searchModules { module in
      // A module's lookup includes vmlinux's (its base), which just missed: an id found here is
      // the module's own.
      guard let id = lookup(module) else { return false }
      found = Found(btf: module, id: id)
      return true
    }
    return found
  }

  /// Calls `visit` on each module's blob in name order, reading each on first need, until it
  /// returns true; whether one did.
  private func searchModules(_ visit: (BTF) -> Bool) -> Bool {
    let names = modules.withLock { cache in
      if cache.listed { return cache.names }
      cache.names = FileSystem.entries(of: moduleDirectory).filter { $0 != "vmlinux" }
      cache.listed = true
      return cache.names
    }
    for name in names {
      guard let module = module(named: name) else { continue }
      if visit(module) { return true }
    }
    return false
  }

  /// Module `name`'s blob, read once; nil (remembered) when it cannot be read.
  private func module(named name: String) -> BTF? {
    if let cached = modules.withLock({ $0.loaded[name] }) { return cached }
    // Read outside the lock: a module blob is a file read, and lookups on other threads need
    // not wait for it. Two threads may both read it; the first stored wins.
    let blob = try? BTF(path: moduleDirectory + "/" + name, base: vmlinux)
    return modules.withLock { cache in
      if let cached = cache.loaded[name] { return cached }
      cache.loaded[name] = .some(blob)
      return blob
    }
  }
}

/// The modules' names (listed on the first miss) and the blobs read so far, nil for a module
/// whose blob could not be read.
private struct ModuleCache {
  var listed = false
  var names: [String] = []
  var loaded: [String: BTF?] = [:]
}
