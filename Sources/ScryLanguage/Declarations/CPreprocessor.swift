/// `#define NAME body` or `#define NAME(a, b) body`.
struct CMacro {
  var name: CToken
  /// Nil for an object-like macro.
  var parameters: [String]?
  var isVariadic: Bool
  var body: [CToken]
}

/// One open `#if`/`#ifdef`/`#ifndef` group.
struct Condition {
  var opening: CToken
  /// Text here is read: the enclosing groups are, and this branch was taken.
  var isActive: Bool
  var enclosingIsActive: Bool
  var branchTaken: Bool
  var sawElse = false
}

/// The preprocessor subset headers need: `#include` (searched, followed recursively), `#define`
/// and `#undef`, conditional groups with `#if` expressions, and macro expansion. `#pragma`, `#line`
/// and `#warning` are ignored.
extension CDeclarationParser {
  static let maximumIncludeDepth = 40
  static let expansionLimit = 4_096

  /// An `#include` of the script, or a `--include` file: read and parsed at once, its skipped
  /// declarations summed up in one warning at `span`.
  mutating func include(_ name: String, isQuoted: Bool, at span: SourceSpan) {
    guard let path = resolve(name, isQuoted: isQuoted, from: files[0].source.name) else {
      diagnostics.append(
        .error(
          span, "'\(name)' file not found",
          hint: "searched \(searchPath.isEmpty ? "no directories" : searchPath.joined(separator: ", ")); add a directory with -I DIR"))
      return
    }
    includeStack = []
    let text = preprocess(path: path)
    let saved = (tokens, index)
    parseDeclarations(text)
    (tokens, index) = saved
    reportSkipped(include: name, at: span)
  }

  func resolve(_ name: String, isQuoted: Bool, from includer: String) -> String? {
    if name.hasPrefix("/") { return readFile(name) != nil ? name : nil }
    var directories = searchPath
    if isQuoted {
      let directory = includer.contains("/") ? String(includer[..<(includer.lastIndex(of: "/") ?? includer.endIndex)]) : "."
      directories.insert(directory, at: 0)
    }
    return directories.map { $0 + "/" + name }.first { readFile($0) != nil }
  }

  /// A header's tokens after preprocessing, its includes spliced in.
  mutating func preprocess(path: String) -> [CToken] {
    guard let text = readFile(path) else { return [] }
    let file = files.count
    files.append(File(source: SourceFile(name: path, text: text)))
    includeStack.append(path)
    defer { includeStack.removeLast() }
    let all = CTokenizer(bytes: files[file].source.bytes, file: file).tokens(in: 0..<files[file].source.bytes.count)
    let depth = conditions.count
    var output: [CToken] = []
    var pending: [CToken] = []
    var i = 0
    while i < all.count {
      if all[i].startsLine && all[i].isPunctuation("#") {
        var end = i + 1
        while end < all.count && !all[end].startsLine { end += 1 }
        output += expand(pending)
        pending = []
        directive(all[i..<end], into: &output)
        i = end
      } else {
        if conditions.allSatisfy(\.isActive) { pending.append(all[i]) }
        i += 1
      }
    }
    output += expand(pending)
    // A header that leaves a group open closes it here, so it cannot swallow the script's text.
    if conditions.count > depth {
      report(Failure(token: conditions[depth].opening, message: "unterminated conditional directive", category: "other"))
      conditions.removeLast(conditions.count - depth)
    }
    return output
  }

