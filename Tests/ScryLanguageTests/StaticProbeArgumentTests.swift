import Testing

@testable import ScryLanguage

/// USDT argument operands as `<sys/sdt.h>` writes them on x86-64 (gcc and clang), read into
/// size, sign and place.
@Suite struct StaticProbeArgumentTests {
  typealias Location = StaticProbeArgument.Location

  @Test(arguments: [
    ("-4@%eax", 4, true, Location.register("ax")),
    ("8@%rdi", 8, false, .register("di")),
    ("-1@%sil", 1, true, .register("si")),
    ("-1@%cl", 1, true, .register("cx")),
    ("2@%r8w", 2, false, .register("r8")),
    ("-4@%r15d", 4, true, .register("r15")),
    ("1@%r10b", 1, false, .register("r10")),
    ("8@-8(%rbp)", 8, false, .memory(base: "bp", offset: -8)),
    ("-4@112(%rsp)", 4, true, .memory(base: "sp", offset: 112)),
    ("8@(%rax)", 8, false, .memory(base: "ax", offset: 0)),
    ("8@0x10(%rbx)", 8, false, .memory(base: "bx", offset: 16)),
    ("4@$5", 4, false, .constant(5)),
    ("-4@$-3", 4, true, .constant(-3)),
    ("%rdx", 8, false, .register("dx")),
    ("8@16(%rax,%rdx,8)", 8, false, .indexed(base: "ax", index: "dx", scale: 8, offset: 16)),
    ("-4@(%rdi,%rsi,4)", 4, true, .indexed(base: "di", index: "si", scale: 4, offset: 0)),
    ("-8@8(%rcx,%rdx)", 8, true, .indexed(base: "cx", index: "dx", scale: 1, offset: 8)),
  ] as [(String, Int, Bool, Location)])
  func readsOperands(text: String, size: Int, signed: Bool, location: Location) {
    let argument = StaticProbeArgument.parse(text)
    #expect(argument.byteCount == size)
    #expect(argument.isSigned == signed)
    #expect(argument.location == location)
    #expect(argument.text == text)
  }

  /// What Scry cannot read at the event is kept with the reason, for the checker to refuse at `argN`.
  @Test(arguments: ["8@table(,%rax,4)", "8@(%rax,%rdx,3)", "-4@%ah", "8@foo(%rip)", "8@%xmm0", "3@%eax", "8@%fs:0x28", "4@$sym"])
  func refusesWhatItCannotRead(text: String) {
    guard case .unsupported(let why) = StaticProbeArgument.parse(text).location else {
      Issue.record("\(text) was accepted")
      return
    }
    #expect(!why.isEmpty)
  }

  @Test func splitsTheNoteString() {
    #expect(StaticProbeArgument.parseList("-1@%cl 2@%r8w -4@%eax 8@%rdx").map(\.byteCount) == [1, 2, 4, 8])
    #expect(StaticProbeArgument.parseList("").isEmpty)
  }
}
