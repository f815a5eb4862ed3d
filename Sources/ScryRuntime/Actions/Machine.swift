import Glibc
import ScryLanguage
import ScryKernel

/// The state actions run against: the current event, scratch variables, maps and output.
/// One per session; actions are evaluated one event at a time on one thread.
public final class Machine {
  // The current event. Set by the event loop before each action; zero for BEGIN/END/interval.
  public var raw: UnsafeRawPointer?
  /// Reads of a traced process's memory after the event (without BPF) that found nothing there:
  /// the process had exited or unmapped the address. Their values were empty.
  public var failedProcessReads: UInt64 = 0
  public var rawSize = 0
  public var pid: UInt32 = 0
  public var tid: UInt32 = 0
  public var cpu: UInt32 = 0
  public var time: UInt64 = 0
  public var ip: UInt64 = 0
  /// The task's cgroup v2 id.
  public var cgroup: UInt64 = 0
  /// The task's name as the event's record carries it (16 bytes), when it does.
  public var eventComm: UnsafeRawPointer?
  /// The task's uid and gid (u32 each) as the event's record carries them, when it does.
  public var eventCredentials: UnsafeRawPointer?
  /// The kernel and user stacks the event's record carries (a u64 byte count, then the frames).
  public var eventKernelStack: UnsafeRawPointer?
  public var eventUserStack: UnsafeRawPointer?
  /// Scry's own cgroup id, for probes without a task of their own (BEGIN, END, interval).
  lazy var ownCgroup = SystemInfo.cgroupID(ofProcess: getpid())
  /// The running attachment's probe name, bpftrace style (`tracepoint:sched:sched_switch`).
  public var probeName: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
  /// The function a running uprobe is placed in (`func`).
  public var probeFunction: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)

  /// Scratch variables of the running block, laid out by the compiler.
  private(set) var variables: UnsafeMutableRawPointer
  private(set) var variablesSize: Int
  public let output: OutputBuffer
  public let maps: [MapStorage]
  /// `CLOCK_MONOTONIC` when the session started, for `elapsed`.
  public var startTime: UInt64
  public var childPid: UInt32 = 0
  public let positionals: [String]
  /// Set by `exit()`: the loop stops after the current event.
  public var exitRequested = false
  public var exitCode: Int32 = 0
  /// Addresses `unwatch()` named since the last drain: the run closes their watchpoints next.
  var unwatchedAddresses: [UInt64] = []
  /// `system()` and `signal()` run only when the session was started with `--unsafe`.
  public let allowsUnsafe: Bool
  /// Bytes `cat()` copies from a file.
  public var catBytesMax = 10 * 1024
  /// `-B line|none`: the output is flushed after every event's action.
  public var flushesEachEvent = false
  /// Names tasks for `comm`; nil outside event probes (then Scry's own name is used).
  public var processTable: ProcessTable?
  let ownComm: TaskName
  /// Folds kernel counters (counting-mode attachments) into their maps before maps are printed or reset.
  public var foldCounters: ((Machine) -> Void)?
  /// Xorshift state for `rand`.
  var randomState: UInt64

  public init(
    maps: [MapStorage], output: OutputBuffer, variablesSize: Int, positionals: [String], allowsUnsafe: Bool
  ) {
    self.maps = maps
    self.output = output
    self.variablesSize = max(variablesSize, 8)
    self.variables = UnsafeMutableRawPointer.allocate(byteCount: self.variablesSize, alignment: 8)
    self.variables.initializeMemory(as: UInt8.self, repeating: 0, count: self.variablesSize)
    self.positionals = positionals
    self.allowsUnsafe = allowsUnsafe
    self.startTime = Clock.monotonicNanoseconds()
    self.ownComm = TaskName.ofCurrentProcess()
    self.randomState = Clock.monotonicNanoseconds() | 1
  }

  /// Makes the variable area at least `size` bytes: a block the REPL adds to a running session
  /// may use more variables than the blocks before it. Never called while an action runs.
  func reserveVariables(_ size: Int) {
    guard size > variablesSize else { return }
    variables.deallocate()
    variablesSize = size
    variables = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    variables.initializeMemory(as: UInt8.self, repeating: 0, count: size)
  }

  deinit {
    variables.deallocate()
    callchainStacks.deallocate()
  }

  /// The kernel's and the user's frames of perf's callchain, laid out as the capture program lays
  /// out its stacks (a u64 byte count, then the frames), so `kstack`/`ustack` read either alike.
  private let callchainStacks = UnsafeMutableRawPointer.allocate(byteCount: 2 * Machine.callchainStackBytes, alignment: 8)
  private static let callchainFrames = 256
  private static let callchainStackBytes = 8 + 8 * callchainFrames

  /// Splits perf's callchain (`PERF_SAMPLE_CALLCHAIN`: frames after PERF_CONTEXT_KERNEL or
  /// PERF_CONTEXT_USER markers) into the event's kernel and user stacks.
  func takeCallchain(_ chain: UnsafeRawBufferPointer) {
    let kernel = callchainStacks
    let user = callchainStacks + Self.callchainStackBytes
    var kernelCount = 0
    var userCount = 0
    var side = 0  // 1 kernel, 2 user, 0 another context (hypervisor, guest): left out
    for i in 0..<(chain.count / 8) {
      let ip = chain.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
      if ip >= Self.contextMax {
        side = ip == Self.contextKernel ? 1 : ip == Self.contextUser ? 2 : 0
      } else if side == 1 && kernelCount < Self.callchainFrames {
        kernel.storeBytes(of: ip, toByteOffset: 8 + 8 * kernelCount, as: UInt64.self)
        kernelCount += 1
      } else if side == 2 && userCount < Self.callchainFrames {
        user.storeBytes(of: ip, toByteOffset: 8 + 8 * userCount, as: UInt64.self)
        userCount += 1
      }
    }
    kernel.storeBytes(of: UInt64(8 * kernelCount), as: UInt64.self)
    user.storeBytes(of: UInt64(8 * userCount), as: UInt64.self)
    eventKernelStack = UnsafeRawPointer(kernel)
    eventUserStack = UnsafeRawPointer(user)
  }

  // perf_event.h: PERF_CONTEXT_KERNEL (-128), PERF_CONTEXT_USER (-512), PERF_CONTEXT_MAX (-4095).
  private static let contextKernel = UInt64(bitPattern: -128)
  private static let contextUser = UInt64(bitPattern: -512)
  private static let contextMax = UInt64(bitPattern: -4095)

  /// Clears the event fields, for probes that have no event (BEGIN, END, interval).
  public func resetEvent() {
    raw = nil
    rawSize = 0
    pid = UInt32(truncatingIfNeeded: getpid())
    tid = pid
    cpu = 0
    time = Clock.monotonicNanoseconds()
    ip = 0
    cgroup = ownCgroup
    eventComm = nil
    eventCredentials = nil
    eventKernelStack = nil
    eventUserStack = nil
  }

  /// The name of the task that caused the event, as 16 NUL-padded bytes.
  @inline(__always)
  func comm() -> TaskName {
    if let eventComm {
      return TaskName(
        low: eventComm.loadUnaligned(as: UInt64.self), high: eventComm.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }
    if let table = processTable { return table.comm(of: tid) }
    return ownComm
  }

  /// The user and group of the event's task (Scry's own outside event probes).
  func uid() -> UInt32 {
    if let eventCredentials { return eventCredentials.loadUnaligned(as: UInt32.self) }
    return processTable?.credentials(of: tid).uid ?? getuid()
  }
  func gid() -> UInt32 {
    if let eventCredentials { return eventCredentials.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
    return processTable?.credentials(of: tid).gid ?? getgid()
  }

  func nextRandom() -> UInt64 {
    randomState ^= randomState << 13
    randomState ^= randomState >> 7
    randomState ^= randomState << 17
    return randomState & 0xffff_ffff
  }
}
