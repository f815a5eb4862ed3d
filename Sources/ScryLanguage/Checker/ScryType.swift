/// The type of a value in a Scry program, as the checker settles it.
/// Every type has a fixed size in bytes (`byteSize`): the runtime keeps values,
/// map keys and map values as packed bytes laid out by `ValueLayout` rules below.
public indirect enum ScryType: Hashable, Sendable, CustomStringConvertible {
  /// Statements and functions that give nothing back.
  case none
  case integer(IntegerType)
  /// `true`/`false`; stored as 8 bytes (0 or 1).
  case boolean
  /// A NUL-padded string of at most `capacity - 1` bytes (bpftrace's `string[N]`).
  case string(capacity: Int)
  case tuple([ScryType])
  /// The value type of a map updated by `count()`, `hist()`…; only maps hold these.
  case aggregate(AggregateKind)
  /// An address printed as a kernel (`ksym`) or user (`usym`) symbol.
  case symbol(isKernel: Bool)
  /// A call stack captured at the event (`kstack`, `ustack`): 8 bytes that name it in the
  /// session's table of stacks (its frames are kept there once, however many keys hold it).
  case stack(StackType)
  /// `buf(p, n)`: up to `capacity` raw bytes, printed hex-escaped.
  case buffer(capacity: Int)
  /// `ntop(addr)`: an IPv4 or IPv6 address.
  case inetAddress
  /// A `cgroup_path`/`username`-like string produced at print time is modelled as string;
  /// a pointer is an integer address that knows what it points to (`str()` reads it).
  case pointer(ScryType)
  /// A fixed array inside a record (`int fds[2]`).
  case array(ScryType, count: Int)
  /// A tracepoint's `args`, or a C struct or union value: the record of its fields.
  case record(RecordType)
  /// A C struct or union known by name (`struct task_struct`, `union bpf_attr`), only ever behind a
  /// pointer: its layout comes from the program's `CTypes` when it is dereferenced, so types that
  /// point at each other (a task's `parent`) stay finite.
  case structReference(String)

  public static let int64 = ScryType.integer(.int64)
  public static let uint64 = ScryType.integer(.uint64)
  /// bpftrace's default string size (BPFTRACE_STRLEN).
  public static let defaultStringCapacity = 64
  public static let defaultString = ScryType.string(capacity: defaultStringCapacity)
  /// `comm` is the kernel's TASK_COMM_LEN.
  public static let comm = ScryType.string(capacity: 16)

  public var isInteger: Bool {
    switch self {
    case .integer, .boolean, .pointer: return true
    default: return false
    }
  }

  public var isString: Bool {
    if case .string = self { return true }
    return false
  }

  /// Bytes this type takes in a packed map key or value.
  public var byteSize: Int {
    switch self {
    case .none: return 0
    case .integer, .boolean, .pointer: return 8
    // A user address needs its process to be named: the address, then the pid.
    case .symbol(let isKernel): return isKernel ? 8 : 16
    case .string(let capacity): return capacity
    case .buffer(let capacity): return 8 + capacity
    case .tuple(let elements): return elements.reduce(0) { $0 + $1.byteSize }
    case .aggregate(let kind): return kind.byteSize
    case .stack: return 8
    case .inetAddress: return 24
    case .array(let element, let count): return element.memorySize * count
    case .record(let record): return record.size
    case .structReference: return 0
    }
  }

  /// `sizeof(expression)` as bpftrace computes it: the value laid out as C lays out a struct of
  /// its parts, each at its alignment, the whole rounded up to the largest.
  public var cLayoutSize: Int { cLayout.size }

  private var cLayout: (size: Int, alignment: Int) {
    switch self {
    case .integer(let t): return (t.bits / 8, t.bits / 8)
    case .string(let capacity): return (capacity, 1)
    case .array(let element, let count): return (element.memorySize * count, Swift.max(1, element.cLayout.alignment))
    case .record(let record):
      let alignment = record.fields.map { $0.type.cLayout.alignment }.max() ?? 1
      return (record.size, Swift.min(8, Swift.max(1, alignment)))
    case .tuple(let elements):
      var offset = 0
      var alignment = 1
      for element in elements {
        let (size, align) = element.cLayout
        offset = (offset + align - 1) / align * align + size
        alignment = Swift.max(alignment, align)
      }
      return ((offset + alignment - 1) / alignment * alignment, alignment)
    default: return (byteSize, 8)
    }
  }

  /// Bytes the type takes in C memory: what a pointer to it steps by, and an array element's
  /// stride. Integers take their width here, where values and map slots widen them to 8 bytes.
  public var memorySize: Int {
    switch self {
    case .integer(let t): return t.bits / 8
    case .boolean: return 1
    default: return byteSize
    }
  }

  public var description: String {
    switch self {
    case .none: return "none"
    case .integer(let t): return t.description
    case .boolean: return "bool"
    case .string(let capacity): return "string[\(capacity)]"
    case .tuple(let elements): return "(" + elements.map(\.description).joined(separator: ", ") + ")"
    case .aggregate(let kind): return kind.description
    case .symbol(let isKernel): return isKernel ? "ksym" : "usym"
    case .stack(let stack): return stack.isKernel ? "kstack" : "ustack"
    case .buffer(let capacity): return "buffer[\(capacity)]"
    case .inetAddress: return "inet"
    case .pointer(let pointee): return "\(pointee) *"
    case .array(let element, let count): return "\(element)[\(count)]"
    case .record(let record): return record.cName
    case .structReference(let name): return name
    }
  }
}

