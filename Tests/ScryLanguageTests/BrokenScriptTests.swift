import Testing
@testable import ScryLanguage

/// Every script under Scripts/broken names, in its first line, where its first error is and what it
/// says (`// expect: LINE:COL text`, lines counted after that header). Each must give that located
/// diagnostic and no crash.
@Suite struct BrokenScriptTests {
  struct Case: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String
    var testDescription: String { name }
  }

  static let cases: [Case] = {
    let directory = scriptsDirectory() + "/broken"
    return listDirectory(directory).filter { $0.hasSuffix(".trace") }.sorted().map {
      Case(name: $0, text: readFile(directory + "/" + $0) ?? "")
    }
  }()

  @Test func thereAreAtLeastFortyBrokenScripts() {
    #expect(Self.cases.count >= 40)
  }

  @Test(arguments: cases)
  func givesTheExpectedLocatedDiagnostic(_ script: Case) throws {
    let header = try #require(script.text.split(separator: "\n", maxSplits: 1).first)
    let expectation = header.dropFirst("// expect: ".count)
    let location = expectation.prefix { $0 != " " }
    let message = String(expectation.dropFirst(location.count + 1))
    let parts = location.split(separator: ":").compactMap { Int($0) }
    try #require(parts.count == 2, "bad header in \(script.name)")
    let checked = compile(script.text, name: script.name)
    let text = rendered(checked)
    let first = try #require(checked.diagnostics.first { $0.severity == .error }, "no error for \(script.name)")
    let (line, column) = checked.program.source.location(of: first.span.start)
    #expect(line == parts[0] + 1 && column == parts[1], "\(script.name): first error at \(line - 1):\(column)\n\(text)")
    #expect(first.message.contains(message), "\(script.name): expected '\(message)'\n\(text)")
    #expect(text.hasPrefix("\(script.name):\(line):\(column): error: "), "\(text)")
    #expect(text.contains("^"), "no caret:\n\(text)")
  }
}
