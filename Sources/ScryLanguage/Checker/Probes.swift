/// Probe providers the language knows, with bpftrace's short aliases.
public enum ProbeKind: String, Sendable, CaseIterable {
  case begin = "BEGIN"
  case end = "END"
  case interval
  case profile
  case tracepoint
  case rawTracepoint = "rawtracepoint"
  case software
  case hardware
  case uprobe
  case uretprobe
  case kprobe
  case kretprobe
  case usdt
  /// A hardware breakpoint on a data address (`watchpoint:ADDR:LEN:MODE`), or on an address a
  /// function is passed (`watchpoint:FUNC+argN:LEN:MODE`, `asyncwatchpoint:…`).
  case watchpoint
  case asyncwatchpoint

  /// The name bpftrace's `probetype` gives this kind.
  public var bpftraceTypeName: String {
    switch self {
    case .begin, .end: return "special"
    default: return rawValue
    }
  }

  /// Resolves a provider as written (`t`, `tracepoint`, `BEGIN`, `begin`…).
  public init?(provider: String) {
    switch provider {
    case "BEGIN", "begin": self = .begin
    case "END", "end": self = .end
    case "interval", "i": self = .interval
    case "profile", "p": self = .profile
    case "tracepoint", "t": self = .tracepoint
    case "rawtracepoint", "rt": self = .rawTracepoint
    case "software", "s": self = .software
    case "hardware", "h": self = .hardware
    case "uprobe", "u": self = .uprobe
    case "uretprobe", "ur": self = .uretprobe
    case "kprobe", "k": self = .kprobe
    case "kretprobe", "kr": self = .kretprobe
    case "usdt", "U": self = .usdt
    case "watchpoint", "w": self = .watchpoint
    case "asyncwatchpoint", "aw": self = .asyncwatchpoint
    default: return nil
    }
  }

  /// Probes that fire on a kernel event and so have a task, a CPU and a time of their own.
  public var hasEventContext: Bool {
    switch self {
    case .begin, .end, .interval: return false
    default: return true
    }
  }
}

/// One concrete probe after alias resolution and wildcard expansion:
/// what the planner turns into an attachment.
public struct ResolvedProbe: Sendable, Hashable {
  public enum Target: Sendable, Hashable {
    case special
    /// `interval`/`profile`: period in nanoseconds (`hz` converted).
    case timer(periodNanoseconds: UInt64, unit: String, value: UInt64)
    case tracepoint(category: String, name: String, record: RecordType?)
    /// `software`/`hardware`: event name and sample period (0: the provider's default).
    case perfEvent(name: String, period: UInt64)
    /// `uprobe`/`uretprobe`: the binary's resolved path, the function (nil for an address), and the
    /// file offset of the probe point, which is what the kernel's uprobe_events wants.
    case userFunction(path: String, symbol: String?, fileOffset: UInt64)
    /// `kprobe`/`kretprobe`: function and offset.
    case kernelFunction(symbol: String, offset: UInt64)
    /// `usdt`: the probe's note, read from its binary.
    case userStaticProbe(UserStaticProbe)
    /// `rawtracepoint`: parts as written.
    case other(parts: [String])
    /// `watchpoint`/`asyncwatchpoint`: the breakpoint to open, at an address or at a function's argument.
    case breakpoint(Watchpoint)
  }

  public var kind: ProbeKind
  public var target: Target
  /// The full name bpftrace gives the probe (`tracepoint:sched:sched_switch`), which `probe` returns.
  public var name: String
  public var span: SourceSpan

  /// What makes two probes one: the name, and for a USDT probe also its site (a probe may be
  /// placed at several addresses under one name, as an inlined function's probe is).
  public var identity: String {
    if case .userStaticProbe(let usdt) = target { return name + "@" + String(usdt.fileOffset) }
    return name
  }

  public init(kind: ProbeKind, target: Target, name: String, span: SourceSpan) {
    self.kind = kind
    self.target = target
    self.name = name
    self.span = span
  }
}

