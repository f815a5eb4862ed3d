/// Functions and call forms of bpftrace (0.17 to 0.26) that Scry does not run, with why: the one
/// table the checker's "unknown function" error reads, so such a script is refused with a reason
/// rather than a guess at a typo.
public enum UnsupportedFunction {
  public static let reasons: [String: String] = [
    "tseries": "bpftrace 0.24's time series have no output in bpftrace 0.17, whose output Scry follows; aggregate with hist() or lhist() per interval",
    "nsecs": "Scry's event time is CLOCK_MONOTONIC: write 'nsecs' or 'nsecs(monotonic)'; boot, tai and sw_tai clocks are not read",
    "errorf": "write printf() for the message, and exit() to stop",
    "warnf": "write printf() for the message",
    "fail": "bpftrace 0.24's compile-time failure is not supported",
    "find": "write 'if (has_key(@m, k)) { $v = @m[k]; … }'",
    "globmatch": "compare with strncmp() or strcontains()",
    "memcmp": "compare strings with '==' or strncmp()",
    "assert": "write 'if (!condition) { printf(…); exit(1); }'",
    "has_cpid": "cpid is 0 without -c: test 'cpid != 0'",
    "path": "the path of a dentry needs a kfunc or iter probe and the kernel's bpf_d_path helper, which Scry does not attach",
    "percpu_kaddr": "per-CPU kernel variables are not readable here",
    "socket_cookie": "socket cookies need a BPF helper Scry does not call",
    "skboutput": "packet capture needs a kfunc probe, which Scry does not attach",
    "override": "Scry does not change the traced kernel's return values (bpftrace needs a kprobe for it)",
    "debugf": "debugf() writes to the kernel's trace_pipe; write printf(), which Scry prints in order",
    "is_array": "bpftrace 0.26's compile-time type tests are not supported",
    "is_integer": "bpftrace 0.26's compile-time type tests are not supported",
    "is_ptr": "bpftrace 0.26's compile-time type tests are not supported",
    "is_str": "bpftrace 0.26's compile-time type tests are not supported",
    "is_literal": "bpftrace 0.26's compile-time type tests are not supported",
    "typeof": "bpftrace 0.26's compile-time types are not supported",
    "pid": "write 'pid': the process id as bpftrace 0.17 reads it; the curr_ns and init forms are not told apart",
    "tid": "write 'tid': the thread id as bpftrace 0.17 reads it; the curr_ns and init forms are not told apart",
    "comm": "write 'comm' for the current task; another process's name is not read",
    "pcomm": "write 'curtask->group_leader->comm'",
    "ppid": "write 'curtask->real_parent->tgid'",
    "signal_thread": "write signal(), which signals the process",
    "strcap": "the capacity of a string is not a value here",
    "static_assert": "bpftrace's compile-time assertions are not supported",
  ]
}
