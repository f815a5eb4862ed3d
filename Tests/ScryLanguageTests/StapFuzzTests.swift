import Testing
@testable import ScryLanguage

/// The SystemTap front end under the same random mutations as the bpftrace parser: diagnostics
/// or a checked program, never a trap.
@Suite struct StapFuzzTests {
  static let corpus = [
    "global c; probe syscall.openat { c[execname()]++ } probe end { foreach (k in c- limit 5) printf(\"%s %d\\n\", k, c[k]) }",
    "global lat; probe timer.ms(10) { lat <<< 5 } probe end { print(@hist_log(lat)); printf(\"%d\\n\", @avg(lat)) }",
    "function f(a:long, b:string) { if (a > 1) return a * 2; return 0 } probe begin { println(f(2, \"x\") . \"y\"); exit() }",
    "probe kernel.trace(\"sys_enter\") { println(execname()) }",
    "probe process(\"/bin/ls\").function(\"main\").return { printf(\"%d\\n\", $return) } probe perf.sw.cpu_clock? { }",
    "global v; probe begin { s = sprintf(\"%d-%s\", 1, \"a\"); s .= text_str(substr(s, 0, 2)); v <<< strlen(s); try { error(ctime(0)) } catch (m) { println(m . sprint(strtol(\"7\", 10))) } println(@variance(v)); exit() }",
    "probe tick = timer.ms(5).randomize(1) { n = gettimeofday_ms() } probe tick, syscall.close { printf(\"%s %d\\n\", argstr, n) }",
    "global a[100], s = \"x\"; probe begin { for (i = 0; i < 3; i++) { a[i, \"k\"] = i } foreach ([x, y] in a) { delete a[x, y] } while (1) break; next }",
  ]

  /// The corpus above, the SystemTap examples and the test corpus (Tests/Fixtures/systemtap).
  static func texts() -> [String] {
    let root = scriptsDirectory() + "/../../.."
    return corpus + [root + "/examples", root + "/Tests/Fixtures/systemtap"].flatMap { directory in
      listDirectory(directory).filter { $0.hasSuffix(".stp") }.sorted().compactMap { readFile(directory + "/" + $0) }
    }
  }

  @Test func mutationsNeverTrap() {
    var rng = FuzzTests.SplitMix(state: 0x57A9)
    var withErrors = 0
    let texts = Self.texts()
    #expect(texts.count >= Self.corpus.count + 3 + 30)
    for text in texts {
      for _ in 0..<300 {
        let mutated = String(decoding: FuzzTests.mutate(Array(text.utf8), &rng), as: UTF8.self)
        let checked = compile(mutated, name: "fuzz.stp", language: .systemTap)
        if checked.diagnostics.hasErrors {
          withErrors += 1
          #expect(rendered(checked).contains(": error: "))
        }
      }
    }
    #expect(withErrors > 0)
  }

  @Test func pathologicalInputsGiveDiagnostics() {
    let inputs = [
      "probe begin { x = " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }",
      "probe begin { x = " + String(repeating: "-", count: 5000) + "1 }",
      "probe begin { x = 1" + String(repeating: " + 1", count: 5000) + " }",
      "probe begin " + String(repeating: "{ if (1) ", count: 3000),
      String(repeating: "}", count: 1000), "\"", "/*", "@", "$", "probe", "probe begin { $", "\u{0}\u{1}\u{FF}", "%{ int x; %}",
    ]
    for input in inputs {
      let checked = compile(input, name: "bad.stp", language: .systemTap)
      #expect(checked.diagnostics.hasErrors, "\(input.prefix(40))")
    }
  }

  @Test func recognition() {
    func detect(_ text: String, _ path: String? = nil) -> ScriptLanguage { ScriptLanguage.detect(SourceFile(name: "t", text: text), path: path) }
    #expect(detect("probe begin { }") == .systemTap)
    #expect(detect("global n; probe begin { }") == .systemTap)
    #expect(detect("# comment\nfunction f() { }") == .systemTap)
    #expect(detect("BEGIN { }", "x.stp") == .systemTap)
    #expect(detect("BEGIN { printf(\"x\") }") == .bpftrace)
    #expect(detect("tracepoint:sched:sched_switch < count[comm]++ >") == .bpftrace)
  }
}
