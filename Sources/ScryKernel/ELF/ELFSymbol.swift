/// A function defined in an ELF file, as read from its .symtab or .dynsym.
///
/// `address` is the symbol's value: an absolute virtual address in an ET_EXEC file, an
/// address relative to load base 0 in an ET_DYN one. Turn it into the offset a uprobe wants
/// with `ELFFile.fileOffset(ofAddress:)`. `name` carries no "@VERSION" suffix.
public struct ELFSymbol: Sendable, Hashable {
  /// The name without any "@VERSION" or "@@VERSION" suffix, e.g. "malloc".
  public var name: String
  /// The symbol's value (st_value): the function's first instruction, as a virtual address.
  public var address: UInt64
  /// The function's size in bytes (st_size); 0 when the symbol does not say.
  public var size: UInt64

  public init(name: String, address: UInt64, size: UInt64) {
    self.name = name
    self.address = address
    self.size = size
  }
}
