import Glibc
import ScryKernel
import ScryLanguage

/// The front end's view of the machine: tracepoint names and their records from tracefs, typed for
/// the checker, and the functions of binaries for uprobes. Reads lazily and caches, so a script
/// that names no tracepoint never touches tracefs.
public final class TraceFSCatalog: ProbeCatalog, @unchecked Sendable {
  // @unchecked: used from one thread (the CLI or the REPL), the caches are only touched there.
  private var tracefs: TraceFS?
  private var triedTracefs = false
  private var names: [(category: String, name: String)]?
  private var records: [String: RecordType?] = [:]
  private var binaries: [String: ELFFile] = [:]
  /// Each binary's DWARF types by resolved path; `.failure` when it has none or it cannot be read.
  private var userTypes: [String: Result<UserTypes, DWARFMissing>] = [:]

  struct DWARFMissing: Error {
    var reason: String?
  }
  /// With `-p`, libraries are found among the ones that process has mapped.
  private let targetPid: Int32?
  /// The kernel's BTF types; nothing is read until a script names one.
  private let kernelTypes = KernelTypes()

  public init(targetPid: Int32? = nil) {
    self.targetPid = targetPid
  }

  private func fs() -> TraceFS? {
    if !triedTracefs {
      triedTracefs = true
      tracefs = try? TraceFS.locate()
    }
    return tracefs
  }

  public func tracepoints(category: String, name: String) -> [(category: String, name: String)] {
    if names == nil {
      let fs = fs()
      names = (fs?.categories() ?? []).sorted().flatMap { category in
        (fs?.events(in: category) ?? []).sorted().map { (category, $0) }
      }
    }
    return names!.filter { Glob.matches(category, $0.category) && Glob.matches(name, $0.name) }
  }

  public func record(category: String, name: String) -> RecordType? {
    let key = category + ":" + name
    if let cached = records[key] { return cached }
    let record = (try? fs()?.format(category: category, name: name)).flatMap { $0.map { Self.record(of: $0, category: category) } }
    records[key] = record
    return record
  }

  public func userFunctions(binary: String, pattern: String) -> UserFunctionLookup {
    let elf: ELFFile
    switch open(binary) {
    case .success(let file): elf = file
    case .failure(let failure): return failure.lookup
    }
    let isGlob = pattern.contains("*") || pattern.contains("?")
    let matches = isGlob
      ? elf.functions().filter { Glob.matches(pattern, $0.name) }
      : elf.function(named: pattern).map { [$0] } ?? []
    let functions = matches.compactMap { symbol in
      elf.fileOffset(ofAddress: symbol.address).map {
        UserFunction(name: symbol.name, fileOffset: $0, size: symbol.size == 0 ? nil : symbol.size)
      }
    }
    guard functions.isEmpty else { return .found(path: elf.path, functions: functions) }
    var hint: String? = nil
    let close = isGlob ? [] : elf.closestFunctionNames(to: pattern)
    if !close.isEmpty { hint = "did you mean " + close.map { "'\($0)'" }.joined(separator: " or ") + "?" }
    if elf.isStripped, elf.debugFilePath == nil {
      hint = (hint.map { $0 + " " } ?? "")
        + "'\(elf.path)' is stripped and has no debug file installed (such as libc6-dbg for libc, "
        + "under /usr/lib/debug): only the functions it exports are known"
    }
    if hint == nil { hint = "list its functions with 'scry -l \"uprobe:\(elf.path):*\"'" }
    return .failed(message: "no function matching '\(pattern)' in \(elf.path)", hint: hint)
  }

  public func userParameters(binary: String, function: String) -> UserParameterLookup {
    switch types(of: binary) {
    case .success(let types): return .found(types.parameters(of: function))
    case .failure(let missing): return .noDebugInfo(reason: missing.reason)
    }
  }

  public func userRecord(binary: String, named name: String) -> RecordType? {
    guard case .success(let types) = types(of: binary) else { return nil }
    return types.record(named: name)
  }

