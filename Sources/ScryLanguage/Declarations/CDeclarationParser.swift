import Glibc

/// Reads the C a script carries for bpftrace's clang (`#include`, `#define`, `struct`, `union`,
/// `enum`, `typedef`) into `CDeclarations`, laid out as the x86-64 System V ABI does.
///
/// It is a reader of the declaration subset tracing needs, not a compiler: in the script, what it
/// cannot read is an error at its span; in a header, it is skipped and counted, with one warning
/// per `#include` line. Function prototypes, variables and inline functions define nothing a probe
/// can use and are skipped silently. `float`/`double`/`long double` are opaque bytes of their size.
public struct CDeclarationParser {
  /// Where clang looks after the `-I` directories, as bpftrace runs it: the kernel's headers
  /// when installed (`KernelHeaders`), then the C library's. bpftrace passes `-nostdinc` with
  /// the kernel's headers; the C library's stay searched here, after them, so a script that
  /// includes one still reads.
  public static func systemIncludeDirectories() -> [String] {
    let directories = KernelHeaders.directories() + ["/usr/local/include", "/usr/include/x86_64-linux-gnu", "/usr/include"]
    var seen = Set<String>()
    return directories.filter { access($0, F_OK) == 0 && seen.insert($0).inserted }
  }

  /// Reads the script's declarations (`spans` as the parser kept them, in script order) after the
  /// `--include` files, searching `includeDirectories` (`-I`) then the system directories.
  /// `readFile` gives a file's text, or nil if it does not exist (tests pass their own).
  ///
  /// With `kernel` describing the kernel's types (BTF), as bpftrace 0.17 does: `BPFTRACE_HAVE_BTF`
  /// is defined (bpftrace's tools guard their kernel `#include`s with it), and a struct, union or
  /// typedef the declarations use but do not define is the kernel's, laid out as BTF says.
  public static func parse(
    _ source: SourceFile, spans: [SourceSpan], includeDirectories: [String] = [], forcedIncludes: [String] = [],
    systemDirectories: [String] = CDeclarationParser.systemIncludeDirectories(),
    kernel: (any ProbeCatalog)? = nil,
    readFile: @escaping (String) -> String? = CDeclarationParser.readFile
  ) -> (CDeclarations, [Diagnostic]) {
    var parser = CDeclarationParser(source: source, searchPath: includeDirectories + systemDirectories, readFile: readFile)
    if let kernel, kernel.hasKernelTypes {
      parser.kernel = kernel
      parser.predefine("BPFTRACE_HAVE_BTF")
    }
    for name in forcedIncludes {
      parser.include(name, isQuoted: false, at: SourceSpan.at(0))
    }
    for span in spans {
      let tokens = CTokenizer(bytes: source.bytes, file: 0).tokens(in: Int(span.start)..<Int(span.end))
      if tokens.first?.isPunctuation("#") == true {
        // A script directive yields no text: its `#include` is read and parsed where it stands.
        var text: [CToken] = []
        parser.directive(tokens[...], into: &text)
      } else if parser.conditions.allSatisfy(\.isActive) {
        parser.parseDeclarations(parser.expand(Self.closed(tokens)))
      }
    }
    parser.finish()
    return (parser.declarations, parser.diagnostics)
  }

  /// A script definition as bpftrace takes it: `struct Foo { int m; }` right before a probe needs
  /// no `;` (the script's parser already ended it), so one is supplied after a closing brace.
  static func closed(_ tokens: [CToken]) -> [CToken] {
    guard let last = tokens.last, last.isPunctuation("}") else { return tokens }
    var semicolon = last
    semicolon.text = ";"
    semicolon.span = SourceSpan(start: last.span.end, end: last.span.end)
    return tokens + [semicolon]
  }

  /// A file's text, or nil if it cannot be read.
  public static func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = fread(&buffer, 1, buffer.count, f)
      if n <= 0 { break }
      bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// A file tokens came from; the script is `files[0]`.
  struct File {
    var source: SourceFile
  }

  /// What went wrong in one declaration; in the script it becomes a diagnostic at `token`.
  struct Failure: Error {
    var token: CToken
    var message: String
    var hint: String?
    /// Why a header declaration was skipped, for the per-`#include` warning.
    var category: String
  }

  var declarations = CDeclarations()
  var diagnostics: [Diagnostic] = []
  var files: [File]
  let searchPath: [String]
  let readFile: (String) -> String?
  /// The kernel's types, for names the declarations use without defining them.
  var kernel: (any ProbeCatalog)?

  // Preprocessor state (CPreprocessor.swift).
  var macros: [String: CMacro] = [:]
  /// Macro names in the order first defined, so constants and warnings come out in a stable order.
  var macroOrder: [String] = []
  var conditions: [Condition] = []
  var includeStack: [String] = []
  /// Script `#define`s that are neither constants nor used in a declaration get a warning.
  var usedMacros: Set<String> = []
  var expansionBudget = 0

