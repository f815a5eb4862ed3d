import Glibc
import ScryKernel
import ScryLanguage

/// Values computed by the C library or the system's tables: `bswap`, `ntop`, `strerror`, `username`.

/// `bswap(x)`: the low `bits` bits of `x` in reverse byte order.
final class ByteSwap: IntNode {
  let operand: IntNode
  let bits: Int
  init(_ operand: IntNode, bits: Int) {
    self.operand = operand
    self.bits = bits
  }
  override func eval(_ m: Machine) -> UInt64 {
    let v = operand.eval(m)
    switch bits {
    case 8: return v & 0xff
    case 16: return UInt64(UInt16(truncatingIfNeeded: v).byteSwapped)
    case 32: return UInt64(UInt32(truncatingIfNeeded: v).byteSwapped)
    default: return v.byteSwapped
    }
  }
}

/// `ntop([family, ]address)`: the family as 8 bytes, then 16 bytes of address (IPv4 in the first 4).
final class InetAddressValue: BytesNode {
  let family: IntNode?
  let address: BytesNode
  let scratch: Scratch
  init(family: IntNode?, address: BytesNode) {
    self.family = family
    self.address = address
    self.scratch = Scratch(address.byteSize)
    super.init(type: .inetAddress)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    address.eval(m, into: scratch.pointer)
    // An integer or 4 bytes is IPv4; 16 bytes (a string, array or buffer slot) is IPv6.
    var size = address.byteSize
    if case .buffer = address.type { size -= 8 }
    let fromBytes = address.type.isString || address.type.isBuffer || address.type.isArray
    let family = self.family.map { Int32(truncatingIfNeeded: $0.eval(m)) } ?? (fromBytes && size >= 16 ? AF_INET6 : AF_INET)
    destination.storeBytes(of: UInt64(UInt32(bitPattern: family)), as: UInt64.self)
    (destination + 8).initializeMemory(as: UInt8.self, repeating: 0, count: 16)
    let source = UnsafeRawPointer(address.type.isBuffer ? scratch.pointer + 8 : scratch.pointer)
    (destination + 8).copyMemory(from: source, byteCount: Swift.min(family == AF_INET6 ? 16 : 4, Swift.max(size, 4)))
  }
}

/// `strerror(errno)`: the C library's text for an error number.
final class ErrorTextValue: BytesNode {
  let number: IntNode
  init(_ number: IntNode, type: ScryType) {
    self.number = number
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    // glibc's strerror returns a static text for known numbers and formats unknown ones into a
    // thread buffer; either way nothing is allocated, and actions run on one thread.
    guard let text = strerror(Int32(truncatingIfNeeded: number.eval(m))) else { return }
    let length = Swift.min(strlen(text), byteSize - 1)
    destination.copyMemory(from: text, byteCount: length)
  }
}

/// `cgroup_path(id[, filter])`: looked up when the event runs (the cgroup may be gone when the
/// map prints), once per id that exists (`CgroupPaths` keeps what it found).
final class CgroupPathValue: BytesNode {
  let id: IntNode
  let filter: String?
  private var paths: [UInt64: [UInt8]] = [:]
  private let cgroups = CgroupPaths()
  init(_ id: IntNode, filter: String?, type: ScryType) {
    self.id = id
    self.filter = filter
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    let value = id.eval(m)
    destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    let text: [UInt8]
    if let known = paths[value] {
      text = known
    } else {
      text = Array(cgroups.path(of: value, filter: filter).utf8)
      if !text.isEmpty { paths[value] = text }
    }
    text.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: Swift.min($0.count, byteSize - 1)) }
  }
}

/// `macaddr(x)`: six bytes as bpftrace prints them, upper-case hex joined by colons.
final class MacAddressValue: BytesNode {
  let source: BytesNode
  let scratch: Scratch
  /// A buffer's bytes follow its 8-byte length.
  let skip: Int
  init(_ source: BytesNode, type: ScryType) {
    self.source = source
    self.scratch = Scratch(max(source.byteSize, 16))
    if case .buffer = source.type { skip = 8 } else { skip = 0 }
    super.init(type: type)
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    source.eval(m, into: scratch.pointer)
    let digits: StaticString = "0123456789ABCDEF"
    let out = destination.assumingMemoryBound(to: UInt8.self)
    for i in 0..<6 {
      let byte = scratch.pointer.load(fromByteOffset: skip + i, as: UInt8.self)
      out[3 * i] = digits.utf8Start[Int(byte >> 4)]
      out[3 * i + 1] = digits.utf8Start[Int(byte & 15)]
      out[3 * i + 2] = i < 5 ? UInt8(ascii: ":") : 0
    }
  }
}

/// `username`: the name of the event task's user, looked up once per uid.
final class UsernameValue: BytesNode {
  private var names: [UInt32: [UInt8]] = [:]
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    let uid = UInt32(truncatingIfNeeded: m.uid())
    let name = names[uid] ?? lookup(uid)
    destination.initializeMemory(as: UInt8.self, repeating: 0, count: byteSize)
    name.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: Swift.min($0.count, byteSize - 1)) }
  }

  private func lookup(_ uid: UInt32) -> [UInt8] {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 4096)
    var name = Array(String(uid).utf8)
    if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let text = entry.pw_name {
      name = Array(String(cString: text).utf8)
    }
    names[uid] = name + [0]
    return names[uid]!
  }
}

extension ScryType {
  var isBuffer: Bool {
    if case .buffer = self { return true }
    return false
  }
  var isArray: Bool {
    if case .array = self { return true }
    return false
  }
}

/// `kstack`, `ustack`: the stack the capture program copied at the event (a u64 byte count, then
/// the frames), as its number in the stack table and the task it came from.
final class StackValue: BytesNode {
  let stack: StackType
  init(_ stack: StackType) {
    self.stack = stack
    super.init(type: .stack(stack))
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    var count = 0
    var frames = UnsafeRawPointer(bitPattern: 8)!
    if let captured = stack.isKernel ? m.eventKernelStack : m.eventUserStack {
      count = Swift.min(Int(captured.loadUnaligned(as: UInt64.self) / 8), stack.depth)
      frames = captured + 8
    }
    let id = StackTable.shared.intern(frames, count: count)
    if !stack.isKernel { StackTable.shared.noteProcess(m.pid) }
    destination.storeBytes(of: id, as: UInt32.self)
    destination.storeBytes(of: stack.isKernel ? 0 : m.pid, toByteOffset: 4, as: UInt32.self)
  }
}

/// `usym(addr)`: the address and the event's process, whose mappings are kept so the address
/// can be named when it prints, after the process has gone too.
final class UserSymbolValue: BytesNode {
  let address: IntNode
  init(_ address: IntNode) {
    self.address = address
    super.init(type: .symbol(isKernel: false))
  }
  override func eval(_ m: Machine, into destination: UnsafeMutableRawPointer) {
    destination.storeBytes(of: address.eval(m), as: UInt64.self)
    destination.storeBytes(of: UInt64(m.pid), toByteOffset: 8, as: UInt64.self)
    StackTable.shared.noteProcess(m.pid)
  }
}
