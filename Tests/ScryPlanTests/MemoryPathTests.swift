import Testing
import ScryLanguage
@testable import ScryPlan

/// Struct fields, `*p`, `p[i]` and pointer arithmetic lowered to chains read at the event: the
/// fetch arguments tracefs would use for a uprobe, and the IR that reads them back.
@Suite struct MemoryPathTests {
  static let declarations = """
    struct Inner { short x; long y; };
    struct Outer { int a; char name[8]; struct Inner inner; struct Inner *next; int values[3];
      struct Flags { unsigned int low : 3; unsigned int mid : 9; } flags; struct Outer *self; };

    """

  /// The fetch arguments of a uprobe block, after the one of the register its variable holds.
  func fetchArguments(_ body: String) throws -> [String] {
    let plan = try plan(Self.declarations + "uprobe:/bin/app:target { \(body) }")
    let all = try #require(plan.attachments[0].dynamicProbe).fetchArguments
    // `$o = (struct Outer *)argN` stores the register itself: a0.
    #expect(all.first?.hasPrefix("a0=%") == true, "\(all)")
    return all.dropFirst().map { String($0.drop { $0 != "=" }.dropFirst()) }
  }

  @Test func fieldsThroughAVariableAreChainsFromItsOneValue() throws {
    // Outer: a@0, name@4, inner@16 (x@16, y@24), next@32, values@40, flags@52, self@56.
    #expect(
      try fetchArguments(#"$o = (struct Outer *)arg0; printf("%d %s %d %d\n", $o->a, $o->name, $o->inner.y, $o->next->x);"#)
        == ["+0(%di):s32", "+4(%di):u8[8]", "+24(%di):s64", "+0(+32(%di)):s16"])
    #expect(
      try fetchArguments(#"$o = (struct Outer *)arg0; printf("%d %d\n", $o->values[2], $o->self->self->a);"#)
        == ["+48(%di):s32", "+0(+56(+56(%di))):s32"])
  }

  @Test func pointerArithmeticMovesByWholePointees() throws {
    #expect(
      try fetchArguments(#"$i = (int32 *)arg2; printf("%d %d %d\n", $i[1], *($i + 2), *(3 + $i));"#)
        == ["+4(%dx):s32", "+8(%dx):s32", "+12(%dx):s32"])
    #expect(try fetchArguments(#"$p = (struct Outer **)arg1; printf("%d\n", (*$p)->a);"#) == ["+0(+0(%si)):s32"])
    #expect(try fetchArguments(#"$p = (struct Inner *)arg1; printf("%d\n", ($p + 1)->x);"#) == ["+16(%si):s16"])
  }

  @Test func bitfieldsAreShiftedAndMaskedFromTheirUnit() throws {
    let plan = try plan(Self.declarations + #"uprobe:/bin/app:target { $o = (struct Outer *)arg0; @m = $o->flags.mid; }"#)
    #expect(plan.attachments[0].dynamicProbe?.fetchArguments == ["a0=%di:u64", "a1=+52(%di):u32"])
    let action = IRPrinter(maps: plan.maps).render(plan.actions[0])
    #expect(action.contains("(andu (shru recordu32+24 3) 511)"), "\(action)")
  }

  @Test func wholeStructsAreCopiedAsBytes() throws {
    #expect(try fetchArguments("$o = (struct Outer *)arg0; @i = $o->inner; @s = *$o->next;") == [
      "+16(%di):u8[16]", "+0(+32(%di)):u8[16]",
    ])
  }

  @Test func aPointerWithoutAChainIsRefusedWhereItIsRead() throws {
    let checked = Frontend.compile(
      SourceFile(name: "t", text: Self.declarations + "uprobe:/bin/app:target { $o = (struct Outer *)arg0; $o = (struct Outer *)arg1; @a = $o->a; }"),
      catalog: PlanCatalog())
    try #require(!checked.diagnostics.hasErrors)
    #expect(throws: PlanningError.self) { try Planner.plan(checked) }
  }

  @Test func offsetofReachesNestedFields() throws {
    let plan = try plan(Self.declarations + "BEGIN { @a = offsetof(struct Outer, next); @b = offsetof(struct Outer, inner.y); }")
    #expect(IRPrinter(maps: plan.maps).render(plan.actions[0]) == "@a = 32\n@b = 24\n")
  }

  @Test func constantPointerArithmeticAndSizeofFollowBpftrace() throws {
    let plan = try plan(Self.declarations + "BEGIN { @a = (int32 *)32 + 1; @b = sizeof(struct Outer); @c = sizeof(int16); }")
    let action = IRPrinter(maps: plan.maps).render(plan.actions[0])
    #expect(action == "@a = (addu 32 (mul 1 4))\n@b = 64\n@c = 2\n", "\(action)")
  }

  /// A constant address is a root of its own: a uprobe reads it in the process's memory (tracefs's
  /// `\IMM` is its fetch syntax), a block Scry runs itself in the kernel's, at the event in both.
  @Test func constantAddressesAreReadAtTheEvent() throws {
    #expect(
      try fetchArguments(#"$o = (struct Outer *)arg0; @a = *(uint32 *)0x1000; @b = ((struct Outer *)0)->inner.y; @c = (*(struct Outer *)8).a;"#)
        == ["+0(\\4096):u32", "+24(\\0):s64", "+0(\\8):s32"])
    // In BEGIN, as bpftrace's bpf_probe_read: below the top of user space the task's memory.
    let begin = try plan(
      Self.declarations + "BEGIN { @foo = (struct Outer *)16; @y = @foo->inner.y; $x = *(int16 *)(32 + 2); @k = *(uint64 *)0xffffffff81000000; }")
    #expect(begin.attachments[0].eventReads == [
      EventRead(value: .read(.constant(16), offset: 24, byteCount: 8, isSigned: true), isUserMemory: true),
      EventRead(value: .read(.constant(32), offset: 2, byteCount: 2, isSigned: true), isUserMemory: true),
      EventRead(value: .read(.constant(-0x7f00_0000), offset: 0, byteCount: 8, isSigned: false), isUserMemory: false),
    ])
    #expect(begin.attachments[0].eventReadSites.map(\.helper) == ["probe_read", "probe_read", "probe_read"])
    let tracepoint = try plan(Self.declarations + "tracepoint:sched:sched_switch { @y = ((struct Outer *)16)->a; }")
    #expect(tracepoint.attachments[0].eventReads.map(\.isUserMemory) == [false])
    #expect(tracepoint.attachments[0].eventReadSites.map(\.helper) == ["probe_read_kernel"])
  }
}
