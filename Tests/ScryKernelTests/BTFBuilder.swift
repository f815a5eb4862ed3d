import Glibc

@testable import ScryKernel

/// Builds small BTF blobs in memory, for the encodings vmlinux does not show (old-style
/// bitfields, split BTF) and for malformed input.
struct BTFBuilder {
  private(set) var strings: [UInt8] = [0]
  private(set) var types: [UInt8] = []
  /// The id the next type gets.
  private(set) var nextID: UInt32
  /// Added to string offsets: a split blob's strings follow its base's.
  let stringBase: UInt32

  init(firstID: UInt32 = 1, stringBase: UInt32 = 0) {
    self.nextID = firstID
    self.stringBase = stringBase
  }

  /// The offset of `text` in the string section (added at the end).
  mutating func string(_ text: String) -> UInt32 {
    if text.isEmpty { return 0 }
    let offset = UInt32(strings.count) + stringBase
    strings += Array(text.utf8) + [0]
    return offset
  }

  /// Appends a type: its header and trailing words; returns its id.
  @discardableResult
  mutating func type(
    _ name: String = "", kind: UInt32, vlen: Int = 0, kindFlag: Bool = false, sizeOrType: UInt32 = 0,
    data: [UInt32] = []
  ) -> UInt32 {
    let nameOffset = string(name)
    let info = (kindFlag ? UInt32(1) << 31 : 0) | kind << 24 | UInt32(vlen)
    for word in [nameOffset, info, sizeOrType] + data { append(word) }
    defer { nextID += 1 }
    return nextID
  }

  private mutating func append(_ word: UInt32) {
    withUnsafeBytes(of: word.littleEndian) { types += $0 }
  }

  /// The blob: a 24-byte header, the types, the strings.
  var bytes: [UInt8] {
    var header: [UInt8] = []
    func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
    put(UInt16(0xeb9f))
    put(UInt8(1))
    put(UInt8(0))
    put(UInt32(24))
    put(UInt32(0))
    put(UInt32(types.count))
    put(UInt32(types.count))
    put(UInt32(strings.count))
    return header + types + strings
  }
}

/// `bpftool btf dump file … format raw`, the independent reading the BTF tests compare with.
struct Bpftool {
  static let path = "/usr/sbin/bpftool"

  /// One type's lines: `[id] KIND 'name' …`, then its members' lines without the tab.
  struct Entry {
    var header: String
    var members: [String]
  }

  var types: [UInt32: Entry] = [:]
  var lastID: UInt32 = 0

  /// The dump of `file`, keeping the types of `ids`; nil when bpftool is missing or fails.
  static func rawDump(_ file: String, ids: Set<UInt32>) -> Bpftool? {
    guard access(path, X_OK) == 0 else { return nil }
    let (status, text) = ELFFixture.run(path, ["btf", "dump", "file", file, "format", "raw"])
    guard status == 0 else { return nil }
    var dump = Bpftool()
    var current: UInt32? = nil
    for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
      if line.first == UInt8(ascii: "\t") {
        if let current { dump.types[current]?.members.append(String(decoding: line.dropFirst(), as: UTF8.self)) }
        continue
      }
      // "[123] KIND …": only headers start without a tab.
      guard let close = line.firstIndex(of: UInt8(ascii: "]")),
        let id = UInt32(String(decoding: line[line.index(after: line.startIndex)..<close], as: UTF8.self))
      else { continue }
      dump.lastID = id
      current = ids.contains(id) ? id : nil
      if ids.contains(id) { dump.types[id] = Entry(header: String(decoding: line, as: UTF8.self), members: []) }
    }
    return dump
  }

  /// A member as bpftool prints it.
  static func line(_ member: BTFMember) -> String {
    let name = member.name.isEmpty ? "(anon)" : member.name
    let bitfield = member.bitfieldSize == 0 ? "" : " bitfield_size=\(member.bitfieldSize)"
    return "'\(name)' type_id=\(member.type) bits_offset=\(member.bitOffset)" + bitfield
  }
}
