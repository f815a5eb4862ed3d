import Glibc

/// The kernel's `uprobe` and `kprobe` PMUs (/sys/bus/event_source/devices/NAME): their perf type
/// and the config bits that make a probe a return probe or give it a USDT semaphore.
struct ProbePMU {
  let type: UInt32
  /// The `retprobe` bit of `config`, as the PMU's format directory gives it (`config:0`).
  let returnFlag: UInt64
  /// Where the PMU's description lives (/sys/bus/event_source/devices/NAME).
  let root: String

  static func named(_ name: String, for subject: String) throws(KernelError) -> ProbePMU {
    let root = "/sys/bus/event_source/devices/\(name)"
    guard let typeText = try? FileSystem.readText(root + "/type"),
      let type = UInt32(typeText.filter { !$0.isWhitespace })
    else {
      throw KernelError(
        operation: "perf_event_open", subject: subject, errno: ENOENT,
        explanation: "this kernel has no \(name) PMU (\(root)); probes go through tracefs instead")
    }
    var returnFlag: UInt64 = 1
    if let format = try? FileSystem.readText(root + "/format/retprobe"), let colon = format.firstIndex(of: ":"),
      let bit = UInt64(format[format.index(after: colon)...].filter(\.isNumber)), bit < 64
    {
      returnFlag = 1 << bit
    }
    return ProbePMU(type: type, returnFlag: returnFlag, root: root)
  }

  /// The first bit of `ref_ctr_offset` in `config` (`config:32-63`, the kernel's
  /// PERF_UPROBE_REF_CTR_OFFSET_SHIFT), read when a USDT semaphore needs it; nil when the PMU has
  /// no such field (kernels before 4.20).
  func referenceCounterShift() -> UInt64? {
    guard let format = try? FileSystem.readText(root + "/format/ref_ctr_offset"), let colon = format.firstIndex(of: ":"),
      let first = format[format.index(after: colon)...].split(separator: "-").first.flatMap({ UInt64($0.filter(\.isNumber)) }),
      first < 64
    else { return nil }
    return first
  }
}
