/// Built-in variables (`pid`, `comm`, `arg0`…): the one table behind `Builtin(name:)`, the
/// checker's types, the planner's sample fields, completion and help.
public enum Builtin: Hashable, Sendable {
  case pid, tid, uid, gid, nsecs, elapsed, cpu, comm, probe, function, rand, cgroup, retval, args
  case kstack, ustack, curtask, username, cpid, jiffies, numaid, ncpus
  /// bpftrace 0.26: the probe's type (`special` for BEGIN and END) and whether the event
  /// interrupted user mode; both known from the block's probes when the script is checked.
  case probetype, usermode
  /// `arg0`…`arg9`
  case arg(Int)
  /// `sarg0`… (stack arguments)
  case stackArg(Int)

  /// Every builtin, in the order help lists them.
  public static let all: [Builtin] =
    [
      .pid, .tid, .uid, .gid, .nsecs, .elapsed, .cpu, .comm, .probe, .function, .rand, .cgroup, .retval, .args,
      .kstack, .ustack, .curtask, .username, .cpid, .jiffies, .numaid, .ncpus, .probetype, .usermode,
    ] + (0...9).map { .arg($0) } + (0...9).map { .stackArg($0) }

  private static let byName: [String: Builtin] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

  /// The builtin a bare name denotes, or nil.
  /// bpftrace 0.26 also spells each builtin `__builtin_NAME` (what its own wrappers expand to).
  public init?(name: String) {
    let bare = name.hasPrefix(Self.wrapperPrefix) ? String(name.dropFirst(Self.wrapperPrefix.count)) : name
    guard let builtin = Self.byName[bare] else { return nil }
    self = builtin
  }

  private static let wrapperPrefix = "__builtin_"

  /// Every builtin's name as a script writes it.
  public static let names: [String] = all.map(\.name)

  /// The builtin's name as a script writes it.
  public var name: String {
    switch self {
    case .pid: return "pid"
    case .tid: return "tid"
    case .uid: return "uid"
    case .gid: return "gid"
    case .nsecs: return "nsecs"
    case .elapsed: return "elapsed"
    case .cpu: return "cpu"
    case .comm: return "comm"
    case .probe: return "probe"
    case .function: return "func"
    case .rand: return "rand"
    case .cgroup: return "cgroup"
    case .retval: return "retval"
    case .args: return "args"
    case .kstack: return "kstack"
    case .ustack: return "ustack"
    case .curtask: return "curtask"
    case .username: return "username"
    case .cpid: return "cpid"
    case .jiffies: return "jiffies"
    case .numaid: return "numaid"
    case .ncpus: return "ncpus"
    case .probetype: return "probetype"
    case .usermode: return "usermode"
    case .arg(let n): return "arg\(n)"
    case .stackArg(let n): return "sarg\(n)"
    }
  }

  /// Builtins that name the task of the event (read from the event's task, not its record).
  public var isTaskIdentity: Bool {
    switch self {
    case .pid, .tid, .uid, .gid, .comm, .username: return true
    default: return false
    }
  }
}