  /// The DWARF of a binary (or of its separate debug file), read once.
  private func types(of binary: String) -> Result<UserTypes, DWARFMissing> {
    guard case .success(let elf) = open(binary) else { return .failure(DWARFMissing(reason: nil)) }
    if let known = userTypes[elf.path] { return known }
    let result: Result<UserTypes, DWARFMissing>
    do {
      if let dwarf = try elf.debugInfo() {
        result = .success(UserTypes(dwarf: dwarf))
      } else {
        result = .failure(DWARFMissing(reason: nil))
      }
    } catch {
      result = .failure(DWARFMissing(reason: "\(error)"))
    }
    userTypes[elf.path] = result
    return result
  }

  public func userDataSymbol(binary: String, name: String, probeFileOffset: UInt64) -> UserDataSymbol? {
    guard case .success(let elf) = open(binary), let symbol = elf.dataSymbol(named: name), symbol.address != 0,
      let probeAddress = elf.address(ofFileOffset: probeFileOffset)
    else { return nil }
    return UserDataSymbol(
      address: symbol.address, size: symbol.size, isPositionIndependent: elf.isPositionIndependent,
      offsetFromProbe: Int64(bitPattern: symbol.address &- probeAddress))
  }

  public func userAddress(binary: String, address: UInt64) -> UserFunctionLookup {
    switch open(binary) {
    case .failure(let failure):
      return failure.lookup
    case .success(let elf):
      // bpftrace's sym_address_cb: the first function whose [start, start + size) holds it.
      guard let holder = elf.functions().first(where: { $0.size > 0 && address >= $0.address && address - $0.address < $0.size })
      else {
        // None: only --unsafe probes it, where bpftrace takes the address as the file offset.
        return .found(path: elf.path, functions: [UserFunction(name: "", fileOffset: elf.fileOffset(ofAddress: address) ?? address)])
      }
      guard let offset = elf.fileOffset(ofAddress: address) else {
        return .failed(
          message: "address 0x\(String(address, radix: 16)) is not in any loaded segment of \(elf.path)",
          hint: "give a virtual address as 'readelf -s' shows it, or a function name")
      }
      let function = UserFunction(name: holder.name, fileOffset: offset, size: holder.size, offset: address - holder.address)
      return .found(path: elf.path, functions: [function])
    }
  }

