import CScrySystem

/// The PERF_SAMPLE_* bits: which fields each PERF_RECORD_SAMPLE carries, in this order.
///
/// Ask only for what is used: every bit costs the traced thread time per event.
public struct PerfSampleType: OptionSet, Sendable, Hashable {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }

  public static let ip = PerfSampleType(rawValue: 1 << 0)
  public static let tid = PerfSampleType(rawValue: 1 << 1)
  public static let time = PerfSampleType(rawValue: 1 << 2)
  public static let addr = PerfSampleType(rawValue: 1 << 3)
  public static let read = PerfSampleType(rawValue: 1 << 4)
  public static let callchain = PerfSampleType(rawValue: 1 << 5)
  public static let id = PerfSampleType(rawValue: 1 << 6)
  public static let cpu = PerfSampleType(rawValue: 1 << 7)
  public static let period = PerfSampleType(rawValue: 1 << 8)
  public static let streamID = PerfSampleType(rawValue: 1 << 9)
  public static let raw = PerfSampleType(rawValue: 1 << 10)
  public static let branchStack = PerfSampleType(rawValue: 1 << 11)
  public static let regsUser = PerfSampleType(rawValue: 1 << 12)
  public static let stackUser = PerfSampleType(rawValue: 1 << 13)
  public static let weight = PerfSampleType(rawValue: 1 << 14)
  public static let dataSource = PerfSampleType(rawValue: 1 << 15)
  public static let identifier = PerfSampleType(rawValue: 1 << 16)
  public static let transaction = PerfSampleType(rawValue: 1 << 17)
  public static let regsIntr = PerfSampleType(rawValue: 1 << 18)
  public static let physAddr = PerfSampleType(rawValue: 1 << 19)
  /// The task's cgroup v2 id (kernel 5.7 and later).
  public static let cgroup = PerfSampleType(rawValue: 1 << 21)
}

/// The kernel software events (PERF_TYPE_SOFTWARE), by their bpftrace/perf names.
public enum SoftwareEvent: String, CaseIterable, Sendable {
  case cpuClock = "cpu-clock"
  case taskClock = "task-clock"
  case pageFaults = "page-faults"
  case contextSwitches = "context-switches"
  case cpuMigrations = "cpu-migrations"
  case minorFaults = "minor-faults"
  case majorFaults = "major-faults"
  case alignmentFaults = "alignment-faults"
  case emulationFaults = "emulation-faults"
  /// Counts nothing; a carrier of side-band records.
  case dummy = "dummy"
  /// The sink of `bpf_perf_event_output`: counts nothing, carries BPF programs' samples.
  case bpfOutput = "bpf-output"

  /// PERF_COUNT_SW_*.
  public var config: UInt64 {
    switch self {
    case .cpuClock: 0
    case .taskClock: 1
    case .pageFaults: 2
    case .contextSwitches: 3
    case .cpuMigrations: 4
    case .minorFaults: 5
    case .majorFaults: 6
    case .alignmentFaults: 7
    case .emulationFaults: 8
    case .dummy: 9
    case .bpfOutput: 10
    }
  }

  /// The event of a canonical name (aliases are resolved by the language's event table).
  public init?(name: String) { self.init(rawValue: name) }
}

/// The generic hardware events (PERF_TYPE_HARDWARE), by their bpftrace/perf names.
public enum HardwareEvent: String, CaseIterable, Sendable {
  case cycles = "cpu-cycles"
  case instructions = "instructions"
  case cacheReferences = "cache-references"
  case cacheMisses = "cache-misses"
  case branchInstructions = "branch-instructions"
  case branchMisses = "branch-misses"
  case busCycles = "bus-cycles"
  case frontendStalls = "frontend-stalls"
  case backendStalls = "backend-stalls"
  case refCycles = "ref-cycles"

