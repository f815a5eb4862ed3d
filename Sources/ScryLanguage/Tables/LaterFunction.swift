/// Functions and call forms of bpftrace 0.18–0.26 that Scry does not have, with why: the one
/// table the checker's "unknown function" error reads, so such a script is refused with a reason
/// rather than a guess at a typo.
public enum LaterFunction {
  public static let reasons: [String: String] = [
    "tseries": "bpftrace 0.24's time series have no output in bpftrace 0.17, whose output Scry follows; aggregate with hist() or lhist() per interval",
    "nsecs": "Scry's event time is CLOCK_MONOTONIC: write 'nsecs' or 'nsecs(monotonic)'; boot, tai and sw_tai clocks are not read",
    "errorf": "write printf() for the message, and exit() to stop",
    "warnf": "write printf() for the message",
    "fail": "bpftrace 0.24's compile-time failure is not supported",
    "getopt": "named options (bpftrace 0.23) are not supported: use positional parameters $1, $2…",
    "find": "write 'if (has_key(@m, k)) { $v = @m[k]; … }'",
    "globmatch": "compare with strncmp() or strcontains()",
    "memcmp": "compare strings with '==' or strncmp()",
    "assert": "write 'if (!condition) { printf(…); exit(1); }'",
    "has_cpid": "cpid is 0 without -c: test 'cpid != 0'",
    "pton": "compare addresses as integers",
    "path": "the path of a dentry needs BPF d_path, which Scry does not call",
    "percpu_kaddr": "per-CPU kernel variables are not readable here",
    "socket_cookie": "socket cookies need a BPF helper Scry does not call",
    "skboutput": "packet capture is not supported",
    "override": "Scry does not change the traced kernel's return values",
    "debugf": "write printf()",
    "cgroupid": "write the cgroup id as a number",
    "is_array": "bpftrace 0.26's compile-time type tests are not supported",
    "is_integer": "bpftrace 0.26's compile-time type tests are not supported",
    "is_ptr": "bpftrace 0.26's compile-time type tests are not supported",
    "is_str": "bpftrace 0.26's compile-time type tests are not supported",
    "is_literal": "bpftrace 0.26's compile-time type tests are not supported",
    "typeof": "bpftrace 0.26's compile-time types are not supported",
  ]
}
