/// The dynamic linker's cache (/etc/ld.so.cache, written by `ldconfig`): library names to paths.
///
/// Reads the "glibc-ld.so.cache1.1" format, alone or after the old "ld.so-1.7.0" table that
/// older ldconfigs write first. Entries keep the file's order, which is the linker's order of
/// preference. Only entries for this machine's ABI are kept (not i386 or x32 libraries on x86-64).
/// The format is glibc's `sysdeps/generic/dl-cache.h`; see `ldconfig(8)`.
public struct LinkerCache: Sendable {
  /// One library: its soname (e.g. "libc.so.6") and the path it resolves to.
  public struct Entry: Sendable, Hashable {
    public var name: String
    public var path: String

    public init(name: String, path: String) {
      self.name = name
      self.path = path
    }
  }

  /// The entries, in the file's order.
  public var entries: [Entry]

  /// Where glibc's dynamic linker reads its cache.
  public static let defaultPath = "/etc/ld.so.cache"
  private static let oldMagic = Array("ld.so-1.7.0".utf8)
  private static let newMagic = Array("glibc-ld.so.cache1.1".utf8)

  /// Reads and parses the cache at `path`; throws a `KernelError` when it cannot be read or is
  /// not in a known format.
  public init(path: String = LinkerCache.defaultPath) throws(KernelError) {
    let data = try FileSystem.readBytes(path)
    guard let entries = data.withUnsafeBytes({ LinkerCache.parse(ELFBytes(base: $0.baseAddress, count: $0.count)) })
    else {
      throw KernelError(operation: "read linker cache", subject: path, errno: 0, explanation: "not an ld.so.cache file")
    }
    self.entries = entries
  }

  /// A cache holding `entries` (for tests and for callers that build their own list).
  public init(entries: [Entry]) {
    self.entries = entries
  }

  /// The entries of a cache file's bytes, or nil when the bytes are not a cache.
  static func parse(_ bytes: ELFBytes) -> [Entry]? {
    var start: UInt64 = 0
    if hasMagic(oldMagic, in: bytes, at: 0) {
      // Old header: 11-byte magic padded to 12, u32 count, then 12-byte entries; the new
      // header follows, aligned to 8.
      guard let count = bytes.load(12, as: UInt32.self) else { return nil }
      start = (16 + UInt64(count) * 12 + 7) & ~7
    }
    guard hasMagic(newMagic, in: bytes, at: start), let count = bytes.load(start + 20, as: UInt32.self) else {
      return nil
    }
    let entriesStart = start + 48
    let entrySize: UInt64 = 24
    guard bytes.contains(offset: entriesStart, entries: UInt64(count), entrySize: entrySize) else { return nil }
    var result: [Entry] = []
    for index in 0..<UInt64(count) {
      let at = entriesStart + index * entrySize
      let flags: UInt32 = bytes.field(at)
      guard isForThisMachine(flags) else { continue }
      // Strings are offsets from the start of the new-format header.
      let key = start + UInt64(bytes.field(at + 4, as: UInt32.self))
      let value = start + UInt64(bytes.field(at + 8, as: UInt32.self))
      let limit = UInt64(bytes.count)
      guard let name = bytes.cString(at: key, limit: limit), let path = bytes.cString(at: value, limit: limit) else {
        continue
      }
      result.append(Entry(name: name, path: path))
    }
    return result
  }

  private static func hasMagic(_ magic: [UInt8], in bytes: ELFBytes, at offset: UInt64) -> Bool {
    guard bytes.contains(offset: offset, length: UInt64(magic.count)) else { return false }
    for (index, byte) in magic.enumerated() where bytes.field(offset + UInt64(index), as: UInt8.self) != byte {
      return false
    }
    return true
  }

  /// Whether an entry's flags name an ELF libc6 library of this process's ABI (FLAG_ELF_LIBC6
  /// in the low byte, the FLAG_*_LIB64 value in the next one).
  private static func isForThisMachine(_ flags: UInt32) -> Bool {
    guard flags & 0xff == 3 else { return false }
    #if arch(x86_64)
      return flags & 0xff00 == 0x0300
    #elseif arch(arm64)
      return flags & 0xff00 == 0x0a00
    #else
      return true
    #endif
  }
}