/// A fixed-width integer type.
public struct IntegerType: Hashable, Sendable, CustomStringConvertible {
  public var bits: Int
  public var isSigned: Bool
  /// The script's C enum the value is one of, when it is an enumerator or a cast to the enum: it
  /// prints by name (`@[ONE]: 11`), as bpftrace 0.24 prints it. Arithmetic gives a plain integer.
  public var enumeration: EnumerationType?

  public init(bits: Int, isSigned: Bool, enumeration: EnumerationType? = nil) {
    self.bits = bits
    self.isSigned = isSigned
    self.enumeration = enumeration
  }

  public static let int64 = IntegerType(bits: 64, isSigned: true)
  public static let uint64 = IntegerType(bits: 64, isSigned: false)
  public static let int32 = IntegerType(bits: 32, isSigned: true)
  public static let uint32 = IntegerType(bits: 32, isSigned: false)

  /// `int8`…`uint64` and C spellings (`int`, `unsigned long`, `u32`, `pid_t`…), for casts and tracefs fields.
  public init?(name: String) {
    switch name {
    case "int8", "s8", "char", "signed char", "__s8", "int8_t": self.init(bits: 8, isSigned: true)
    case "uint8", "u8", "unsigned char", "__u8", "bool", "_Bool", "uint8_t": self.init(bits: 8, isSigned: false)
    case "int16", "s16", "short", "__s16", "int16_t": self.init(bits: 16, isSigned: true)
    case "uint16", "u16", "unsigned short", "__u16", "umode_t", "uint16_t": self.init(bits: 16, isSigned: false)
    case "int32", "s32", "int", "__s32", "pid_t", "signed int", "int32_t": self.init(bits: 32, isSigned: true)
    case "uint32", "u32", "unsigned int", "unsigned", "__u32", "uid_t", "gid_t", "dev_t", "gfp_t", "uint32_t":
      self.init(bits: 32, isSigned: false)
    case "int64", "s64", "long", "long long", "__s64", "loff_t", "ssize_t", "long int", "time64_t", "int64_t", "intptr_t",
      "ptrdiff_t":
      self.init(bits: 64, isSigned: true)
    case "uint64", "u64", "unsigned long", "unsigned long long", "__u64", "size_t", "long unsigned int",
      "unsigned long int", "uint64_t", "uintptr_t":
      self.init(bits: 64, isSigned: false)
    default: return nil
    }
  }

  public var description: String { (isSigned ? "int" : "uint") + String(bits) }
}

extension AggregateKind {
  /// The integer a `count`, `sum`, `avg`, `min` or `max` reads as in an expression; nil for the
  /// kinds that are no single number (`stats`, histograms).
  public var integerValue: ScryType? {
    switch self {
    case .count: return .uint64
    case .sum(let isSigned), .avg(let isSigned), .min(let isSigned), .max(let isSigned): return isSigned ? .int64 : .uint64
    default: return nil
    }
  }
}

/// What an aggregating map function keeps per key.
public enum AggregateKind: Hashable, Sendable, CustomStringConvertible {
  case count
  case sum(isSigned: Bool)
  case avg(isSigned: Bool)
  case min(isSigned: Bool)
  case max(isSigned: Bool)
  case stats(isSigned: Bool)
  /// Power-of-two histogram, bpftrace's `hist(v)`.
  case hist
  /// Linear histogram `lhist(v, min, max, step)`.
  case lhist(min: Int64, max: Int64, step: Int64)

  /// Words of `hist`: one bucket for negatives, one for 0, then [2^k, 2^(k+1)) (bpftrace's BPF code
  /// stops at k = 31); the last word holds the running sum.
  public static let histBucketCount = 66

