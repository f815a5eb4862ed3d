/// Declarations: specifiers (`unsigned long`, `struct Foo { … }`, `enum E`, typedef names),
/// declarators (`*p`, `a[2][3]`, `(*fn)(int)`) and GNU extras (`__attribute__`, `__extension__`).
extension CDeclarationParser {
  struct Specifiers {
    var base: CType
    var isTypedef = false
    /// `extern`, `static`, `inline`…: a function or variable, which Scry has no use for.
    var hasStorageClass = false
    var attributes = CAttributes()
  }

  /// `*`, `[N]` or `(…)`, applied to the type on their left in order.
  enum Derivation {
    case pointer
    case array(count: Int?, at: CToken)
    case function
  }

  struct Declarator {
    var name: CToken?
    var derivations: [Derivation] = []
  }

  static let ignoredWords: Set<String> = [
    "const", "volatile", "restrict", "__restrict", "__restrict__", "__const", "__const__", "__volatile", "__volatile__",
    "__extension__", "register", "auto", "__user", "__kernel", "__iomem", "__rcu", "__force", "__bitwise", "__percpu",
    "__must_check", "__signed__", "__signed",
  ]
  static let storageWords: Set<String> = [
    "extern", "static", "inline", "__inline", "__inline__", "_Noreturn", "__thread", "_Thread_local", "__always_inline",
  ]
  static let typeKeywords: Set<String> = [
    "void", "char", "short", "int", "long", "signed", "unsigned", "_Bool", "bool", "float", "double", "__int128",
    "__builtin_va_list", "_Complex", "__signed__", "__signed",
  ]

  mutating func parseExternalDeclaration() throws(Failure) {
    if token.isPunctuation(";") { return advance() }
    if ["_Static_assert", "static_assert", "asm", "__asm__", "__asm"].contains(token.text) { return skipDeclaration() }
    let specifiers = try self.specifiers()
    if token.isPunctuation(";") { return advance() }
    if token.kind == .end { throw failure("expected ';' after the declaration") }
    while true {
      let declarator = try self.declarator(isAbstract: false)
      var attributes = specifiers.attributes
      try self.attributes(&attributes)
      var type = try derive(specifiers.base, declarator)
      if type.isFunction && token.isPunctuation("{") {
        index -= 1  // the `)` before the body, so the skip sees a function body
        return skipDeclaration()
      }
      if specifiers.isTypedef, let name = declarator.name {
        if let forced = attributes.aligned { type.align = max(type.align, forced) }
        type.isAnonymousRecord = false
        typedefs[name.text] = type
        declarations.typedefs[name.text] = type.type
      }
      if token.isPunctuation("=") { skipInitializer() }
      if token.isPunctuation(",") {
        advance()
        continue
      }
      try expect(";", "after the declaration")
      return
    }
  }

  private mutating func skipInitializer() {
    var depth = 0
    while token.kind != .end {
      if token.isPunctuation("(") || token.isPunctuation("{") || token.isPunctuation("[") { depth += 1 }
      if token.isPunctuation(")") || token.isPunctuation("}") || token.isPunctuation("]") { depth -= 1 }
      if depth <= 0 && (token.isPunctuation(",") || token.isPunctuation(";")) { return }
      advance()
    }
  }

  mutating func specifiers() throws(Failure) -> Specifiers {
    var base: CType?
    var keywords: [CToken] = []
    var result = Specifiers(base: .void)
    while token.kind == .identifier {
      let word = token.text
      if Self.ignoredWords.contains(word) {
        advance()
      } else if word == "typedef" {
        result.isTypedef = true
        advance()
      } else if Self.storageWords.contains(word) {
        result.hasStorageClass = true
        advance()
      } else if word == "__attribute__" || word == "__attribute" {
        try attributes(&result.attributes)
      } else if word == "_Alignas" || word == "alignas" {
        advance()
        try expect("(", "after '\(word)'")
        result.attributes.align(startsTypeName() ? try typeName().align : Int(try constantExpression()))
        try expect(")", "after the alignment")
      } else if word == "_Atomic" && peek()?.isPunctuation("(") != true {
        advance()
      } else if base == nil && keywords.isEmpty && (word == "struct" || word == "union") {
        base = try recordSpecifier()
      } else if base == nil && keywords.isEmpty && word == "enum" {
        base = try enumSpecifier()
      } else if base == nil && Self.typeKeywords.contains(word) {
        keywords.append(token)
        advance()
      } else if base == nil && keywords.isEmpty, let named = namedType(word) {
        base = named
        advance()
      } else if base == nil && keywords.isEmpty && ["typeof", "__typeof__", "__typeof", "_Atomic"].contains(word) {
        throw failure("'\(word)' is not supported in declarations Scry reads", category: "declarations with unsupported types")
      } else {
        break
      }
    }
    if !keywords.isEmpty { base = try keywordType(keywords) }
    guard let base else {
      if token.kind == .identifier {
        throw failure(
          "unknown type name '\(token.text)'", hint: "declare it before this point, or include the header that does",
          category: "declarations with unknown types")
      }
      throw failure(token.kind == .end ? "expected a type" : "expected a type, found '\(token.text)'")
    }
    result.base = base
    return result
  }