  /// One directive line, `line.first` being its `#`; an `#include` appends the header's tokens.
  mutating func directive(_ line: ArraySlice<CToken>, into output: inout [CToken]) {
    let hash = line[line.startIndex]
    guard line.count > 1 else { return }  // the null directive
    let name = line[line.startIndex + 1]
    let rest = line.dropFirst(2)
    let enclosing = conditions.allSatisfy(\.isActive)
    switch name.text {
    case "if", "ifdef", "ifndef":
      var taken = false
      if enclosing {
        if name.text == "if" {
          taken = (condition(rest, at: name) ?? 0) != 0
        } else {
          taken = (rest.first.map { macros[$0.text] != nil } ?? false) == (name.text == "ifdef")
        }
      }
      conditions.append(Condition(opening: name, isActive: enclosing && taken, enclosingIsActive: enclosing, branchTaken: taken))
    case "elif", "else", "endif":
      guard var group = conditions.popLast() else {
        report(Failure(token: name, message: "#\(name.text) without #if", category: "other"))
        return
      }
      if name.text == "endif" { return }
      if group.sawElse {
        report(Failure(token: name, message: "#\(name.text) after #else", category: "other"))
      }
      let take: Bool
      if group.branchTaken || !group.enclosingIsActive {
        take = false
      } else if name.text == "else" {
        take = true
      } else {
        take = (condition(rest, at: name) ?? 0) != 0
      }
      group.sawElse = group.sawElse || name.text == "else"
      group.branchTaken = group.branchTaken || take
      group.isActive = group.enclosingIsActive && take
      conditions.append(group)
    case _ where !enclosing:
      return
    case "define":
      guard let macroName = rest.first, macroName.kind == .identifier else {
        report(Failure(token: rest.first ?? name, message: "macro name must be an identifier", category: "other"))
        return
      }
      define(macroName, rest.dropFirst())
    case "undef":
      if let macroName = rest.first { macros[macroName.text] = nil }
    case "include", "include_next":
      guard let (header, isQuoted) = headerName(rest, source: files[name.file].source) else {
        report(Failure(token: name, message: "expected \"FILENAME\" or <FILENAME>", category: "other"))
        return
      }
      if name.file == 0 {
        include(header, isQuoted: isQuoted, at: hash.span.merged(with: line[line.endIndex - 1].span))
        return
      }
      guard let path = resolve(header, isQuoted: isQuoted, from: files[name.file].source.name) else {
        report(Failure(token: name, message: "'\(header)' file not found", category: "missing headers"))
        return
      }
      // Include guards stop most repeats; a cycle without one, or a runaway chain, stops here.
      if includeStack.contains(path) { return }
      guard includeStack.count < Self.maximumIncludeDepth else {
        report(Failure(token: name, message: "#include nested too deeply", category: "other"))
        return
      }
      output += preprocess(path: path)
    case "error":
      report(Failure(token: name, message: "#error" + (rest.isEmpty ? "" : " " + rest.map(\.text).joined(separator: " ")), category: "#error directives"))
    case "pragma", "line", "warning", "ident", "sccs", "assert", "unassert":
      return
    default:
      if name.kind == .number { return }  // `# 12 "file"` line markers
      report(Failure(token: name, message: "invalid preprocessing directive '#\(name.text)'", category: "other"))
    }
  }

  /// The file a `#include` names: `<a/b.h>` (its tokens glued back) or `"a/b.h"`.
  private func headerName(_ rest: ArraySlice<CToken>, source: SourceFile) -> (String, Bool)? {
    guard let first = rest.first else { return nil }
    if first.kind == .string && first.text.count >= 2 { return (String(first.text.dropFirst().dropLast()), true) }
    guard first.isPunctuation("<"), let close = rest.firstIndex(where: { $0.isPunctuation(">") }), close > rest.startIndex + 1
    else { return nil }
    let start = rest[rest.startIndex + 1].span.start
    let end = rest[close - 1].span.end
    return (source.text(of: SourceSpan(start: start, end: end)), false)
  }

  /// A macro defined before the script, as by `-D NAME`, with an empty body.
  mutating func predefine(_ name: String) {
    let token = CToken(kind: .identifier, text: name, file: 0, span: .at(0), startsLine: true)
    macros[name] = CMacro(name: token, parameters: nil, isVariadic: false, body: [])
  }

  private mutating func define(_ name: CToken, _ rest: ArraySlice<CToken>) {
    var body = rest
    var parameters: [String]?
    var isVariadic = false
    // Function-like only if the parenthesis touches the name: `#define F(x)`, not `#define N (1)`.
    if let open = body.first, open.isPunctuation("("), open.span.start == name.span.end {
      var names: [String] = []
      var i = body.startIndex + 1
      while i < body.endIndex && !body[i].isPunctuation(")") {
        if body[i].kind == .identifier { names.append(body[i].text) }
        if body[i].isPunctuation("...") { isVariadic = true }
        i += 1
      }
      guard i < body.endIndex else {
        report(Failure(token: open, message: "missing ')' in macro parameter list", category: "other"))
        return
      }
      parameters = names
      body = body[(i + 1)...]
    }
    if macros[name.text] == nil { macroOrder.append(name.text) }
    macros[name.text] = CMacro(name: name, parameters: parameters, isVariadic: isVariadic, body: Array(body))
  }

  /// The value of an `#if`/`#elif` expression: `defined X` answered, macros expanded, other names 0.
  private mutating func condition(_ rest: ArraySlice<CToken>, at name: CToken) -> Int64? {
    var replaced: [CToken] = []
    var i = rest.startIndex
    while i < rest.endIndex {
      let t = rest[i]
      if t.isIdentifier("defined") {
        var j = i + 1
        let parenthesized = j < rest.endIndex && rest[j].isPunctuation("(")
        if parenthesized { j += 1 }
        if j < rest.endIndex {
          var one = rest[j]
          one.kind = .number
          one.text = macros[rest[j].text] != nil ? "1" : "0"
          replaced.append(one)
          i = j + (parenthesized ? 2 : 1)
          continue
        }
      }
      replaced.append(t)
      i += 1
    }
    guard !replaced.isEmpty else {
      report(Failure(token: name, message: "#\(name.text) with no expression", category: "other"))
      return nil
    }
    do throws(Failure) {
      return try evaluate(expand(replaced), isPreprocessor: true)
    } catch {
      report(error)
      return nil
    }
  }

