import Glibc

/// Every function a script may call: the one table the checker resolves calls against, the
/// planner and runtime switch on, and completion and help list. A call's name is compared as a
/// string exactly once, here (`Function(name:)`); every later stage holds the enum case.
public enum Function: String, CaseIterable, Sendable, Hashable {
  // Aggregations: only as the value assigned to a map (`@x = count()`).
  case count, sum, avg, min, max, stats, hist, lhist
  // Whole maps and their elements.
  case delete, clear, zero, hasKey = "has_key", len, print
  // Output and effects.
  case printf, time, cat, system, exit, signal, join, unwatch
  // Values.
  case strftime, str, strncmp, strcontains, strerror, sizeof, buf, ntop, pton, bswap
  case ksym, usym, kaddr, uaddr, kstack, ustack, uptr, kptr
  case reg, cgroupPath = "cgroup_path", cgroupid, macaddr, getopt
  // SystemTap's string and clock functions, which its front end lowers calls to: refused in
  // bpftrace programs (bpftrace 0.17 has none of them).
  case sprintf, strlen, substr, strtol, gettimeofdayNs = "gettimeofday_ns", ctime, textStrn = "text_strn"
  case strReplace = "str_replace", stringAt = "stringat"

  /// The bytes of an address literal for `pton` (IPv6 when it holds a colon), in network order.
  public static func internetAddressBytes(_ text: String) -> [UInt8]? {
    let family = text.contains(":") ? AF_INET6 : AF_INET
    var bytes = [UInt8](repeating: 0, count: family == AF_INET6 ? 16 : 4)
    guard inet_pton(family, text, &bytes) == 1 else { return nil }
    return bytes
  }

  /// The function a call names, or nil for an unknown name.
  public init?(name: String) { self.init(rawValue: name) }

  /// The name as written in scripts.
  public var name: String { rawValue }

  /// The capacity of a string SystemTap builds (`sprintf`, `.`): its default MAXSTRINGLEN.
  public static let systemTapStringCapacity = 128
  /// `ctime()`'s text, 24 bytes (`Tue Dec  1 07:26:56 2026`), or `<invalid time>`, and its NUL.
  public static let calendarTimeCapacity = 32

  /// SystemTap's functions, which only its front end's programs call.
  public var isSystemTapOnly: Bool {
    switch self {
    case .sprintf, .strlen, .substr, .strtol, .gettimeofdayNs, .ctime, .textStrn, .strReplace, .stringAt: return true
    default: return false
    }
  }

  /// Functions that compute a map's per-key state (`@x = hist(v)`).
  public var isAggregation: Bool {
    switch self {
    case .count, .sum, .avg, .min, .max, .stats, .hist, .lhist: return true
    default: return false
    }
  }

  /// Functions whose effect is seen outside the event (output, time, signals, map resets): a
  /// block calling one makes the order in which events reach it observable.
  public var isOrderObservable: Bool {
    switch self {
    case .printf, .print, .time, .cat, .system, .exit, .join, .strftime, .signal, .unwatch, .clear, .zero, .delete,
      .gettimeofdayNs: return true
    default: return false
    }
  }

  /// How a call is written, for error hints and `.help`.
  public var usage: String {
    switch self {
    case .count: return "@map = count()"
    case .sum, .avg, .min, .max, .stats, .hist: return "@map = \(name)(value)"
    case .lhist: return "@map = lhist(value, min, max, step)"
    case .delete: return "delete(@map[key]) or delete(@map, key)"
    case .clear, .zero, .len: return "\(name)(@map)"
    case .hasKey: return "has_key(@map, key)"
    case .print: return "print(@map[, top[, divisor]]) or print(value)"
    case .printf, .cat, .system: return "\(name)(\"format\", args…)"
    case .time: return "time([\"%H:%M:%S\\n\"])"
    case .exit: return "exit([code])"
    case .signal: return "signal(\"SIGKILL\") or signal(9)"
    case .unwatch: return "unwatch(address)"
    case .join: return "join(args.argv[, separator])"
    case .strftime: return "strftime(\"%H:%M:%S\", nsecs)"
    case .str: return "str(value[, length])"
    case .strncmp: return "strncmp(a, b, n)"
    case .strcontains: return "strcontains(haystack, needle)"
    case .sizeof: return "sizeof(type) or sizeof(expression)"
    case .buf: return "buf(address, length)"
    case .ntop: return "ntop([family, ]address)"
    case .pton: return "pton(\"address\")"
    case .strerror: return "strerror(errno)"
    case .bswap: return "bswap(integer)"
    case .ksym, .usym, .uptr, .kptr: return "\(name)(address)"
    case .kaddr, .uaddr: return "\(name)(\"symbol\")"
    case .kstack, .ustack: return "\(name)([mode, ][depth])"
    case .reg: return "reg(\"name\")"
    case .cgroupPath: return "cgroup_path(id[, \"hierarchy pattern\"])"
    case .cgroupid: return "cgroupid(\"/sys/fs/cgroup/…\")"
    case .macaddr: return "macaddr(address)"
    case .getopt: return "getopt(\"name\"[, default])"
    case .sprintf: return "sprintf(\"format\", args…) (SystemTap)"
    case .strlen: return "strlen(string) (SystemTap)"
    case .substr: return "substr(string, start, length) (SystemTap)"
    case .strtol: return "strtol(string, base) (SystemTap)"
    case .gettimeofdayNs: return "gettimeofday_ns() (SystemTap)"
    case .ctime: return "ctime(seconds) (SystemTap)"
    case .textStrn: return "text_strn(string, length, quoted) (SystemTap)"
    case .strReplace: return "str_replace(string, target, replacement) (SystemTap)"
    case .stringAt: return "stringat(string, position) (SystemTap)"
    }
  }

