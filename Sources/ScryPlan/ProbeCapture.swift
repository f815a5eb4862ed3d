/// What a uprobe or kprobe block reads at the event, in a form both paths share: tracefs fetch
/// arguments (`--no-bpf`, where tracefs copies the data) and Scry's capture program (which copies
/// it into the BPF ring). Both lay the record out alike, so the actions read it the same way.
public struct ProbeCapture: Sendable, Hashable {
  /// A value at the event: a register, a stack entry, or the 8 bytes in memory at another
  /// operand plus an offset.
  public indirect enum Operand: Sendable, Hashable {
    /// A register by its x86-64 name as tracefs writes it (`di`, `si`, `dx`, `cx`, `r8`, `r9`, `ax`).
    case register(String)
    /// Stack entry N (`$stackN`: the word at sp + 8·N).
    case stackEntry(Int)
    /// The return value (`$retval`, the `ax` register at a return probe).
    case returnValue
    /// The 8 bytes at `base + offset`.
    case memory(Operand, offset: Int64)
    /// A pointer field of a tracepoint's record, at its offset (only Scry's capture program reads it).
    case recordWord(offset: Int)
    /// The current task's `struct task_struct *` (`curtask`; only Scry's capture program has it).
    case currentTask
    /// A number known before the event: a USDT argument the compiler made a constant (`4@$5`).
    case constant(Int64)
    /// A register plus another one times `scale` (an x86 indexed address, `(%rcx,%rdx,8)`); only
    /// Scry's capture program computes it.
    case indexed(base: String, index: String, scale: Int)

    /// The tracefs fetch syntax: `%di`, `$stack2`, `$retval`, `+8(%si)`; `$comm`-like roots tracefs
    /// has no syntax for are never fetched by tracefs (the planner keeps them to the capture program).
    public var fetchText: String {
      switch self {
      case .register(let name): return "%" + name
      case .stackEntry(let n): return "$stack\(n)"
      case .returnValue: return "$retval"
      case .memory(let base, let offset): return Self.memoryText(base, offset)
      // tracefs's immediate (`\IMM`, Linux 5.7 on).
      case .constant(let value): return "\\\(value)"
      case .recordWord, .currentTask, .indexed: return "?"
      }
    }

    /// Where the chain starts.
    public var root: Operand {
      if case .memory(let base, _) = self { return base.root }
      return self
    }

    /// Whether tracefs can fetch it (`--no-bpf`): registers, stack and memory through them.
    public var isTraceFSFetchable: Bool {
      switch self {
      case .register, .stackEntry, .returnValue, .constant: return true
      case .memory(let base, _): return base.isTraceFSFetchable
      case .recordWord, .currentTask, .indexed: return false
      }
    }

    static func memoryText(_ base: Operand, _ offset: Int64) -> String {
      (offset < 0 ? "\(offset)" : "+\(offset)") + "(\(base.fetchText))"
    }
  }

  /// One fetched value.
  public enum Value: Sendable, Hashable {
    /// An operand's value, `byteCount` bytes of it (`%di:u64`).
    case operand(Operand, byteCount: Int, isSigned: Bool)
    /// `byteCount` bytes read at `base + offset` (`+8(%si):u32`).
    case read(Operand, offset: Int64, byteCount: Int, isSigned: Bool)
    /// A NUL-terminated string at `base + offset`, at most `maxLength` bytes (`+0(%si):ustring`).
    case string(Operand, offset: Int64, maxLength: Int)
    /// `count` raw bytes at `base + offset` (`buf()`).
    case bytes(Operand, offset: Int64, count: Int)

    /// Whether its chain starts at the current task: kernel memory, whatever the probe's own.
    public var readsTask: Bool {
      switch self {
      case .operand(let o, _, _), .read(let o, _, _, _), .string(let o, _, _), .bytes(let o, _, _): return o.root == .currentTask
      }
    }

    /// Whether tracefs can fetch it (`--no-bpf`).
    public var isTraceFSFetchable: Bool {
      switch self {
      case .operand(let o, _, _), .read(let o, _, _, _), .string(let o, _, _), .bytes(let o, _, _): return o.isTraceFSFetchable
      }
    }
  }

  /// One field of the record: where it sits and what it holds.
  public struct Field: Sendable, Hashable {
    public var offset: Int
    public var value: Value
  }

  /// Kernel memory (kprobes) or the traced process's (uprobes).
  public var isKernel: Bool
  public var fields: [Field]
  /// Where each field's value is written, parallel to `fields` (for `-kk`'s helper errors).
  public var sites: [ReadSite] = []
  /// Where the first field sits (after the common fields and the probe's address or addresses).
  public var firstOffset: Int
  /// Bytes of the fixed part of the record: header and fields (strings are `__data_loc` words).
  public var fixedSize: Int

  /// The most a string field's data can take after the fixed part.
  public var stringCapacity: Int {
    fields.reduce(0) { sum, field in
      if case .string(_, _, let maxLength) = field.value { return sum + maxLength }
      return sum
    }
  }

  /// `NAME=FETCHARG:TYPE` items for tracefs, in record order (a `buf()` longer than tracefs's
  /// 64-element arrays is several consecutive items).
  public var fetchArguments: [String] {
    var items: [String] = []
    for field in fields {
      switch field.value {
      case .operand(let operand, let byteCount, let isSigned):
        items.append(operand.fetchText + ":" + Self.integerType(byteCount, isSigned))
      case .read(let base, let offset, let byteCount, let isSigned):
        items.append(Operand.memoryText(base, offset) + ":" + Self.integerType(byteCount, isSigned))
      case .string(let base, let offset, _):
        items.append(Operand.memoryText(base, offset) + (isKernel ? ":string" : ":ustring"))
      case .bytes(let base, let offset, let count):
        for start in stride(from: 0, to: count, by: 64) {
          items.append(Operand.memoryText(base, offset + Int64(start)) + ":u8[\(Swift.min(64, count - start))]")
        }
      }
    }
    return items.enumerated().map { "a\($0.offset)=\($0.element)" }
  }

  static func integerType(_ byteCount: Int, _ isSigned: Bool) -> String { (isSigned ? "s" : "u") + "\(byteCount * 8)" }
}
