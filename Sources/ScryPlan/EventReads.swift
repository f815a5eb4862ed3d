import ScryLanguage

/// Lowers what a tracepoint block reads through memory into reads the capture program makes at
/// the event: `args->skb->len` through a pointer field of the record, `curtask->real_parent->tgid`
/// from the current task, `str(args->file->f_path.dentry->d_name.name)`. Each read gets an 8-byte
/// aligned slot in the RAW data after the record, where the actions read it like a record field.
///
/// A syscall's pointer arguments are the calling process's memory; everything else, the kernel's.
struct EventReads {
  let program: CheckedProgram
  /// This attachment's tracepoint record: a block on several tracepoints finds a pointer field at
  /// each one's own offset.
  let record: RecordType?
  let isUserMemory: Bool
  /// Where the first slot starts in the RAW data: after the record copy, on 8 bytes.
  let firstOffset: Int
  private(set) var reads: [EventRead] = []
  private(set) var sites: [ReadSite] = []
  private(set) var fetched: [NodeID: FetchedValue] = [:]
  private var offsets: [EventRead: Int] = [:]
  private var nextOffset: Int
  private var paths: MemoryPaths?

  init(program: CheckedProgram, record: RecordType?, isUserMemory: Bool, recordSize: Int) {
    self.program = program
    self.record = record
    self.isUserMemory = isUserMemory
    self.firstOffset = (recordSize + 7) & ~7
    self.nextOffset = firstOffset
  }

  mutating func lower(_ block: ProbeBlock) {
    paths = MemoryPaths(program: program, block: block) { [program, record] e in Self.root(e, program: program, record: record) }
    // A value fetched whole needs none of its parts.
    block.visitExpressions { fetch($0) }
  }

  /// A pointer field of the record, or `curtask`.
  static func root(_ e: Expr, program: CheckedProgram, record: RecordType?) -> ProbeCapture.Operand? {
    switch e.kind {
    case .identifier:
      if case .builtin(.curtask)? = program.resolutions[e.id] { return .currentTask }
    case .field(let base, let name, _):
      guard case .builtin(.args)? = program.resolutions[base.id], let field = record?.field(named: name), field.size == 8,
        case .pointer = field.type
      else { return nil }
      return .recordWord(offset: field.offset)
    default:
      break
    }
    return nil
  }

  private mutating func fetch(_ e: Expr) -> Bool {
    guard let paths else { return false }
    switch (e.kind, program.function(of: e)) {
    case (.call(_, _, let args), .str?) where !program.type(of: args[0]).isString:
      // `str(args->filename)` alone stays with the pointer fetch (it has a `--no-bpf` road).
      guard let address = paths.pointerValue(args[0]), Self.isRead(address.base), case .string(let capacity) = program.type(of: e)
      else { return false }
      define(
        e, .string(address.base, offset: address.offset, maxLength: capacity), user: isUser(address.base),
        valueUser: paths.markedSpace(args[0]),
        layout: .inlineString(maxLength: capacity))
      return true
    case (.call(_, _, let args), .buf?):
      // `buf(args->buf, 16)`: the bytes behind the pointer, copied at the event.
      guard let address = paths.pointerValue(args[0]), case .buffer(let count) = program.type(of: e) else { return false }
      define(
        e, .bytes(address.base, offset: address.offset, count: count), user: isUser(address.base),
        valueUser: paths.markedSpace(args[0]), layout: .bytes(count: count))
      return true
    case (.unary(.deref, let pointer), _), (.field(let pointer, _, true), _), (.index(let pointer, _), _):
      guard let location = paths.location(e) else { return false }
      return read(e, at: location, user: paths.markedSpace(pointer))
    case (.field, _):
      guard let location = paths.location(e) else { return false }
      return read(e, at: location)
    case (.identifier, _):
      guard Self.root(e, program: program, record: record) == .currentTask else { return false }
      define(e, .operand(.currentTask, byteCount: 8, isSigned: false), user: false, layout: .integer(byteCount: 8, isSigned: false))
      return true
    default:
      return false
    }
  }