/// What the front end may ask of the machine without touching the kernel itself:
/// the CLI passes an implementation backed by tracefs, tests pass recorded data.
public protocol ProbeCatalog: Sendable {
  /// Tracepoints matching glob patterns (`*`, `?`) on category and name, as (category, name), sorted.
  func tracepoints(category: String, name: String) -> [(category: String, name: String)]
  /// The record of one tracepoint, from its tracefs format; nil if it does not exist or cannot be read.
  func record(category: String, name: String) -> RecordType?
  /// The functions of a binary (`/bin/bash`, or a library name such as `libc`) whose names match a glob
  /// pattern, with the file offset of each: what a uprobe spec resolves to.
  func userFunctions(binary: String, pattern: String) -> UserFunctionLookup
  /// The file offset of a virtual address in a binary (`uprobe:/bin/bash:0x4a1b0`), as one
  /// function: the one of the symbol tables that holds the address, with the address's offset
  /// into it, or one with an empty name when none does.
  func userAddress(binary: String, address: UInt64) -> UserFunctionLookup
  /// The USDT probes of a binary or library (nil: of every file the `-p` process maps) whose
  /// provider and name match glob patterns, sorted by path, provider and name.
  func staticProbes(binary: String?, provider: String, name: String) -> StaticProbeLookup
  /// The address of a kernel symbol (`kaddr("vfs_read")`), or nil when the kernel does not name it.
  func kernelSymbolAddress(_ name: String) -> UInt64?
  /// A data symbol (STT_OBJECT) of the binary a uprobe at `probeFileOffset` is planted in
  /// (`uaddr("GLOBAL_A")`); nil when the binary has no such symbol.
  func userDataSymbol(binary: String, name: String, probeFileOffset: UInt64) -> UserDataSymbol?
  /// The id of the cgroup at a path (`cgroupid("/sys/fs/cgroup/unified/user.slice")`): its
  /// directory's inode number; nil when there is no such directory.
  func cgroupID(path: String) -> UInt64?
  /// Whether the kernel has a module of this name loaded (`vmlinux` is the kernel itself), as
  /// `kprobe:MODULE:FUNCTION` names one; nil when this catalog cannot tell.
  func kernelModuleExists(_ name: String) -> Bool?
  /// Why this machine cannot attach probes of `kind` (no kprobes in the kernel, say), or nil.
  func missingSupport(for kind: ProbeKind) -> String?
  /// Why this kernel could not run probes of a type Scry does not attach (no ftrace for fentry,
  /// say), or nil when the kernel has what they need.
  func missingSupport(for type: UnattachedProbeType) -> String?
  /// A kernel struct or union by C name (`struct task_struct`), laid out as `CTypes` describes; nil
  /// if the kernel does not describe it (no BTF, or no such type).
  func kernelRecord(named name: String) -> RecordType?
  /// The formal parameters of a binary's function from its DWARF (its own .debug_info or its
  /// separate debug file's): what `args->NAME` is in a uprobe, as bpftrace 0.17 reads it.
  func userParameters(binary: String, function: String) -> UserParameterLookup
  /// A struct or union by C name from the DWARF of a uprobe's binary, laid out as `CTypes`
  /// describes; nil when the binary has no DWARF or no such type.
  func userRecord(binary: String, named name: String) -> RecordType?
  /// A kernel typedef's type (`u64`, `sector_t`), nil if unknown.
  func kernelTypedef(named name: String) -> ScryType?
  /// A kernel enumerator's value (`BPF_MAP_TYPE_HASH`), nil if unknown.
  func kernelEnumConstant(named name: String) -> Int64?
  /// Whether the kernel describes its types (BTF): what bpftrace's `BPFTRACE_HAVE_BTF` says.
  var hasKernelTypes: Bool { get }
  /// The length of the kernel's tick (a jiffy, 1/HZ) in nanoseconds, nil when unknown.
  var tickNanoseconds: UInt64? { get }
  /// System call names by number (what `raw_syscalls` tracepoints' `id` is), nil when unknown.
  func syscallNames() -> [(number: UInt64, name: String)]?
}

extension ProbeCatalog {
  public func userParameters(binary: String, function: String) -> UserParameterLookup { .noDebugInfo(reason: nil) }
  public func userRecord(binary: String, named name: String) -> RecordType? { nil }
  public var tickNanoseconds: UInt64? { nil }
  public func syscallNames() -> [(number: UInt64, name: String)]? { nil }
}

/// What a catalog found for a uprobe spec: the binary's path and its matching functions, or why not.
public enum UserFunctionLookup: Sendable, Equatable {
  case found(path: String, functions: [UserFunction])
  case failed(message: String, hint: String?)
}

/// What a binary's DWARF says of one function's parameters.
public enum UserParameterLookup: Sendable, Equatable {
  /// The parameters in declaration order: parameter i is the calling convention's argi. A
  /// function the DWARF does not describe has none, as in bpftrace.
  case found([UserParameter])
  /// The binary has no DWARF (`reason` says why it could not be read, when it is there).
  case noDebugInfo(reason: String?)
}

/// One formal parameter of a function: its name, its C type as bpftrace's `-lv` spells it
/// (`int*`, `struct Foo*`), and its type for the language (`.none` when Scry cannot hold it).
public struct UserParameter: Sendable, Hashable {
  public var name: String
  public var cType: String
  public var type: ScryType
  public init(name: String, cType: String, type: ScryType) {
    self.name = name
    self.cType = cType
    self.type = type
  }
}

