/// SystemTap's tapset functions Scry runs, as the one table the SystemTap front end lowers calls
/// against: each is a builtin, a Scry function or a short expression of them.
enum TapsetFunction: String, CaseIterable {
  case execname, pid, tid, uid, gid, cpu, ppid, euid
  case probefunc, ppfunc, pp
  case localClockNs = "local_clock_ns", localClockUs = "local_clock_us", localClockMs = "local_clock_ms"
  case localClockS = "local_clock_s"
  case userString = "user_string", userStringN = "user_string_n", kernelString = "kernel_string"
  case isinstr, target, exit, error
  case strlen, substr, strtol, ctime, stringat, isdigit
  case strReplace = "str_replace", stringQuoted = "string_quoted"
  case tzCtime = "tz_ctime", tzGmtoff = "tz_gmtoff", tzName = "tz_name"
  case pexecname, threadIndent = "thread_indent", returnval, symname, usymname
  // Stacks, captured at the event as bpftrace's kstack and ustack are.
  case backtrace, ubacktrace, printBacktrace = "print_backtrace", printUbacktrace = "print_ubacktrace"
  case printStack = "print_stack", printUstack = "print_ustack"
  case sprintBacktrace = "sprint_backtrace", sprintUbacktrace = "sprint_ubacktrace"
  case textStr = "text_str", textStrn = "text_strn"
  case gettimeofdayS = "gettimeofday_s", gettimeofdayMs = "gettimeofday_ms", gettimeofdayUs = "gettimeofday_us"
  case gettimeofdayNs = "gettimeofday_ns"
  case uintArg = "uint_arg", intArg = "int_arg", longArg = "long_arg", ulongArg = "ulong_arg", pointerArg = "pointer_arg"
  // Printing, lowered to printf with the arguments' conversions.
  case printf, print, println, sprintf, sprint, printd, printdln

  /// SystemTap's MAXBACKTRACE: the frames a stack keeps.
  static let stackDepth: UInt64 = 20

  /// Whether the value is a stack (printed with `%s`, kept as a map key).
  var returnsStack: Bool {
    switch self {
    case .backtrace, .ubacktrace, .sprintBacktrace, .sprintUbacktrace: return true
    default: return false
    }
  }

  /// Whether the value is a string (for the conversion print and println choose).
  var returnsString: Bool {
    switch self {
    case .execname, .probefunc, .ppfunc, .pp, .userString, .userStringN, .kernelString, .sprintf, .sprint, .substr, .ctime, .textStr, .textStrn,
      .strReplace, .stringQuoted, .tzCtime, .tzName, .pexecname, .threadIndent, .symname, .usymname:
      return true
    default: return false
    }
  }

  /// The Scry builtin a context function is, when it is exactly one.
  var builtin: String? {
    switch self {
    case .execname: return "comm"
    case .pid: return "pid"
    case .tid: return "tid"
    case .uid: return "uid"
    case .gid: return "gid"
    case .cpu: return "cpu"
    case .probefunc, .ppfunc: return "func"
    case .pp: return "probe"
    case .target: return "cpid"
    case .localClockNs: return "nsecs"
    default: return nil
    }
  }

  /// Tapset functions Scry knows of but does not run, with the reason.
  static let unsupported: [String: String] = [
    "user_long": "reading user memory at an address needs a typed pointer; use a uprobe argument",
    "user_int": "reading user memory at an address needs a typed pointer; use a uprobe argument",
    "sprint_stack": "a kept stack's text is not a string; print it with print_stack(bt), or call sprint_stack(backtrace()) at the event",
    "sprint_ustack": "a kept stack's text is not a string; print it with print_ustack(bt), or call sprint_ustack(ubacktrace()) at the event",
  ]
}
