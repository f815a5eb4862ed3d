import ScryKernel
import ScryLanguage

/// Every distinct stack the actions have taken, once each: a stack value (a map key, say) is the
/// stack's number here and the task it came from, 8 bytes, however deep the stack.
///
/// Interning is on the per-event path: a known stack costs a hash of its frames and one compare,
/// nothing allocated; a new one appends its frames. Actions and output run on one thread.
final class StackTable {
  nonisolated(unsafe) static let shared = StackTable()

  /// Frames of every stack, one after another; stack `i` is `frames[starts[i]..<starts[i + 1]]`.
  private var frames: [UInt64] = []
  private var starts: [Int] = [0]
  /// Open addressing over stack numbers + 1 (0: empty), indexed by the frames' hash.
  private var slots: [UInt32] = Array(repeating: 0, count: 1024)
  private var hashes: [UInt64] = []
  /// The executable mappings of each process a user stack was taken in, from the moment of its
  /// first stack: its frames are named after it exits.
  private var mappings: [UInt32: ProcessMappings] = [:]
  private let userSymbols = UserSymbolizer()

  /// Keeps the mappings of `pid` if this is its first user stack and no MMAP2 record named them
  /// (a process that started before Scry).
  @inline(__always)
  func noteProcess(_ pid: UInt32) {
    if mappings[pid] == nil { mappings[pid] = ProcessMappings.snapshot(of: pid) }
  }

  /// A mapping a process made (a PERF_RECORD_MMAP2 of the task-record carriers). A process first
  /// seen here may predate Scry (a `dlopen` during the run): its earlier mappings are read first,
  /// and the record's, appended after them, win where they overlap.
  func add(_ mapping: ProcessMappings.Mapping, to pid: UInt32) {
    noteProcess(pid)
    mappings[pid]!.mappings.append(mapping)
  }

  /// A forked process starts with its parent's mappings. A parent that predates Scry is read
  /// from /proc once here, so its children (a build's compilers) are not each read at their
  /// first MMAP2 record: that cost Scry most of its CPU on a busy machine.
  /// Nothing is read while no process's mappings are kept (a script that names no user address).
  func inherit(_ pid: UInt32, from parent: UInt32) {
    guard mappings[pid] == nil, !mappings.isEmpty else { return }
    noteProcess(parent)
    mappings[pid] = mappings[parent]
  }

  /// The number of the stack of `count` frames at `pointer`, taken in first if new.
  func intern(_ pointer: UnsafeRawPointer, count: Int) -> UInt32 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(count)
    for i in 0..<count {
      hash = (hash ^ pointer.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) &* 0x100_0000_01b3
    }
    let mask = slots.count - 1
    var index = Int(truncatingIfNeeded: hash) & mask
    while slots[index] != 0 {
      let id = Int(slots[index] - 1)
      if hashes[id] == hash && matches(id, pointer, count) { return UInt32(id) }
      index = (index + 1) & mask
    }
    let id = hashes.count
    for i in 0..<count { frames.append(pointer.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
    starts.append(frames.count)
    hashes.append(hash)
    slots[index] = UInt32(id + 1)
    if hashes.count * 2 > slots.count { grow() }
    return UInt32(id)
  }

  /// The frames of stack `id`, innermost first.
  func frames(of id: UInt32) -> ArraySlice<UInt64> {
    let i = Int(id)
    guard i + 1 < starts.count else { return [] }
    return frames[starts[i]..<starts[i + 1]]
  }

  private func matches(_ id: Int, _ pointer: UnsafeRawPointer, _ count: Int) -> Bool {
    guard starts[id + 1] - starts[id] == count else { return false }
    for i in 0..<count where frames[starts[id] + i] != pointer.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) {
      return false
    }
    return true
  }

  private func grow() {
    var bigger = [UInt32](repeating: 0, count: slots.count * 2)
    let mask = bigger.count - 1
    for id in hashes.indices {
      var index = Int(truncatingIfNeeded: hashes[id]) & mask
      while bigger[index] != 0 { index = (index + 1) & mask }
      bigger[index] = UInt32(id + 1)
    }
    slots = bigger
  }