  // Types (CTypeParser.swift): layouts by C name, beside the ScryTypes `declarations` keeps.
  var records: [String: CType] = [:]
  var typedefs: [String: CType] = [:]
  var enums: [String: CType] = [:]
  /// Records whose definition is being read, so `struct A { struct A a; }` is incomplete.
  var recordsBeingDefined: Set<String> = []
  /// A kernel struct or union the script defines again (`struct task_struct { … }`): from there
  /// on no kernel type fills in for the declarations, as bpftrace 0.17's clang parse drops BTF
  /// when the script's definitions conflict with it.
  var redefinedKernelRecord: String?

  // The declaration tokens being read and the position in them.
  var tokens: [CToken] = []
  var index = 0
  var nesting = 0
  /// Evaluating an `#if`: names that are not macros are 0 there.
  var isPreprocessorExpression = false
  static let maximumNesting = 200

  /// Skipped header declarations of the top-level `#include` being read: count by category, and the first.
  var skippedCounts: [String: Int] = [:]
  var firstSkipped: String?

  init(source: SourceFile, searchPath: [String], readFile: @escaping (String) -> String?) {
    self.files = [File(source: source)]
    self.searchPath = searchPath
    self.readFile = readFile
  }

  var token: CToken {
    index < tokens.count ? tokens[index] : CToken(kind: .end, text: "", file: tokens.last?.file ?? 0, span: .at(tokens.last?.span.end ?? 0), startsLine: true)
  }

  func peek(_ offset: Int = 1) -> CToken? {
    index + offset < tokens.count ? tokens[index + offset] : nil
  }

  mutating func advance() { index += 1 }

  func failure(_ message: String, at token: CToken? = nil, hint: String? = nil, category: String = "declarations")
    -> Failure
  {
    Failure(token: token ?? self.token, message: message, hint: hint, category: category)
  }

  mutating func expect(_ punctuation: String, _ context: String) throws(Failure) {
    guard token.isPunctuation(punctuation) else {
      let found = token.kind == .end ? "the end of the declaration" : "'\(token.text)'"
      throw failure("expected '\(punctuation)' \(context), found \(found)")
    }
    advance()
  }

  /// `file:line` of a header token, for messages about headers.
  func location(of token: CToken) -> String {
    let file = files[token.file].source
    return "\(file.name):\(file.location(of: token.span.start).line)"
  }

  /// Reports a failed declaration: in the script as an error, in a header as a skip.
  mutating func report(_ failure: Failure) {
    if failure.token.file == 0 {
      diagnostics.append(.error(failure.token.span, failure.message, hint: failure.hint))
    } else {
      skippedCounts[failure.category, default: 0] += 1
      if firstSkipped == nil { firstSkipped = "\(failure.message) at \(location(of: failure.token))" }
    }
  }

  /// Reads top-level declarations, skipping to the next one after each that fails.
  mutating func parseDeclarations(_ input: [CToken]) {
    tokens = input
    index = 0
    while index < tokens.count {
      let start = index
      do throws(Failure) {
        nesting = 0
        try parseExternalDeclaration()
      } catch {
        report(error)
        index = start
        skipDeclaration()
      }
      if index == start { advance() }
    }
    tokens = []
  }

  /// Passes over one declaration: to a `;` outside brackets, or the `}` closing a function body.
  mutating func skipDeclaration() {
    var depth = 0
    var previous: CToken?
    var isFunctionBody = false
    while index < tokens.count {
      let t = token
      advance()
      if t.isPunctuation("(") || t.isPunctuation("[") || t.isPunctuation("{") {
        if depth == 0 && t.isPunctuation("{") { isFunctionBody = previous?.isPunctuation(")") ?? false }
        depth += 1
      } else if t.isPunctuation(")") || t.isPunctuation("]") || t.isPunctuation("}") {
        depth = max(0, depth - 1)
        if depth == 0 && t.isPunctuation("}") && isFunctionBody { return }
      } else if depth == 0 && t.isPunctuation(";") {
        return
      }
      previous = t
    }
  }

  /// Emits the warning for the header declarations a top-level `#include` skipped.
  mutating func reportSkipped(include name: String, at span: SourceSpan) {
    let total = skippedCounts.values.reduce(0, +)
    defer {
      skippedCounts = [:]
      firstSkipped = nil
    }
    guard total > 0 else { return }
    let kinds = skippedCounts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
      .map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    diagnostics.append(
      .warning(
        span, "skipped \(total) declaration\(total == 1 ? "" : "s") Scry cannot read in '\(name)' and its includes (\(kinds))",
        hint: firstSkipped.map { "the first: \($0)" }))
  }
}