  /// A typedef name: the script's and its headers' first, then the integer names bpftrace knows,
  /// then the kernel's.
  func namedType(_ name: String) -> CType? {
    if let type = typedefs[name] { return type }
    if let integer = IntegerType(name: name) { return CType.integer(integer, name) }
    return kernelTypedef(name)
  }

  /// `unsigned long long`, `signed char`, `long double`… from their keywords in any order.
  private func keywordType(_ keywords: [CToken]) throws(Failure) -> CType {
    var count: [String: Int] = [:]
    for k in keywords { count[k.text == "__signed__" || k.text == "__signed" ? "signed" : k.text, default: 0] += 1 }
    let longs = count["long"] ?? 0
    let isUnsigned = count["unsigned"] != nil
    let isSigned = count["signed"] != nil
    let sizeWords = (count["short"] ?? 0) + longs + (count["char"] ?? 0)
    guard !(isUnsigned && isSigned), longs <= 2, sizeWords <= 1 || (longs == 2 && sizeWords == 2),
      count.values.allSatisfy({ $0 == 1 }) || longs == 2
    else {
      throw failure("cannot combine '\(keywords.map(\.text).joined(separator: " "))'", at: keywords[0])
    }
    let others = Set(count.keys).subtracting(["signed", "unsigned", "short", "long", "int", "char"])
    if let other = others.first {
      guard count.count == 1 || (other == "double" && count.count == 2 && longs == 1) else {
        throw failure("cannot combine '\(keywords.map(\.text).joined(separator: " "))'", at: keywords[0])
      }
      switch other {
      case "void": return .void
      case "_Bool", "bool": return .integer(IntegerType(bits: 8, isSigned: false), "_Bool")
      case "float": return .opaque(size: 4, align: 4, "float")
      case "double": return longs == 1 ? .opaque(size: 16, align: 16, "long double") : .opaque(size: 8, align: 8, "double")
      case "__int128": return .opaque(size: 16, align: 16, "__int128")
      case "__builtin_va_list": return .opaque(size: 24, align: 8, "__builtin_va_list")
      default: throw failure("'\(other)' types are not supported", at: keywords[0])
      }
    }
    if count["char"] != nil {
      var type = CType.integer(IntegerType(bits: 8, isSigned: !isUnsigned), isUnsigned ? "unsigned char" : isSigned ? "signed char" : "char")
      type.isPlainChar = !isUnsigned && !isSigned
      return type
    }
    let bits = count["short"] != nil ? 16 : longs > 0 ? 64 : 32
    let core = count["short"] != nil ? "short" : longs == 1 ? "long" : longs == 2 ? "long long" : "int"
    return .integer(IntegerType(bits: bits, isSigned: !isUnsigned), (isUnsigned ? "unsigned " : "") + core)
  }

  /// Whether the token starts a type name, so `(` … is a cast and not a parenthesis.
  func startsTypeName() -> Bool {
    guard token.kind == .identifier else { return false }
    let word = token.text
    return Self.typeKeywords.contains(word) || ["struct", "union", "enum", "const", "volatile"].contains(word)
      || namedType(word) != nil
  }

  /// A type without a name, as in casts and `sizeof`: `unsigned int`, `struct Foo *`.
  mutating func typeName() throws(Failure) -> CType {
    let specifiers = try self.specifiers()
    return try derive(specifiers.base, try declarator(isAbstract: true))
  }