  /// Buckets of `lhist`: below min, one per step, and at or above max.
  public static func lhistBucketCount(min: Int64, max: Int64, step: Int64) -> Int {
    Int((max - min) / step) + 2
  }

  /// Packed size of the per-key state (see docs/internals.md for the layout of each kind).
  public var byteSize: Int {
    switch self {
    case .count, .sum: return 8
    case .avg, .stats: return 16  // sum, count
    case .min, .max: return 16  // value, isSet
    case .hist: return 8 * Self.histBucketCount
    // Both histograms keep the running sum of their values in one more word (for exporters).
    case .lhist(let min, let max, let step): return 8 * (Self.lhistBucketCount(min: min, max: max, step: step) + 1)
    }
  }

  public var functionName: String {
    switch self {
    case .count: return "count"
    case .sum: return "sum"
    case .avg: return "avg"
    case .min: return "min"
    case .max: return "max"
    case .stats: return "stats"
    case .hist: return "hist"
    case .lhist: return "lhist"
    }
  }

  public var description: String {
    switch self {
    case .lhist(let min, let max, let step): return "lhist(\(min), \(max), \(step))"
    default: return functionName
    }
  }
}

/// A tracepoint's record: its fields, with offsets as the kernel lays them out.
public struct RecordType: Hashable, Sendable {
  /// The tag (`sched_switch`, `task_struct`), empty for an anonymous struct or union.
  public var name: String
  public var fields: [RecordField]
  public var size: Int
  /// A C union: every field at offset 0.
  public var isUnion: Bool

  public init(name: String, fields: [RecordField], size: Int, isUnion: Bool = false) {
    self.name = name
    self.fields = fields
    self.size = size
    self.isUnion = isUnion
  }

  /// The C name: `struct task_struct`, `union bpf_attr`.
  public var cName: String { (isUnion ? "union " : "struct ") + (name.isEmpty ? "<anonymous>" : name) }

  public func field(named name: String) -> RecordField? { fields.first { $0.name == name } }
}

/// One field of a tracepoint record.
public struct RecordField: Hashable, Sendable {
  public enum Storage: Hashable, Sendable {
    /// The value sits at `offset` with `size` bytes.
    case inline
    /// `__data_loc`: a u32 at `offset` holds (length << 16 | offset) of the data in the record.
    case dataLocation
  }

  public var name: String
  /// The C type as tracefs wrote it (`const char *`), for `-lv` and `print(args)`.
  public var cType: String
  public var type: ScryType
  public var offset: Int
  public var size: Int
  public var storage: Storage
  /// A bitfield's first bit within the `size` bytes at `offset` (little-endian, bit 0 the lowest),
  /// and its width; 0 for a field that is not a bitfield.
  public var bitOffset: Int
  public var bitWidth: Int

  public init(
    name: String, cType: String, type: ScryType, offset: Int, size: Int, storage: Storage = .inline,
    bitOffset: Int = 0, bitWidth: Int = 0
  ) {
    self.name = name
    self.cType = cType
    self.type = type
    self.offset = offset
    self.size = size
    self.storage = storage
    self.bitOffset = bitOffset
    self.bitWidth = bitWidth
  }
}

/// What kind of stack a value holds and how it prints.
public struct StackType: Hashable, Sendable {
  /// How a stack prints: bpftrace's `sym+off` lines, perf's `address sym+off`, or bare addresses;
  /// in SystemTap programs, SystemTap's ` 0x… : sym+0x…/0x… [module]` lines (`print_backtrace`)
  /// or its brief `sym+0x… [module]` (`sprint_backtrace`).
  public enum Mode: String, Hashable, Sendable {
    case bpftrace, perf, raw
    case systemTap = "systemtap", systemTapBrief = "systemtap_brief"

    public var isSystemTap: Bool { self == .systemTap || self == .systemTapBrief }
  }

  public var isKernel: Bool
  /// Frames kept, at most.
  public var depth: Int
  public var mode: Mode

  public init(isKernel: Bool, depth: Int = StackType.defaultDepth, mode: Mode = .bpftrace) {
    self.isKernel = isKernel
    self.depth = depth
    self.mode = mode
  }

  /// bpftrace's default and the kernel's `perf_event_max_stack`.
  public static let defaultDepth = 127
}

/// A C enum declared in the script: its enumerators by value, for printing.
public struct EnumerationType: Hashable, Sendable {
  public let name: String
  public let names: [Int64: String]

  public init(name: String, names: [Int64: String]) {
    self.name = name
    self.names = names
  }
}