  /// The function holding `address` in process `pid`, as `usym()` prints it (name only).
  func userFunctionName(of address: UInt64, pid: UInt32) -> String? {
    guard let mappings = mappings[pid], let name = userSymbols.name(of: address, in: mappings, pid: pid).name else { return nil }
    guard let plus = name.lastIndex(of: "+") else { return name }
    return String(name[..<plus])
  }

  /// A stack value's text as bpftrace prints it: `indent` spaces before each `sym+off` frame
  /// (4 in map keys, 8 elsewhere), perf's tab, address and name, or bare addresses.
  static func appendText(_ value: UnsafeRawPointer, type: StackType, indent: Int, to out: OutputBuffer) {
    let id = value.loadUnaligned(as: UInt32.self)
    let pid = value.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
    let mappings = type.isKernel ? nil : shared.mappings[pid]
    if type.mode.isSystemTap {
      for address in shared.frames(of: id) { appendSystemTapFrame(address, type: type, mappings: mappings, pid: pid, to: out) }
      return
    }
    out.appendByte(UInt8(ascii: "\n"))
    for address in shared.frames(of: id) {
      var name: String?
      var path: String?
      if type.isKernel {
        name = KernelSymbols.name(of: address)
      } else if let mappings {
        (name, path) = shared.userSymbols.name(of: address, in: mappings, pid: pid)
      }
      switch type.mode {
      case .bpftrace:
        out.appendRepeated(UInt8(ascii: " "), count: indent)
        if let name { out.append(name) } else { appendAddress(address, to: out) }
      case .perf:
        out.appendByte(UInt8(ascii: "\t"))
        ValueFormatter.appendHex(address, to: out)
        out.appendByte(UInt8(ascii: " "))
        if let name { out.append(name) } else { appendAddress(address, to: out) }
        if !type.isKernel { out.append(" (" + (path ?? "[unknown]") + ")") }
      case .raw:
        // bpftrace's raw mode: the bare hex address, neither indented nor prefixed.
        ValueFormatter.appendHex(address, to: out)
      case .systemTap, .systemTapBrief:
        out.appendRepeated(UInt8(ascii: " "), count: indent)
        appendAddress(address, to: out)
      }
      out.appendByte(UInt8(ascii: "\n"))
    }
  }

  /// One frame as SystemTap's runtime prints it (`_stp_snprint_addr`): print_backtrace's
  /// ` 0x00000000004005d4 : main+0x1d/0x40 [/tmp/app]`, sprint_backtrace's `main+0x1d [app]`; the
  /// address alone when no symbol is known. Addresses are `%p`: 0x and 16 digits.
  private static func appendSystemTapFrame(
    _ address: UInt64, type: StackType, mappings: ProcessMappings?, pid: UInt32, to out: OutputBuffer
  ) {
    var symbol: SymbolTable.Symbol?
    var module: String?
    if type.isKernel {
      symbol = KernelSymbols.symbol(of: address)
      module = symbol?.module
    } else if let mappings {
      (symbol, module) = shared.userSymbols.symbol(of: address, in: mappings, pid: pid)
    }
    let full = type.mode == .systemTap
    guard let symbol else {
      out.append(full ? " 0x" : "0x")
      appendPaddedHex(address, to: out)
      out.appendByte(UInt8(ascii: "\n"))
      return
    }
    if full {
      out.append(" 0x")
      appendPaddedHex(address, to: out)
      out.append(" : ")
    }
    out.append(symbol.name)
    out.append("+0x")
    ValueFormatter.appendHex(symbol.offset, to: out)
    if full {
      out.append("/0x")
      ValueFormatter.appendHex(symbol.size, to: out)
    }
    if var module {
      if !full, let slash = module.lastIndex(of: "/") { module = String(module[module.index(after: slash)...]) }
      out.append(" [" + module + "]")
    }
    out.appendByte(UInt8(ascii: "\n"))
  }

  private static func appendPaddedHex(_ value: UInt64, to out: OutputBuffer) {
    var digits = 1
    while digits < 16 && value >> (4 * UInt64(digits)) != 0 { digits += 1 }
    out.appendRepeated(UInt8(ascii: "0"), count: 16 - digits)
    ValueFormatter.appendHex(value, to: out)
  }

  private static func appendAddress(_ address: UInt64, to out: OutputBuffer) {
    out.append("0x")
    ValueFormatter.appendHex(address, to: out)
  }
}
