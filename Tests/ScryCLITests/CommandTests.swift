import Testing

/// The command line: exit statuses, diagnostics on stderr, plan output, files and options.
@Suite struct CommandTests {
  @Test func bareGlobalInBegin() {
    let run = scry("-e", "BEGIN { count[comm]++; exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.hasSuffix("count[scry]: 1\n"), "\(run.stdout)")
  }

  @Test func scriptErrorExitsOneWithALocatedDiagnostic() {
    let run = scry("-e", "BEGIN { prinf(\"x\"); }")
    #expect(run.status == 1)
    #expect(run.stderr.contains("-e:1:9: error: unknown function 'prinf'"), "\(run.stderr)")
    #expect(run.stderr.contains("^~~~~"))
    #expect(run.stdout.isEmpty)
  }

  /// `print(@m[k])` prints the element's value, not the whole map (bpftrace 0.17 refuses the call).
  @Test func printOfOneElementPrintsItsValue() {
    let run = scry("-e", "BEGIN { @x[1] = 2; @x[2] = 3; print(@x[1]); clear(@x); exit(); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout == "Attaching 1 probe...\n2\n\n\n\n", "\(run.stdout)")
  }

  @Test func badUsageExitsTwo() {
    #expect(scry("--no-such-option").status == 2)
    #expect(scry("-f", "xml", "-e", "BEGIN { exit(); }").status == 2)
  }

  @Test func missingFileIsAnError() {
    let run = scry("/nonexistent/file.trace")
    #expect(run.status == 1)
    #expect(run.stderr.contains("ERROR: failed to open file '/nonexistent/file.trace': No such file or directory"), "\(run.stderr)")
  }

  @Test func versionAndHelp() {
    #expect(scry("--version").stdout.contains("0."))
    let help = scry("--help")
    #expect(help.status == 0)
    #expect(help.stdout.contains("--plan"))
  }

  @Test func planShowsTheTracepointAndTheMap() {
    guard kernelAvailable("tracepoint plan") else { return }
    let run = scry("--plan", "-e", "tracepoint:sched:sched_switch < count[comm]++ >")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("[0] tracepoint:sched:sched_switch"), "\(run.stdout)")
    #expect(run.stdout.contains("count: key (string[16]) -> int64"), "\(run.stdout)")
  }

  @Test func dryRunChecksOnly() {
    let run = scry("--dry-run", "-e", "BEGIN { printf(\"never\\n\"); }")
    #expect(run.status == 0)
    #expect(run.stdout.isEmpty)
  }

  @Test func positionalParameters() {
    let run = scry("-e", "BEGIN { printf(\"%s %d %d\\n\", str($1), $2, $#); exit(); }", "word", "42")
    #expect(run.stdout.contains("word 42 2\n"), "\(run.stdout)\(run.stderr)")
  }

  @Test func exitCodeFromExit() {
    #expect(scry("-e", "BEGIN { exit(3); }").status == 3)
  }

  @Test func outputFile() throws {
    let path = "/tmp/scry-test-output-\(getpid()).txt"
    defer { unlink(path) }
    let run = scry("-o", path, "-e", "BEGIN { printf(\"to file\\n\"); @x = 1; exit(); }")
    #expect(run.status == 0)
    #expect(run.stdout.isEmpty)
    let contents = readWhole(path)
    #expect(contents.contains("to file\n"))
    #expect(contents.hasSuffix("@x: 1\n"))
  }

  @Test func systemNeedsUnsafe() {
    #expect(scry("-e", "BEGIN { system(\"true\"); exit(); }").status == 1)
    let run = scry("--unsafe", "-e", "BEGIN { system(\"echo from-system\"); exit(); }")
    #expect(run.stdout.contains("from-system"), "\(run.stdout)\(run.stderr)")
  }

  /// Every example checks and plans on this machine (kernel types from its BTF), without warnings.
  @Test func everyExamplePlans() throws {
    let root = scriptsRoot()
    let names = Run.program("/bin/ls", [root + "/examples"]).stdout.split(separator: "\n").filter { $0.hasSuffix(".trace") }
    #expect(names.count > 10)
    for name in names {
      // funclatency takes the binary and function to probe.
      let arguments = name == "funclatency.trace" ? ["libc", "malloc"] : []
      let run = Run.program(scryBinary(), ["--dry-run", root + "/examples/" + name] + arguments)
      #expect(run.status == 0 && run.stderr.isEmpty, "\(name): \(run.stderr)")
    }
  }

  @Test func examplesRun() {
    let root = scriptsRoot()
    for name in ["hello", "maps", "timer"] {
      let run = scry(root + "/examples/\(name).trace")
      #expect(run.status == 0, "\(name): \(run.stderr)")
      #expect(!run.stdout.isEmpty)
    }
  }
}

import Glibc

func scriptsRoot() -> String {
  let file = #filePath
  return String(file[..<file.range(of: "/Tests/")!.lowerBound])
}

func readWhole(_ path: String) -> String {
  guard let f = fopen(path, "r") else { return "" }
  defer { fclose(f) }
  var bytes: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 4096)
  while true {
    let n = fread(&buffer, 1, buffer.count, f)
    if n <= 0 { break }
    bytes += buffer[0..<n]
  }
  return String(decoding: bytes, as: UTF8.self)
}