  /// `*name[4]`, `(*fn)(int)`, `**pp`; with `isAbstract`, the name may be missing.
  mutating func declarator(isAbstract: Bool) throws(Failure) -> Declarator {
    try enter()
    defer { nesting -= 1 }
    var pointers = 0
    var attributes = CAttributes()
    while true {
      if token.isPunctuation("*") {
        pointers += 1
        advance()
      } else if token.kind == .identifier && Self.ignoredWords.contains(token.text) {
        advance()
      } else if token.isIdentifier("__attribute__") || token.isIdentifier("__attribute") {
        try self.attributes(&attributes)
      } else {
        break
      }
    }
    var result = Declarator()
    var inner: Declarator?
    if token.kind == .identifier && !isAbstract {
      result.name = token
      advance()
    } else if token.isPunctuation("("), let next = peek(), next.isPunctuation("*") || next.isPunctuation("(") || next.isPunctuation("^")
      || (!isAbstract && next.kind == .identifier && namedType(next.text) == nil && !Self.typeKeywords.contains(next.text))
    {
      advance()
      inner = try declarator(isAbstract: isAbstract)
      try expect(")", "to close the declarator")
    }
    var suffixes: [Derivation] = []
    while true {
      if token.isPunctuation("[") {
        let open = token
        advance()
        var count: Int?
        if !token.isPunctuation("]") {
          let value = try constantExpression()
          guard value >= 0, value < 1 << 30 else { throw failure("invalid array size \(value)", at: open) }
          count = Int(value)
        }
        try expect("]", "to close the array size")
        suffixes.append(.array(count: count, at: open))
      } else if token.isPunctuation("(") {
        try skipParenthesized()
        suffixes.append(.function)
      } else {
        break
      }
    }
    result.derivations = Array(repeating: .pointer, count: pointers) + suffixes.reversed() + (inner?.derivations ?? [])
    if let inner { result.name = inner.name }
    if !isAbstract && result.name == nil {
      throw failure(token.kind == .end ? "expected a name in the declaration" : "expected a name, found '\(token.text)'")
    }
    return result
  }

  /// A balanced `( … )`, such as a parameter list.
  mutating func skipParenthesized() throws(Failure) {
    let open = token
    var depth = 0
    repeat {
      if token.kind == .end { throw failure("expected ')'", at: open, hint: "the '(' here is not closed") }
      if token.isPunctuation("(") { depth += 1 }
      if token.isPunctuation(")") { depth -= 1 }
      advance()
    } while depth > 0
  }

  /// The type a declarator makes of its base: `int *a[2]` is an array of 2 pointers to int.
  func derive(_ base: CType, _ declarator: Declarator) throws(Failure) -> CType {
    var type = base
    for derivation in declarator.derivations {
      switch derivation {
      case .pointer:
        let pointee: ScryType
        if type.isFunction || type.spelling == "void" {
          pointee = .none
        } else if case .record(let record) = type.type, !record.name.isEmpty {
          pointee = .structReference(record.cName)
        } else {
          pointee = type.type
        }
        let spelling = type.isFunction ? String(type.spelling.dropLast(3)) + " (*)()" : type.spelling + " *"
        type = CType(type: .pointer(pointee), size: 8, align: 8, spelling: spelling)
      case .array(let count, let at):
        guard !type.isFunction, type.isComplete else {
          throw failure("array has incomplete element type '\(type.spelling)'", at: at)
        }
        let n = count ?? 0
        guard type.size == 0 || n <= (1 << 30) / type.size else { throw failure("array is too large", at: at) }
        var spelling = type.spelling
        spelling.insert(contentsOf: "[\(n)]", at: spelling.firstIndex(of: "[") ?? spelling.endIndex)
        type = CType(
          type: type.isPlainChar ? .string(capacity: n) : .array(type.type, count: n), size: n * type.size, align: type.align,
          spelling: spelling)
      case .function:
        type = CType(type: .none, size: 1, align: 1, spelling: type.spelling + " ()", isComplete: false, isFunction: true)
      }
    }
    return type
  }

  /// `__attribute__((packed, aligned(8)))`, `__asm__("name")`: packed and aligned are kept, others passed over.
  mutating func attributes(_ attributes: inout CAttributes) throws(Failure) {
    while token.kind == .identifier {
      if token.text == "__asm__" || token.text == "__asm" || token.text == "asm" {
        advance()
        try skipParenthesized()
        continue
      }
      guard token.text == "__attribute__" || token.text == "__attribute" else { return }
      advance()
      try expect("(", "after '__attribute__'")
      try expect("(", "after '__attribute__('")
      while !token.isPunctuation(")") {
        guard token.kind == .identifier else {
          if token.isPunctuation(",") {
            advance()
            continue
          }
          throw failure(token.kind == .end ? "expected ')' to end the attribute" : "unexpected '\(token.text)' in an attribute")
        }
        let name = token.text.hasPrefix("__") && token.text.hasSuffix("__") && token.text.count > 4
          ? String(token.text.dropFirst(2).dropLast(2)) : token.text
        advance()
        if name == "packed" { attributes.isPacked = true }
        if name == "aligned" && token.isPunctuation("(") {
          let at = token
          advance()
          let value = try constantExpression()
          guard value > 0, value <= 1 << 28, value & (value - 1) == 0 else {
            throw failure("requested alignment is not a power of 2", at: at)
          }
          attributes.align(Int(value))
          try expect(")", "after the alignment")
        } else if name == "aligned" {
          attributes.align(16)  // the largest alignment x86-64 ever needs, as GCC takes it
        } else if token.isPunctuation("(") {
          try skipParenthesized()
        }
      }
      try expect(")", "to end the attribute")
      try expect(")", "to end the attribute")
    }
  }
}
