/// USDT probes: the SystemTap SDT notes (`.note.stapsdt`) that `<sys/sdt.h>` writes, one per
/// probe site. Layout: https://sourceware.org/systemtap/wiki/UserSpaceProbeImplementation
extension ELFFile {
  /// One probe site as its note describes it, with addresses already made file offsets.
  public struct StaticProbe: Sendable, Hashable {
    public var provider: String
    public var name: String
    /// The file offset of the probe's instruction (a `nop`): where the uprobe goes.
    public var fileOffset: UInt64
    /// The file offset of the probe's semaphore (an `unsigned short` the program checks before
    /// evaluating the probe's arguments), 0 when the probe has none. The kernel counts tracers
    /// there while a uprobe made with it as `ref_ctr_offset` exists.
    public var semaphoreOffset: UInt64
    /// The arguments as the assembler spelled them (`-4@%eax 8@-8(%rbp)`), space-separated.
    public var arguments: String
  }

  static let noteStapSDT: UInt32 = 3  // NT_STAPSDT

  /// Every probe of the file, in note order. A note whose pc or semaphore has no file offset (a
  /// damaged file) is left out; a file without the notes has none.
  public func staticProbes() -> [StaticProbe] {
    guard let notes = section(named: ".note.stapsdt"), notes.type == ELFConstant.sectionNote, notes.isInFile else { return [] }
    // Prelink may move the file after linking: the note keeps the link-time address of
    // `.stapsdt.base`, and the distance to the section's current address moves every pc.
    let base = section(named: ".stapsdt.base")?.address
    var probes: [StaticProbe] = []
    let end = notes.offset + notes.size
    var at = notes.offset
    let align: UInt64 = notes.alignment == 8 ? 8 : 4
    func padded(_ value: UInt64) -> UInt64 { (value + align - 1) & ~(align - 1) }
    while at + 12 <= end {
      let nameSize = UInt64(bytes.field(at, as: UInt32.self))
      let descriptorSize = UInt64(bytes.field(at + 4, as: UInt32.self))
      let type: UInt32 = bytes.field(at + 8)
      let nameAt = at + 12
      let descriptorAt = nameAt + padded(nameSize)  // both sizes are < 2^32: no overflow
      guard descriptorAt + descriptorSize <= end else { break }
      at = descriptorAt + padded(descriptorSize)
      guard type == Self.noteStapSDT, nameSize == 8, descriptorSize > 24,
        bytes.cString(at: nameAt, limit: descriptorAt) == "stapsdt"
      else { continue }
      if let probe = staticProbe(descriptorAt, end: descriptorAt + descriptorSize, base: base) { probes.append(probe) }
    }
    return probes
  }

  /// The descriptor: pc, link-time base, semaphore (8 bytes each), then provider, name and
  /// arguments as NUL-terminated strings.
  private func staticProbe(_ at: UInt64, end: UInt64, base: UInt64?) -> StaticProbe? {
    var pc: UInt64 = bytes.field(at)
    let noteBase: UInt64 = bytes.field(at + 8)
    var semaphore: UInt64 = bytes.field(at + 16)
    if let base, noteBase != 0 {
      pc = pc &+ (base &- noteBase)
      if semaphore != 0 { semaphore = semaphore &+ (base &- noteBase) }
    }
    var cursor = at + 24
    guard let provider = bytes.cString(at: cursor, limit: end) else { return nil }
    cursor += UInt64(provider.utf8.count) + 1
    guard let name = bytes.cString(at: cursor, limit: end) else { return nil }
    cursor += UInt64(name.utf8.count) + 1
    let arguments = cursor < end ? bytes.cString(at: cursor, limit: end) ?? "" : ""
    guard let probeOffset = fileOffset(ofAddress: pc) else { return nil }
    var semaphoreOffset: UInt64 = 0
    if semaphore != 0 {
      guard let offset = fileOffset(ofAddress: semaphore) else { return nil }
      semaphoreOffset = offset
    }
    return StaticProbe(provider: provider, name: name, fileOffset: probeOffset, semaphoreOffset: semaphoreOffset, arguments: arguments)
  }
}
