/// bpftrace probe types Scry knows but does not attach, with what each needs from the kernel: the
/// one table behind the checker's error for them, so `fentry:vfs_read` is refused with its cause
/// rather than as an unknown word.
public enum UnattachedProbeType: String, Sendable, CaseIterable {
  case fentry, fexit, iter

  /// bpftrace's spellings: `kfunc`/`kretfunc` are the older names of `fentry`/`fexit`.
  public init?(provider: String) {
    switch provider {
    case "fentry", "f", "kfunc": self = .fentry
    case "fexit", "fr", "kretfunc": self = .fexit
    case "iter", "it": self = .iter
    default: return nil
    }
  }

  /// What the kernel must have for probes of this type, whoever attaches them.
  public var kernelMechanism: String {
    switch self {
    case .fentry, .fexit: return "BPF trampolines, built on ftrace"
    case .iter: return "BPF iterators"
    }
  }

  /// The kernel facility a catalog checks for this type's mechanism.
  public var needsFtrace: Bool { self == .fentry || self == .fexit }

  /// Where a script can go instead, given the probed function.
  public func alternative(function: String) -> String {
    switch self {
    case .fentry: return "'kprobe:\(function)' probes the same function entry where the kernel has kprobes"
    case .fexit: return "'kretprobe:\(function)' probes the same function return where the kernel has kprobes"
    case .iter: return "read the kernel's state from a probe on an event instead"
    }
  }
}