/// A variable of a binary as its symbol table gives it, for `uaddr()`.
public struct UserDataSymbol: Sendable, Hashable {
  /// st_value: the address itself in an ET_EXEC file, relative to the load base in an ET_DYN one.
  public var address: UInt64
  public var size: UInt64
  /// ET_DYN (a PIE or a library): where it lies is known only in the process, relative to the probe.
  public var isPositionIndependent: Bool
  /// `address` minus the probe point's own address in the same file: at a uprobe's entry the
  /// instruction pointer is the probe point, so the variable is at ip plus this, loaded anywhere.
  public var offsetFromProbe: Int64

  public init(address: UInt64, size: UInt64, isPositionIndependent: Bool, offsetFromProbe: Int64) {
    self.address = address
    self.size = size
    self.isPositionIndependent = isPositionIndependent
    self.offsetFromProbe = offsetFromProbe
  }
}

/// One function of a binary, at the file offset a uprobe is planted at.
public struct UserFunction: Sendable, Hashable {
  public var name: String
  public var fileOffset: UInt64
  /// The symbol's size in bytes, when its table gives one: an offset must fall inside it.
  public var size: UInt64?
  /// For an address: how far into the function it lies (`fileOffset` is the address's own).
  public var offset: UInt64
  public init(name: String, fileOffset: UInt64, size: UInt64? = nil, offset: UInt64 = 0) {
    self.name = name
    self.fileOffset = fileOffset
    self.size = size
    self.offset = offset
  }
}

extension ProbeCatalog {
  public func userFunctions(binary: String, pattern: String) -> UserFunctionLookup {
    .failed(message: "cannot read '\(binary)': binaries are not available to this check", hint: nil)
  }
  public func userAddress(binary: String, address: UInt64) -> UserFunctionLookup {
    .failed(message: "cannot read '\(binary)': binaries are not available to this check", hint: nil)
  }
  public func staticProbes(binary: String?, provider: String, name: String) -> StaticProbeLookup {
    .failed(message: "cannot read '\(binary ?? "the process")': binaries are not available to this check", hint: nil)
  }
  public func kernelSymbolAddress(_ name: String) -> UInt64? { nil }
  public func userDataSymbol(binary: String, name: String, probeFileOffset: UInt64) -> UserDataSymbol? { nil }
  public func cgroupID(path: String) -> UInt64? { nil }
  public func kernelModuleExists(_ name: String) -> Bool? { nil }
  public func missingSupport(for kind: ProbeKind) -> String? { nil }
  public func missingSupport(for type: UnattachedProbeType) -> String? { nil }
  public func kernelRecord(named name: String) -> RecordType? { nil }
  public func kernelTypedef(named name: String) -> ScryType? { nil }
  public func kernelEnumConstant(named name: String) -> Int64? { nil }
  public var hasKernelTypes: Bool { false }
}

/// A catalog that knows no tracepoints: for scripts checked without access to tracefs.
public struct EmptyProbeCatalog: ProbeCatalog {
  public init() {}
  public func tracepoints(category: String, name: String) -> [(category: String, name: String)] { [] }
  public func record(category: String, name: String) -> RecordType? { nil }
}

/// A watchpoint as bpftrace 0.17 reads `watchpoint:ADDR:LEN:MODE` and `watchpoint:FUNC+argN:LEN:MODE`.
public struct Watchpoint: Sendable, Hashable {
  public enum Site: Sendable, Hashable {
    /// A fixed address: the traced process's with -p or -c, else the kernel's.
    case address(UInt64)
    /// The address a function of the traced binary is passed as argument N: a uprobe on the
    /// function reads it and Scry opens the breakpoint then (bpftrace's setup probe).
    case argument(function: UserFunction, index: Int)
  }

  public var site: Site
  /// Bytes watched: 1, 2, 4 or 8.
  public var length: Int
  /// `r`, `w`, `x` combined, sorted as bpftrace sorts them (`rw`).
  public var mode: String
  /// The traced process's binary (-c's command, or /proc/PID/exe with -p); nil: a kernel address.
  public var binary: String?
  /// `asyncwatchpoint`: the task is not stopped while the breakpoint is opened.
  public var isAsync: Bool

  public init(site: Site, length: Int, mode: String, binary: String?, isAsync: Bool) {
    self.site = site
    self.length = length
    self.mode = mode
    self.binary = binary
    self.isAsync = isAsync
  }

  /// Whether the watched memory is the traced process's (so the breakpoint follows its tasks).
  public var watchesProcess: Bool { binary != nil }
}