  public func staticProbes(binary: String?, provider: String, name: String) -> StaticProbeLookup {
    var files: [ELFFile] = []
    if let binary, binary.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
      // `usdt:/usr/bin/python3*:…`: every executable file the pattern matches that is ELF.
      files = Glob.executableFiles(matching: binary).compactMap { try? ELFFile(path: $0) }
      if files.isEmpty { return .failed(message: "no executable file matches '\(binary)'", hint: "check the path") }
    } else if let binary {
      switch open(binary) {
      case .success(let elf): files = [elf]
      case .failure(let failure):
        if case .failed(let message, let hint) = failure.lookup { return .failed(message: message, hint: hint) }
        return .failed(message: "cannot read '\(binary)'", hint: nil)
      }
    } else {
      guard let targetPid else {
        return .failed(
          message: "a usdt probe without a binary needs a process: '-p PID'",
          hint: "name the binary or library that holds it: 'usdt:BINARY:\(provider == "*" ? "" : provider + ":")\(name)'")
      }
      guard let paths = mappedFiles(of: targetPid) else {
        return .failed(message: "no process with pid \(targetPid) to read usdt probes from", hint: "check the pid given to -p")
      }
      files = paths.compactMap { path in
        if let cached = binaries[path] { return cached }
        return try? ELFFile(path: path)
      }
    }
    // With -p, the process's own view of the file, as bpftrace names it (a container's root).
    let prefix = targetPid.map { "/proc/\($0)/root" } ?? ""
    var probes: [UserStaticProbe] = []
    for elf in files {
      for note in elf.staticProbes() where Glob.matches(provider, note.provider) && Glob.matches(name, note.name) {
        probes.append(
          UserStaticProbe(
            path: elf.path.hasPrefix("/proc/") ? elf.path : prefix + (targetPid == nil ? elf.path : Self.absolute(elf.path)), provider: note.provider, name: note.name,
            fileOffset: note.fileOffset, semaphoreOffset: note.semaphoreOffset,
            arguments: StaticProbeArgument.parseList(note.arguments)))
      }
    }
    guard probes.isEmpty else {
      return .found(probes.sorted { ($0.path, $0.provider, $0.name, $0.fileOffset) < ($1.path, $1.provider, $1.name, $1.fileOffset) })
    }
    let place = binary == nil ? "the files process \(targetPid ?? 0) maps" : files.first?.path ?? binary ?? ""
    if binary != nil, files.count == 1, let elf = files.first, elf.staticProbes().isEmpty {
      return .failed(
        message: "no usdt probes in \(elf.path)", hint: "it has no .note.stapsdt section: it was built without <sys/sdt.h> probes")
    }
    return .failed(
      message: "no usdt probe matching '\(provider):\(name)' in \(place)",
      hint: "list them with 'scry -l \"usdt:\(binary ?? "*"):*\"" + (binary == nil ? " -p \(targetPid ?? 0)'" : "'"))
  }

  /// `path` from the root: a relative path names a file under the working directory, which
  /// `/proc/PID/root` cannot be joined with as it stands.
  private static func absolute(_ path: String) -> String {
    guard !path.hasPrefix("/"), let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  /// The regular files process `pid` maps, in the order of its maps, each once; nil when there
  /// is no such process (or its maps cannot be read).
  private func mappedFiles(of pid: Int32) -> [String]? {
    guard let maps = try? FileSystem.readText("/proc/\(pid)/maps") else { return nil }
    var seen = Set<String>()
    var paths: [String] = []
    for line in maps.split(separator: "\n") {
      guard let slash = line.firstIndex(of: "/") else { continue }
      let path = String(line[slash...])
      if path.hasSuffix(" (deleted)") || !seen.insert(path).inserted { continue }
      paths.append("/proc/\(pid)/root" + path)
    }
    return paths
  }

  private struct LookupFailure: Error {
    var lookup: UserFunctionLookup
  }

  public func kernelSymbolAddress(_ name: String) -> UInt64? { KernelSymbols.address(of: name) }
  public func cgroupID(path: String) -> UInt64? { CgroupPaths.id(ofDirectory: path) }

  public func kernelRecord(named name: String) -> RecordType? { kernelTypes.record(named: name) }
  public func kernelTypedef(named name: String) -> ScryType? { kernelTypes.typedef(named: name) }
  public func kernelEnumConstant(named name: String) -> Int64? { kernelTypes.enumConstant(named: name) }
  public var hasKernelTypes: Bool { kernelTypes.isAvailable }

  /// The C library's `asm/unistd_64.h` (`#define __NR_read 0`), read when a script asks.
  public func syscallNames() -> [(number: UInt64, name: String)]? {
    guard let text = try? FileSystem.readText("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") else { return nil }
    var names: [(number: UInt64, name: String)] = []
    for line in text.split(separator: "\n") where line.hasPrefix("#define __NR_") {
      let fields = line.split(separator: " ")
      guard fields.count == 3, let number = UInt64(fields[2]) else { continue }
      names.append((number, String(fields[1].dropFirst("__NR_".count))))
    }
    return names.isEmpty ? nil : names
  }

  /// The coarse clocks advance once per tick: their resolution is the jiffy (TICK_NSEC).
  public var tickNanoseconds: UInt64? {
    var resolution = timespec()
    guard clock_getres(CLOCK_MONOTONIC_COARSE, &resolution) == 0, resolution.tv_sec == 0, resolution.tv_nsec > 0 else { return nil }
    return UInt64(resolution.tv_nsec)
  }

  public func kernelModuleExists(_ name: String) -> Bool? {
    // Wildcards name modules the attach step expands; only a plain name can be looked up.
    guard !name.contains("*"), !name.contains("?"), !name.contains("/") else { return nil }
    return name == "vmlinux" || access("/sys/module/" + name, F_OK) == 0
  }

  public func missingSupport(for kind: ProbeKind) -> String? {
    switch kind {
    case .kprobe, .kretprobe:
      guard let tracefs = fs(), access(tracefs.root + "/kprobe_events", F_OK) != 0 else { return nil }
      return "this kernel has no kprobe support (no kprobe_events in tracefs; CONFIG_KPROBES is off)"
    case .watchpoint, .asyncwatchpoint:
      guard access(Self.breakpointPMU, F_OK) != 0 else { return nil }
      return "this kernel has no hardware breakpoint support (no \(Self.breakpointPMU); CONFIG_HAVE_HW_BREAKPOINT is off)"
    default:
      return nil
    }
  }

  /// The perf PMU of hardware breakpoints (watchpoints), present where the kernel has them.
  static let breakpointPMU = "/sys/bus/event_source/devices/breakpoint"

  public func missingSupport(for type: UnattachedProbeType) -> String? {
    guard type.needsFtrace, let tracefs = fs() else { return nil }
    // Readable only where the kernel has ftrace's function tracer, which trampolines hook into.
    guard let handle = fopen(tracefs.root + "/available_filter_functions", "r") else {
      return "it has no ftrace (available_filter_functions in tracefs is unreadable)"
    }
    fclose(handle)
    return nil
  }

  private func open(_ binary: String) -> Result<ELFFile, LookupFailure> {
    guard let path = SharedLibraries.resolve(binary, pid: targetPid) else {
      let hint = binary.contains("/")
        ? "check the path"
        : "give the library's path, or a name the dynamic linker knows ('ldconfig -p' lists them)" + (targetPid == nil ? "" : " or that process maps")
      return .failure(LookupFailure(lookup: .failed(message: "cannot find binary or library '\(binary)'", hint: hint)))
    }
    if let cached = binaries[path] { return .success(cached) }
    do {
      let elf = try ELFFile(path: path)
      binaries[path] = elf
      return .success(elf)
    } catch {
      return .failure(LookupFailure(lookup: .failed(message: "cannot read '\(path)': \(error)", hint: nil)))
    }
  }

  /// What a pointer field of a tracefs format points at: a struct or union by name (its layout
  /// comes from BTF when the script reads through it), else 8-byte words.
  static func pointee(of cType: String) -> ScryType {
    let words = cType.split(separator: " ").filter { $0 != "const" && $0 != "volatile" }
    if words.count >= 2, words[0] == "struct" || words[0] == "union", words.last?.hasSuffix("*") == true || words.count > 2 {
      let tag = words[1].split(separator: "*").first.map(String.init) ?? ""
      if !tag.isEmpty, words.filter({ $0.contains("*") }).joined().filter({ $0 == "*" }).count == 1 {
        return .structReference(words[0] + " " + tag)
      }
    }
    return .uint64
  }

  /// A tracefs format as the language types it: `common_*` fields are left out, as bpftrace's `args` does.
  public static func record(of format: EventFormat, category: String) -> RecordType {
    var fields: [RecordField] = []
    var size = 0
    for field in format.fields {
      size = max(size, field.offset + field.size)
      if field.isCommon { continue }
      let type: ScryType
      var storage = RecordField.Storage.inline
      let isChar = field.cType.hasPrefix("char") || field.cType.hasPrefix("const char") || field.cType.hasPrefix("unsigned char")
      if field.isDataLocation || field.isRelativeLocation {
        storage = .dataLocation
        type = isChar ? .defaultString : .array(.integer(.uint64), count: 0)
      } else if field.isPointer {
        let char = ScryType.integer(IntegerType(bits: 8, isSigned: true))
        switch (isChar, field.cType.filter { $0 == "*" }.count) {
        case (true, 1): type = .pointer(char)
        // `const char *const * argv`: an array of string pointers, so `args.argv[1]` is a string.
        case (true, 2): type = .pointer(.pointer(char))
        default: type = .pointer(pointee(of: field.cType))
        }
      } else if let count = field.arrayCount, count > 0 {
        if isChar {
          type = .string(capacity: count)
        } else {
          let elementSize = field.size / count
          let bits = [1, 2, 4, 8].contains(elementSize) ? elementSize * 8 : 8
          type = .array(.integer(IntegerType(bits: bits, isSigned: field.isSigned)), count: count)
        }
      } else {
        let bits = [1, 2, 4, 8].contains(field.size) ? field.size * 8 : 64
        type = .integer(IntegerType(bits: bits, isSigned: field.isSigned))
      }
      fields.append(
        RecordField(name: field.name, cType: field.cType, type: type, offset: field.offset, size: field.size, storage: storage))
    }
    return RecordType(name: category + ":" + format.name, fields: fields, size: size)
  }
}