  /// One line on what the function does, for `.help` and completion.
  public var summary: String {
    switch self {
    case .count: return "count the events, per key"
    case .sum: return "sum the values, per key"
    case .avg: return "average of the values, per key"
    case .min: return "smallest value, per key"
    case .max: return "largest value, per key"
    case .stats: return "count, average and total of the values, per key"
    case .hist: return "power-of-two histogram of the values, per key"
    case .lhist: return "linear histogram of the values, per key"
    case .delete: return "remove one element of a map"
    case .clear: return "remove every element of a map"
    case .zero: return "set every value of a map to zero"
    case .hasKey: return "whether a map holds a key"
    case .len: return "number of elements in a map"
    case .print: return "print a map, or one value"
    case .printf: return "print formatted text"
    case .time: return "print the current time"
    case .cat: return "print a file's contents"
    case .system: return "run a shell command (needs --unsafe)"
    case .exit: return "stop tracing: END runs and the maps print"
    case .signal: return "send a signal to the task of the event (needs --unsafe)"
    case .unwatch: return "stop watching an address a watchpoint:FUNC+argN probe watches"
    case .join: return "print an array of strings, such as execve's argv"
    case .strftime: return "a time formatted as text"
    case .str: return "the string at an address, or a value as text"
    case .strncmp: return "compare the first n bytes of two strings (0 when equal)"
    case .strcontains: return "whether a string contains another"
    case .sizeof: return "size in bytes of a type or expression"
    case .buf: return "raw bytes at an address, printed hex-escaped"
    case .ntop: return "an IPv4 or IPv6 address as text"
    case .pton: return "an IPv4 or IPv6 address literal as its 4 or 16 bytes in network order"
    case .strerror: return "the text of an errno value"
    case .bswap: return "the integer with its bytes in reverse order"
    case .ksym: return "the kernel symbol at an address"
    case .usym: return "the user symbol at an address"
    case .kaddr: return "the address of a kernel symbol"
    case .uaddr: return "the address of a user symbol"
    case .kstack: return "the kernel stack of the event"
    case .ustack: return "the user stack of the event"
    case .uptr: return "mark an address as user memory"
    case .kptr: return "mark an address as kernel memory"
    case .reg: return "a register of the event"
    case .cgroupid: return "the id of the cgroup at a path (compare it with cgroup)"
    case .cgroupPath: return "the path of a cgroup (as 'unified:/path', one per hierarchy that has it)"
    case .macaddr: return "a MAC address as text"
    case .getopt: return "a named program parameter (--name=value after the program); without a default, 1 when given"
    case .sprintf: return "formatted text as a string value"
    case .strlen: return "the length of a string"
    case .substr: return "part of a string, from a 0-based start"
    case .strtol: return "a string's number in a base (0 when it has none)"
    case .gettimeofdayNs: return "nanoseconds since the epoch (CLOCK_REALTIME) at the event"
    case .ctime: return "seconds since the epoch as UTC text: 'Tue Dec  1 07:26:56 2026'"
    case .textStrn: return "a string with its unprintable characters escaped, optionally quoted"
    case .strReplace: return "a string with every occurrence of a target replaced"
    case .stringAt: return "the byte at a 0-based position of a string"
    }
  }
}