  /// Expands macros in `input` (object-like, and function-like ones followed by their arguments);
  /// expanded tokens take the location of the name they came from, so errors point at the use.
  /// One use of a macro expands to at most `expansionLimit` tokens, the rest left unexpanded
  /// (`#define A1 A0 A0`… doubles each time).
  mutating func expand(_ input: [CToken]) -> [CToken] {
    var output: [CToken] = []
    var active: [String] = []
    expand(input[...], active: &active, into: &output)
    return output
  }

  /// `active`: the macros being expanded, which a body cannot expand again.
  private mutating func expand(_ input: ArraySlice<CToken>, active: inout [String], into output: inout [CToken]) {
    var i = input.startIndex
    while i < input.endIndex {
      let t = input[i]
      i += 1
      if active.isEmpty { expansionBudget = Self.expansionLimit }
      guard t.kind == .identifier, !active.contains(t.text), let macro = macros[t.text], expansionBudget > 0 else {
        output.append(t)
        continue
      }
      var body = macro.body
      if let parameters = macro.parameters {
        guard i < input.endIndex, input[i].isPunctuation("("), let (arguments, next) = arguments(input, from: i + 1)
        else {
          output.append(t)
          continue
        }
        i = next
        body = substitute(macro, parameters, arguments, active: &active)
      }
      usedMacros.insert(t.text)
      expansionBudget -= body.count + 1
      let relocated = body.map { b -> CToken in
        var b = b
        b.file = t.file
        b.span = t.span
        b.startsLine = false
        return b
      }
      active.append(t.text)
      expand(relocated[...], active: &active, into: &output)
      active.removeLast()
    }
  }

  /// The arguments of a function-like macro use, split at top-level commas, and the index after `)`.
  private func arguments(_ input: ArraySlice<CToken>, from start: Int) -> ([[CToken]], Int)? {
    var arguments: [[CToken]] = [[]]
    var depth = 0
    var i = start
    while i < input.endIndex {
      let t = input[i]
      if t.isPunctuation("(") { depth += 1 }
      if t.isPunctuation(")") {
        if depth == 0 { return (arguments.count == 1 && arguments[0].isEmpty ? [] : arguments, i + 1) }
        depth -= 1
      }
      if t.isPunctuation(",") && depth == 0 {
        arguments.append([])
      } else {
        arguments[arguments.count - 1].append(t)
      }
      i += 1
    }
    return nil
  }

  private mutating func substitute(_ macro: CMacro, _ parameters: [String], _ arguments: [[CToken]], active: inout [String])
    -> [CToken]
  {
    func argument(_ name: String) -> [CToken]? {
      if name == "__VA_ARGS__" && macro.isVariadic {
        let extra = arguments.dropFirst(parameters.count)
        return Array(extra.joined(separator: [CToken(kind: .punctuation, text: ",", file: 0, span: .at(0), startsLine: false)]))
      }
      guard let k = parameters.firstIndex(of: name) else { return nil }
      return k < arguments.count ? arguments[k] : []
    }
    var result: [CToken] = []
    var i = 0
    let body = macro.body
    while i < body.count {
      let t = body[i]
      if t.isPunctuation("#"), i + 1 < body.count, let raw = argument(body[i + 1].text) {
        var string = t
        string.kind = .string
        string.text = "\"" + raw.map(\.text).joined(separator: " ") + "\""
        result.append(string)
        i += 2
      } else if t.isPunctuation("##"), let left = result.popLast(), i + 1 < body.count {
        // Pasting makes one token of the two texts (`__u##32` is `__u32`).
        let right = argument(body[i + 1].text) ?? [body[i + 1]]
        var pasted = left
        pasted.text += right.first?.text ?? ""
        if pasted.kind != .identifier, let c = pasted.text.utf8.first, c == UInt8(ascii: "_") || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) {
          pasted.kind = .identifier
        }
        result.append(pasted)
        result += right.dropFirst()
        i += 2
      } else if t.kind == .identifier, let raw = argument(t.text) {
        expand(raw[...], active: &active, into: &result)
        i += 1
      } else {
        result.append(t)
        i += 1
      }
    }
    return result
  }

  /// After the last declaration: unterminated groups, then `#define` constants.
  mutating func finish() {
    for group in conditions where group.opening.file == 0 {
      diagnostics.append(.error(group.opening.span, "unterminated conditional directive", hint: "close it with '#endif'"))
    }
    conditions = []
    for name in macroOrder {
      guard let macro = macros[name], !macro.body.isEmpty else { continue }
      let isScript = macro.name.file == 0
      if macro.parameters == nil {
        do throws(Failure) {
          declarations.constants[name] = try evaluate(expand(macro.body), isPreprocessor: false)
          continue
        } catch {}
      }
      // Headers define many things that are not constants; a script means its #defines to be.
      if isScript && !usedMacros.contains(name) {
        diagnostics.append(
          .warning(
            macro.name.span, "'\(name)' is not an integer constant; Scry ignores this #define",
            hint: "Scry reads '#define NAME <constant expression>' and macros used in the script's declarations"))
      }
    }
  }
}
