import Testing
@testable import ScryLanguage

@Suite struct FrontendTests {
  static let valid: [String] = [
    "BEGIN { printf(\"hello\\n\"); exit(); }",
    "BEGIN { count[comm]++; exit(); }",
    "tracepoint:sched:sched_switch < count[comm]++ >",
    "tracepoint:sched:sched_switch < if (args.prev_pid > 1) { @x = 1 } >",
    "t:sched:sched_switch /args->prev_pid == 0/ { @[args.next_comm] = count(); }",
    "BEGIN { @x[1, \"a\"] = 3; @s = stats(3); @h = hist(5); @l = lhist(5, 0, 100, 10); }",
    "i:s:1 { @c++; if (@c >= 3) { exit(); } }",
    "interval:ms:100 { exit(); }",
    "BEGIN { $x = 1; $x += 2; $y = $x * 3 + (1 << 4) % 5; printf(\"%d %d\\n\", $x, $y); }",
    "BEGIN { let $i = 0; while ($i < 10) { $i++; if ($i == 5) { break; } } unroll(3) { $i--; } }",
    "BEGIN { @m[1] = 1; @m[2] = 2; for ($kv : @m) { printf(\"%d %d\\n\", $kv.0, $kv.1); } }",
    "begin { for ($i : 0..5) { printf(\"%d\\n\", $i); } exit(0); }",
    "BEGIN { @t = (1, \"two\"); printf(\"%s\\n\", @t.1); $u = (uint32)-1; print($u); }",
    "#!/usr/bin/env scry\n// comment\n/* block */ BEGIN { printf(\"%s %d\\n\", $1, $#); }",
    "BEGIN { @a = 0x10 + 0b101 + 0o17 + 017 + 1_000; delete(@a); @b[1] = 1; delete(@b, 1); clear(@b); zero(@b); }",
    "BEGIN { @x = 1; print(@x); print(@x, 10, 2); printf(\"%5d|%-5s|%x\\n\", len(@x), \"ab\", 255); }",
    "BEGIN { if (strncmp(comm, \"scry\", 4) == 0 && strcontains(comm, \"cr\")) { printf(\"yes\\n\"); } else if (1) { } else { } }",
    "tracepoint:syscalls:sys_enter_* { @[probe] = count(); }",
    "END { time(\"%H:%M:%S\\n\"); printf(\"%s\\n\", strftime(\"%H\", nsecs)); }",
    "BEGIN { total += 5; total = total + 1; printf(\"%d\\n\", total); }",
    "#include <linux/sched.h>\nBEGIN { $a = true; $b = !$a; }",
    "BEGIN { @x = sizeof(uint32); @y = 1 ? 2 : 3; @z = -5 / 2; @w = ~0 ^ 3 | 4 & 5; }",
    "BEGIN, END { printf(\"%s\\n\", probe); }",
    "kprobe:do_nanosleep { @[kstack] = count(); } kretprobe:do_nanosleep { @r = hist(retval); }",
    "uprobe:/bin/bash:readline { printf(\"%d\\n\", arg0); } uretprobe:/bin/bash:readline { @ = count(); }",
    "software:page-faults:100 { @[comm] = count(); } hardware:cache-misses { @hw = count(); } profile:hz:99 { @cpus[cpu] = count(); }",
  ]

  @Test(arguments: valid)
  func validScriptsCheck(_ text: String) {
    let checked = compile(text, positionals: ["hello"])
    #expect(!checked.diagnostics.hasErrors, "\(text)\n\(rendered(checked))")
  }

  @Test func bareGlobalIsAStringKeyedMap() {
    let checked = compile("tracepoint:sched:sched_switch < count[comm]++ >")
    #expect(checked.maps.count == 1)
    #expect(checked.maps.first?.name == "count")
    #expect(checked.maps.first?.keyTypes == [.comm])
    #expect(checked.probes[0].map(\.name) == ["tracepoint:sched:sched_switch"])
  }

  @Test func mapTypesComeFromEveryUse() {
    let checked = compile("END { print(@s); } BEGIN { @s[\"a\"] = \"xy\"; @s[\"bbbb\"] = \"longer value\"; }")
    #expect(!checked.diagnostics.hasErrors, "\(rendered(checked))")
    #expect(checked.map(named: "@s")?.keyTypes == [.string(capacity: 5)])
    #expect(checked.map(named: "@s")?.valueType == .string(capacity: 13))
  }

  @Test func mismatchShowsBothSpans() {
    let checked = compile("BEGIN { @x = 1; @x = \"a\"; }")
    let text = rendered(checked)
    #expect(text.contains("test.trace:1:22: error: type mismatch for '@x'"), "\(text)")
    #expect(text.contains("test.trace:1:14: note: '@x' got its type here"), "\(text)")
  }

  @Test func reportsEveryErrorInOneRun() {
    let checked = compile("BEGIN { prinf(\"x\"); $y = $z; break; @a = count(); @a = 1; }")
    #expect(checked.diagnostics.filter { $0.severity == .error }.count >= 4, "\(rendered(checked))")
    #expect(rendered(checked).contains("'printf'"))
  }

  @Test func caretUnderTheSpan() {
    let checked = compile("BEGIN {\n  printf(\"%d\\n\", comm);\n}")
    #expect(rendered(checked) == """
      test.trace:2:18: error: '%d' needs an integer, but this argument is string[16]
            printf("%d\\n", comm);
                           ^~~~
          hint: print strings with '%s'

      """)
  }
}
