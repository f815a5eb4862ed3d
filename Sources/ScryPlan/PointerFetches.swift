import ScryLanguage

/// Finds what a tracepoint block reads behind the record's pointer fields (`str(args.filename)`,
/// `join(args.argv)`) and lays it out after the record, for the BPF program that copies it when
/// the event fires. A perf sample carries only the pointer, and by the time user space reads it
/// the process may have exited or reused the buffer.
struct PointerFetches {
  let program: CheckedProgram
  let record: RecordType
  /// The record bytes copied first: the same for every tracepoint of the block, so the slots
  /// after it are at the same offsets whichever tracepoint fired.
  let recordSize: Int
  /// Syscall arguments point into the calling process; other tracepoints' pointers are kernel addresses.
  let userMemory: Bool
  private(set) var items: [PointerFetch.Item] = []
  private var itemExpressions: [[NodeID]] = []

  /// bpftrace's limits for join(): 16 arguments of up to 1024 bytes.
  static let joinCount = 16
  static let joinLength = 1024

  init(program: CheckedProgram, record: RecordType, recordSize: Int, userMemory: Bool) {
    self.program = program
    self.record = record
    self.recordSize = recordSize
    self.userMemory = userMemory
  }

  /// The record bytes a block's tracepoints copy: the largest fixed part, plus room for
  /// `__data_loc` data, which follows it.
  static func recordSize(of records: [RecordType]) -> Int {
    records.map { record in
      record.size + (record.fields.contains { $0.storage == .dataLocation } ? 256 : 0)
    }.max() ?? 0
  }

  mutating func lower(_ block: ProbeBlock) {
    block.forEachExpression { e in
      guard case .call(_, _, let args) = e.kind, let function = program.function(of: e), let first = args.first else { return }
      // `str(uptr(args.filename))`: the field, read in the space the script marked it as.
      let (pointer, markedUser) = markedSpace(first)
      guard let field = pointerField(pointer) else { return }
      switch function {
      case .str:
        if case .string(let capacity) = program.type(of: e) {
          add(.string(pointerOffset: field.offset, maxLength: capacity, userMemory: markedUser ?? userMemory), for: e)
        }
      case .join:
        add(.stringArray(pointerOffset: field.offset, maxCount: Self.joinCount, maxLength: Self.joinLength), for: e)
      default:
        break
      }
    }
  }

  /// The values the runtime reads from the sample, by expression.
  var fetched: [NodeID: FetchedValue] {
    let offsets = PointerFetch(recordSize: recordSize, items: items).itemOffsets
    var values: [NodeID: FetchedValue] = [:]
    for (index, item) in items.enumerated() {
      let layout: FetchedValue.Layout
      let pointer: Int
      switch item {
      case .string(let offset, let maxLength, _):
        layout = .inlineString(maxLength: maxLength)
        pointer = offset
      case .stringArray(let offset, let maxCount, let maxLength):
        layout = .stringArray(maxCount: maxCount, maxLength: maxLength)
        pointer = offset
      }
      for id in itemExpressions[index] {
        values[id] = FetchedValue(offset: offsets[index], layout: layout, pointerField: pointer)
      }
    }
    return values
  }

  private mutating func add(_ item: PointerFetch.Item, for e: Expr) {
    if let index = items.firstIndex(of: item) {
      itemExpressions[index].append(e.id)
    } else {
      items.append(item)
      itemExpressions.append([e.id])
    }
  }

  /// `uptr(p)` and `kptr(p)` as `p` and the space they mark (true for user memory); else `e`, unmarked.
  private func markedSpace(_ e: Expr) -> (Expr, Bool?) {
    guard case .call(_, _, let args) = e.kind, args.count == 1, let function = program.function(of: e) else { return (e, nil) }
    switch function {
    case .uptr: return (args[0], true)
    case .kptr: return (args[0], false)
    default: return (e, nil)
    }
  }

  /// `args.NAME` (or `args->NAME`) where the field holds a pointer.
  private func pointerField(_ e: Expr) -> RecordField? {
    guard case .field(let base, let name, _) = e.kind, case .builtin(.args)? = program.resolutions[base.id],
      let field = record.field(named: name), field.size == 8
    else { return nil }
    if case .pointer = field.type { return field }
    return nil
  }
}
