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

  // MARK: The checker at USDT probes

  @Test func specsResolveWithAndWithoutProvider() {
    for spec in ["usdt:/usr/bin/python3:python:gc__start", "U:/usr/bin/python3:gc__start", "usdt:/usr/bin/python3:py*:gc__*"] {
      let checked = compile("\(spec) { @[arg0] = count(); }")
      #expect(!checked.diagnostics.hasErrors, "\(spec): \(rendered(checked))")
      #expect(checked.probes[0].map(\.name) == ["usdt:/usr/bin/python3:python:gc__start"])
    }
    #expect(compile("usdt:/usr/bin/python3:*:* { }").probes.joined().count == 3)
  }

  @Test func argumentPastTheCountIsRefusedAtItsSpan() {
    let checked = compile("usdt:/usr/bin/python3:python:gc__start { printf(\"%d\\n\", arg1); }")
    let text = rendered(checked)
    #expect(text.contains("test.trace:1:57: error: usdt probe usdt:/usr/bin/python3:python:gc__start has 1 argument"), "\(text)")
    #expect(text.contains("its one argument is arg0"), "\(text)")
  }

  @Test func unreadableOperandIsRefusedOnlyWhenUsed() {
    #expect(!compile("usdt:/usr/bin/python3:other:odd { @ = count(); }").diagnostics.hasErrors)
    let text = rendered(compile("usdt:/usr/bin/python3:other:odd { @ = sum(arg0); }"))
    #expect(text.contains("cannot read 'arg0' of usdt probe usdt:/usr/bin/python3:other:odd ('8@%xmm0')"), "\(text)")
  }

  @Test func funcAndStackArgumentsDoNotExistAtUSDTProbes() {
    #expect(rendered(compile("usdt:/usr/bin/python3:gc__start { print(func); }")).contains("'func' is not available in usdt probes"))
    #expect(rendered(compile("usdt:/usr/bin/python3:gc__start { print(sarg0); }")).contains("'sarg0' is not available in usdt probes"))
    #expect(rendered(compile("usdt:/usr/bin/python3:nope:* { }")).contains("no usdt probe matching 'nope:*'"))
    #expect(rendered(compile("usdt:/usr/bin/python3 { }")).contains("malformed probe"))
  }

  /// bpftrace compiles each probe apart; one Scry action reads the records of all the probes of
  /// its block, so a block whose probes' arguments differ in size or sign is split by shape.
  @Test func blockIsSplitWhereArgumentShapesDiffer() throws {
    let checked = compile("usdt:/usr/bin/python3:python:* /arg0 > 0/ { @ = sum(arg0); }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
    #expect(checked.probes.map { $0.map(\.name) } == [
      ["usdt:/usr/bin/python3:python:function__entry"], ["usdt:/usr/bin/python3:python:gc__start"],
    ])
    let blocks = checked.program.probes
    try #require(blocks.count == 2)
    // The copy has nodes of its own, typed apart: arg0 is 8 bytes unsigned at one, 4 signed at the other.
    #expect(blocks[0].predicate?.id != blocks[1].predicate?.id)
    #expect(checked.map(named: "@")?.valueType != nil)
    #expect(!compile("usdt:/usr/bin/python3:python:* { @ = count(); }").diagnostics.hasErrors)
    #expect(rendered(compile("uprobe:/bin/bash:readline, usdt:/usr/bin/python3:gc__start { @ = sum(arg0); }")).contains("the uprobe or kprobe"))
  }
}