  /// `user`: the space the pointer was marked as (`uptr`, `kptr`), nil when unmarked.
  private mutating func read(_ e: Expr, at location: (base: ProbeCapture.Operand, offset: Int64), user marked: Bool? = nil) -> Bool {
    let type = program.type(of: e)
    let user = isUser(location.base)
    switch type {
    case .integer, .pointer, .boolean:
      let size = program.fields[e.id]?.size ?? Swift.min(8, type.memorySize)
      guard [1, 2, 4, 8].contains(size) else { return false }
      var signed = false
      if case .integer(let t) = type { signed = t.isSigned }
      define(e, .read(location.base, offset: location.offset, byteCount: size, isSigned: signed), user: user, valueUser: marked,
        layout: .integer(byteCount: 8, isSigned: false), signExtendFrom: signed ? size : nil)
    case .string(let capacity):
      // A member's own bytes (a `char[N]` member's type holds N + 1 with the terminator).
      let count = program.fields[e.id]?.size ?? capacity
      define(
        e, .bytes(location.base, offset: location.offset, count: count), user: user, valueUser: marked,
        layout: .chars(count: count))
    case .record, .array:
      let size = type.byteSize
      guard size > 0 else { return false }
      define(
        e, .bytes(location.base, offset: location.offset, count: size), user: user, valueUser: marked, layout: .raw(count: size))
    default:
      return false
    }
    return true
  }

  /// A string at a loaded address or at a constant one; a record's pointer field alone is the pointer fetch's.
  private static func isRead(_ base: ProbeCapture.Operand) -> Bool {
    switch base {
    case .memory, .constant: return true
    default: return false
    }
  }

  /// A chain from the record's pointer fields reads the process's memory at a syscall; a task's is
  /// the kernel's, and so is a constant address's (the event's own memory is the kernel's).
  private func isUser(_ operand: ProbeCapture.Operand) -> Bool {
    switch operand {
    case .currentTask: return false
    case .constant(let address):
      // Where bpftrace 0.17 knows no address space (BEGIN, END, interval, software, profile), its
      // bpf_probe_read reads below the top of user space as the task's memory, the rest as the
      // kernel's (x86's non-overlapping spaces); a tracepoint's constant is the kernel's.
      return record == nil && UInt64(bitPattern: address) < Self.userSpaceEnd
    case .memory(let base, _): return isUser(base)
    default: return isUserMemory
    }
  }

  /// x86-64's TASK_SIZE_MAX, the top of user space (4-level page tables; 5-level ones go further).
  static let userSpaceEnd: UInt64 = 0x7fff_ffff_f000

  /// bpftrace's helper for a read: its address space's, with none named where bpftrace cannot tell
  /// (a constant address at an event without a record: BEGIN, END, interval, software, profile).
  private func helperName(_ value: ProbeCapture.Value, user: Bool) -> String {
    let base: ProbeCapture.Operand
    let isString: Bool
    switch value {
    case .operand(let o, _, _), .read(let o, _, _, _), .bytes(let o, _, _): (base, isString) = (o, false)
    case .string(let o, _, _): (base, isString) = (o, true)
    }
    var spaceKnown = true
    if case .constant = base.root, record == nil { spaceKnown = false }
    let space = spaceKnown ? (user ? "_user" : "_kernel") : ""
    return "probe_read" + space + (isString ? "_str" : "")
  }

  /// `valueUser`: the space of the value itself when the pointer to it was marked (`uptr`, `kptr`).
  private mutating func define(
    _ e: Expr, _ value: ProbeCapture.Value, user: Bool, valueUser: Bool? = nil, layout: FetchedValue.Layout,
    signExtendFrom: Int? = nil
  ) {
    let read = EventRead(value: value, isUserMemory: user, isUserValue: valueUser)
    // The slot holds the value zero-extended to 8 bytes: a signed one is read back at its width.
    let finalLayout: FetchedValue.Layout = signExtendFrom.map { .integer(byteCount: $0, isSigned: true) } ?? layout
    if let offset = offsets[read] {
      fetched[e.id] = FetchedValue(offset: offset, layout: finalLayout)
      return
    }
    reads.append(read)
    sites.append(ReadSite(e, helper: helperName(value, user: user)))
    offsets[read] = nextOffset
    fetched[e.id] = FetchedValue(offset: nextOffset, layout: finalLayout)
    nextOffset += read.slotSize
  }
}