  /// PERF_COUNT_HW_*.
  public var config: UInt64 {
    switch self {
    case .cycles: 0
    case .instructions: 1
    case .cacheReferences: 2
    case .cacheMisses: 3
    case .branchInstructions: 4
    case .branchMisses: 5
    case .busCycles: 6
    case .frontendStalls: 7
    case .backendStalls: 8
    case .refCycles: 9
    }
  }

  /// The event of a canonical name (aliases are resolved by the language's event table).
  public init?(name: String) { self.init(rawValue: name) }
}

/// How a perf event samples and wakes its reader. The defaults suit a tracepoint read
/// through a ring: every event sampled, start disabled, wake on every record.
public struct PerfEventOptions: Sendable {
  /// Fields each sample carries.
  public var sampleType: PerfSampleType = []
  /// With `.callchain`: which frames, and how many at most (0: the kernel's default).
  public var callchainKernel = true
  public var callchainUser = true
  public var callchainDepth: UInt16 = 0
  /// Sample one event in `samplePeriod` (ignored when `sampleFrequency` is set).
  public var samplePeriod: UInt64 = 1
  /// Sample about this many times a second instead of by period (software/hardware events).
  public var sampleFrequency: UInt64? = nil
  /// Wake the reader when this many bytes are in the ring; 0 wakes on every record.
  public var wakeupWatermarkBytes: UInt32 = 0
  /// Timestamp samples with CLOCK_MONOTONIC (as bpftrace's `nsecs`) instead of perf's clock.
  public var useMonotonicClock: Bool = true
  /// Count only: no samples, no ring; read the total with `readCount()`.
  public var countingOnly: Bool = false
  /// Follow children of the traced task (only meaningful with pid >= 0).
  public var inherit: Bool = false
  /// Also emit PERF_RECORD_COMM (exec and comm changes).
  public var recordComm: Bool = false
  /// Also emit PERF_RECORD_FORK/EXIT.
  public var recordTasks: Bool = false
  /// Also emit PERF_RECORD_MMAP2 for every executable mapping made (to name user stack frames
  /// of processes that are gone by the time the stacks print).
  public var recordMappings: Bool = false
  /// Make `readCounts()` also return the kernel's lost-sample count (PERF_FORMAT_LOST, 6.0+).
  public var readLostCount: Bool = false
  /// Create disabled; `enable()` starts it (so a whole set starts at once).
  public var startDisabled: Bool = true

  public init(
    sampleType: PerfSampleType = [], samplePeriod: UInt64 = 1, sampleFrequency: UInt64? = nil,
    wakeupWatermarkBytes: UInt32 = 0, useMonotonicClock: Bool = true, countingOnly: Bool = false,
    inherit: Bool = false, recordComm: Bool = false, recordTasks: Bool = false,
    readLostCount: Bool = false, startDisabled: Bool = true
  ) {
    self.sampleType = sampleType
    self.samplePeriod = samplePeriod
    self.sampleFrequency = sampleFrequency
    self.wakeupWatermarkBytes = wakeupWatermarkBytes
    self.useMonotonicClock = useMonotonicClock
    self.countingOnly = countingOnly
    self.inherit = inherit
    self.recordComm = recordComm
    self.recordTasks = recordTasks
    self.readLostCount = readLostCount
    self.startDisabled = startDisabled
  }
}

/// What a hardware breakpoint watches for (HW_BREAKPOINT_R, _W, _X), combinable as bpftrace's
/// `r`, `w` and `x` are.
public struct BreakpointAccess: OptionSet, Sendable, Hashable {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }
  public static let read = BreakpointAccess(rawValue: 1)
  public static let write = BreakpointAccess(rawValue: 2)
  public static let execute = BreakpointAccess(rawValue: 4)

  /// From bpftrace's mode letters (`w`, `rw`, `x`); other letters are ignored.
  public init(mode: String) {
    self = []
    if mode.contains("r") { insert(.read) }
    if mode.contains("w") { insert(.write) }
    if mode.contains("x") { insert(.execute) }
  }
}
