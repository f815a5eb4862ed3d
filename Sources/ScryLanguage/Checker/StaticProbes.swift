/// A USDT probe (`usdt:PATH:PROVIDER:NAME`): a uprobe at the address its `.note.stapsdt` note
/// gives, with the note's semaphore and arguments.
public struct UserStaticProbe: Sendable, Hashable {
  /// The binary or library that holds the probe (with `-p`, as `/proc/PID/root/…`, as bpftrace names it).
  public var path: String
  public var provider: String
  public var name: String
  /// The file offset of the probe's instruction, where the uprobe goes.
  public var fileOffset: UInt64
  /// The file offset of the probe's semaphore, 0 when it has none: the uprobe's `ref_ctr_offset`.
  public var semaphoreOffset: UInt64
  public var arguments: [StaticProbeArgument]

  public init(
    path: String, provider: String, name: String, fileOffset: UInt64, semaphoreOffset: UInt64,
    arguments: [StaticProbeArgument]
  ) {
    self.path = path
    self.provider = provider
    self.name = name
    self.fileOffset = fileOffset
    self.semaphoreOffset = semaphoreOffset
    self.arguments = arguments
  }
}

/// One argument of a USDT probe as the note's assembler operand gives it (`-4@%eax`, `8@-8(%rbp)`,
/// `4@$5`): its size, its signedness (a leading `-`) and where the value is at the probe.
public struct StaticProbeArgument: Sendable, Hashable {
  public enum Location: Sendable, Hashable {
    /// A register, by the name tracefs and `pt_regs` give the whole register (`%eax` → `ax`).
    case register(String)
    /// Memory at a register plus a displacement (`-8(%rbp)`).
    case memory(base: String, offset: Int64)
    /// Memory at a register plus another one times 1, 2, 4 or 8, plus a displacement
    /// (`8(%rcx,%rdx,8)`, an array element): only Scry's capture program computes the address.
    case indexed(base: String, index: String, scale: Int, offset: Int64)
    /// A constant the compiler knew (`$5`).
    case constant(Int64)
    /// An operand Scry cannot read at the event, with the reason.
    case unsupported(String)
  }

  /// 1, 2, 4 or 8.
  public var byteCount: Int
  public var isSigned: Bool
  public var location: Location
  /// The operand as the note spells it.
  public var text: String

  public init(byteCount: Int, isSigned: Bool, location: Location, text: String) {
    self.byteCount = byteCount
    self.isSigned = isSigned
    self.location = location
    self.text = text
  }

  /// The arguments of a note's argument string (operands separated by spaces).
  public static func parseList(_ text: String) -> [StaticProbeArgument] {
    text.split(separator: " ").map { parse(String($0)) }
  }

  /// One operand in the x86-64 form of `<sys/sdt.h>`: `[-]SIZE@OPERAND`, with OPERAND `%reg`,
  /// `$imm`, `disp(%reg)` or `(%reg)`; an operand without a size is 8 bytes, as SystemTap reads it.
  public static func parse(_ text: String) -> StaticProbeArgument {
    var isSigned = false
    var byteCount = 8
    var operand = Substring(text)
    if let at = text.firstIndex(of: "@") {
      var size = text[..<at]
      if size.hasPrefix("-") {
        isSigned = true
        size = size.dropFirst()
      }
      guard let n = Int(size), [1, 2, 4, 8].contains(n) else {
        return StaticProbeArgument(byteCount: 8, isSigned: false, location: .unsupported("its size '\(size)' is not 1, 2, 4 or 8"), text: text)
      }
      byteCount = n
      operand = text[text.index(after: at)...]
    }
    return StaticProbeArgument(byteCount: byteCount, isSigned: isSigned, location: location(of: operand), text: text)
  }

  private static func location(of operand: Substring) -> Location {
    if operand.hasPrefix("$") {
      guard let value = integer(operand.dropFirst()) else { return .unsupported("'\(operand)' is not a constant Scry can read") }
      return .constant(value)
    }
    if operand.hasPrefix("%") {
      guard let name = register(operand.dropFirst()) else { return .unsupported("register '\(operand)' is not one Scry can read") }
      return .register(name)
    }
    guard operand.hasSuffix(")"), let open = operand.lastIndex(of: "(") else {
      return .unsupported("'\(operand)' is not a register, a constant or a register-relative address")
    }
    let inside = operand[operand.index(after: open)..<operand.index(before: operand.endIndex)]
    let displacement = operand[..<open]
    let registers = inside.split(separator: ",", omittingEmptySubsequences: false)
    guard let first = registers.first, first.hasPrefix("%"), let base = register(first.dropFirst()), base != "ip" else {
      return .unsupported("'\(operand)' is not relative to a general-purpose register")
    }
    guard let offset = displacement.isEmpty ? 0 : integer(displacement) else {
      return .unsupported("'\(operand)' has a symbolic displacement, which Scry does not resolve")
    }
    guard registers.count > 1 else { return .memory(base: base, offset: offset) }
    // `(%base,%index[,scale])`: the scale is 1 when left out.
    let scale = registers.count > 2 ? Int(registers[2]) : 1
    guard registers.count <= 3, registers[1].hasPrefix("%"), let index = register(registers[1].dropFirst()), index != "ip",
      let scale, [1, 2, 4, 8].contains(scale)
    else { return .unsupported("'\(operand)' is not an indexed address Scry can compute") }
    return .indexed(base: base, index: index, scale: scale, offset: offset)
  }

  /// `-8`, `16`, `0x10`, `-0x10`.
  private static func integer(_ text: Substring) -> Int64? {
    let negative = text.hasPrefix("-")
    let digits = negative ? text.dropFirst() : text
    let magnitude = digits.hasPrefix("0x") ? UInt64(digits.dropFirst(2), radix: 16) : UInt64(digits)
    guard let magnitude, magnitude <= UInt64(Int64.max) else { return nil }
    return negative ? -Int64(magnitude) : Int64(magnitude)
  }

  /// The whole register an x86-64 register name is part of, as `pt_regs` names it (`eax`, `ax`,
  /// `al` → `ax`; `r8d`, `r8w`, `r8b` → `r8`); nil for the high bytes (`ah`) and other registers.
  static func register(_ name: Substring) -> String? {
    let legacy: [String: String] = [
      "rax": "ax", "eax": "ax", "ax": "ax", "al": "ax", "rbx": "bx", "ebx": "bx", "bx": "bx", "bl": "bx",
      "rcx": "cx", "ecx": "cx", "cx": "cx", "cl": "cx", "rdx": "dx", "edx": "dx", "dx": "dx", "dl": "dx",
      "rsi": "si", "esi": "si", "si": "si", "sil": "si", "rdi": "di", "edi": "di", "di": "di", "dil": "di",
      "rbp": "bp", "ebp": "bp", "bp": "bp", "bpl": "bp", "rsp": "sp", "esp": "sp", "sp": "sp", "spl": "sp",
      "rip": "ip",
    ]
    if let whole = legacy[String(name)] { return whole }
    guard name.hasPrefix("r") else { return nil }
    var number = name.dropFirst()
    if let last = number.last, "dwb".contains(last) { number = number.dropLast() }
    guard let n = Int(number), (8...15).contains(n) else { return nil }
    return "r\(n)"
  }
}

/// What a catalog found for a USDT spec: the matching probes, or why there are none.
public enum StaticProbeLookup: Sendable, Equatable {
  case found([UserStaticProbe])
  case failed(message: String, hint: String?)
}
