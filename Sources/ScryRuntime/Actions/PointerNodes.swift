import CScrySystem
import Glibc
import ScryLanguage

// Data behind a tracepoint's pointer fields: read from the slots a BPF program appended to the
// record when the event fired, or, where BPF is not allowed, from the process's memory as soon
// as the event is read (best-effort: the process may have exited or changed the buffer).

/// `join(args.argv[, sep])` from a string-array slot: a u32 count, padding, then the strings.
final class JoinStatement: StmtNode {
  let offset: Int
  let maxCount: Int
  let maxLength: Int
  let separator: [UInt8]
  init(offset: Int, maxCount: Int, maxLength: Int, separator: [UInt8]) {
    self.offset = offset
    self.maxCount = maxCount
    self.maxLength = maxLength
    self.separator = separator
  }
  let record = OutputBuffer(capturing: ())
  override func exec(_ m: Machine) -> Flow {
    guard let raw = m.raw, offset + 8 + maxCount * maxLength <= m.rawSize else { return .next }
    let count = min(Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)), maxCount)
    m.output.record("join", scratch: record, lineEnd: true) { out in
      for i in 0..<count {
        let slot = raw + offset + 8 + i * maxLength
        let length = StringBytes.length(slot, maxLength)
        // bpftrace ends the list at an empty string (or one it could not read): `echo a "" b` is "echo a".
        if length == 0 { break }
        if i > 0 { separator.withUnsafeBytes { out.appendText($0) } }
        out.appendText(UnsafeRawBufferPointer(start: slot, count: length))
      }
    }
    return .next
  }
}

/// `buf(arg1, n)` fetched by a dynamic probe: `n` bytes in the record, as a buffer value
/// (a u64 length, then the bytes).
final class RecordBuffer: BytesNode {
  let offset: Int
  let count: Int
  init(offset: Int, count: Int, type: ScryType) {
    self.offset = offset
    self.count = count
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    guard let raw = m.raw, offset + count <= m.rawSize else { return }
    let n = min(count, byteSize - 8)
    destination.storeBytes(of: UInt64(n), as: UInt64.self)
    (destination + 8).copyMemory(from: raw + offset, byteCount: n)
  }
}

/// The process's memory, read with process_vm_readv right after the event is read.
enum ProcessMemory {
  /// Reads up to `capacity` bytes of the NUL-terminated string at `address` in `pid` into
  /// `destination`, page by page (a string may end just before an unmapped page); returns its
  /// length, and counts in `m` a read that found nothing at all.
  static func readString(
    _ m: Machine, pid: UInt32, address: UInt64, into destination: UnsafeMutableRawPointer, capacity: Int
  ) -> Int {
    var length = 0
    var at = address
    while length < capacity {
      let pageLeft = 4096 - Int(at & 4095)
      let chunk = min(pageLeft, capacity - length)
      let n = scry_process_vm_read(pid_t(bitPattern: pid), destination + length, chunk, at)
      guard n > 0 else {
        if length == 0 { m.failedProcessReads &+= 1 }
        break
      }
      if let nul = memchr(destination + length, 0, n) { return length + (destination + length).distance(to: nul) }
      length += n
      at += UInt64(n)
    }
    return length
  }

  static func readWord(_ m: Machine, pid: UInt32, address: UInt64) -> UInt64? {
    var word: UInt64 = 0
    let n = withUnsafeMutableBytes(of: &word) { scry_process_vm_read(pid_t(bitPattern: pid), $0.baseAddress, 8, address) }
    if n != 8 { m.failedProcessReads &+= 1 }
    return n == 8 ? word : nil
  }
}

/// `str(args.field)` read from the process after the fact (no BPF).
final class ProcessString: BytesNode {
  let pointerOffset: Int
  init(pointerOffset: Int, type: ScryType) {
    self.pointerOffset = pointerOffset
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    guard let raw = m.raw, pointerOffset + 8 <= m.rawSize, byteSize > 1 else { return }
    let address = raw.loadUnaligned(fromByteOffset: pointerOffset, as: UInt64.self)
    guard address != 0 else { return }
    let length = ProcessMemory.readString(m, pid: m.pid, address: address, into: destination, capacity: byteSize - 1)
    (destination + length).initializeMemory(as: UInt8.self, repeating: 0, count: byteSize - length)
  }
}

/// `join(args.argv)` read from the process after the fact (no BPF).
final class ProcessJoinStatement: StmtNode {
  let pointerOffset: Int
  let maxCount: Int
  let separator: [UInt8]
  let buffer: UnsafeMutableRawPointer
  let maxLength: Int
  init(pointerOffset: Int, maxCount: Int, maxLength: Int, separator: [UInt8]) {
    self.pointerOffset = pointerOffset
    self.maxCount = maxCount
    self.maxLength = maxLength
    self.separator = separator
    self.buffer = UnsafeMutableRawPointer.allocate(byteCount: maxLength, alignment: 8)
  }
  deinit { buffer.deallocate() }
  let record = OutputBuffer(capturing: ())
  override func exec(_ m: Machine) -> Flow {
    guard let raw = m.raw, pointerOffset + 8 <= m.rawSize else { return .next }
    let array = raw.loadUnaligned(fromByteOffset: pointerOffset, as: UInt64.self)
    m.output.record("join", scratch: record, lineEnd: true) { out in
      for i in 0..<maxCount {
        guard array != 0, let element = ProcessMemory.readWord(m, pid: m.pid, address: array + UInt64(i * 8)), element != 0
        else { break }
        let length = ProcessMemory.readString(m, pid: m.pid, address: element, into: buffer, capacity: maxLength - 1)
        if length == 0 { break }  // as bpftrace, and as JoinStatement
        if i > 0 { separator.withUnsafeBytes { out.appendText($0) } }
        out.appendText(UnsafeRawBufferPointer(start: buffer, count: length))
      }
    }
    return .next
  }
}
