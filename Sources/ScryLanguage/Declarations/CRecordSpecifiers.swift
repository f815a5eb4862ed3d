/// `struct`/`union` and `enum` specifiers: definitions (laid out and registered by tag, wherever
/// they appear, as C makes nested definitions visible at file scope) and references.
extension CDeclarationParser {
  /// After `struct`, `union` or `enum`: attributes, the tag if there is one, attributes again.
  private mutating func optionalTag(_ attributes: inout CAttributes) throws(Failure) -> CToken? {
    try self.attributes(&attributes)
    guard token.kind == .identifier else { return nil }
    let tag = token
    advance()
    try self.attributes(&attributes)
    return tag
  }

  mutating func recordSpecifier() throws(Failure) -> CType {
    let keyword = token
    advance()
    let isUnion = keyword.text == "union"
    var attributes = CAttributes()
    let tag = try optionalTag(&attributes)
    let cName = keyword.text + " " + (tag?.text ?? "")
    guard token.isPunctuation("{") else {
      guard tag != nil else { throw failure("expected a name or '{' after '\(keyword.text)'") }
      if let known = records[cName], !recordsBeingDefined.contains(cName) { return known }
      if !recordsBeingDefined.contains(cName), let kernel = kernelRecord(cName) { return kernel }
      return CType(type: .structReference(cName), size: 0, align: 1, spelling: cName, isComplete: false)
    }
    let open = token
    if isUnclosed(from: index) {
      throw failure(
        "expected '}' to end the definition of '\(tag == nil ? keyword.text : cName)'", at: open,
        hint: "the '{' here is not closed; end the definition with '};'")
    }
    advance()
    if let tag {
      guard records[cName] == nil && !recordsBeingDefined.contains(cName) else {
        throw failure("redefinition of '\(cName)'", at: tag)
      }
      recordsBeingDefined.insert(cName)
      // Only the script's own definitions: a kernel header's agree with BTF.
      if keyword.file == 0, redefinedKernelRecord == nil, kernel?.kernelRecord(named: cName) != nil {
        redefinedKernelRecord = cName
      }
    }
    defer { recordsBeingDefined.remove(cName) }
    try enter()
    defer { nesting -= 1 }
    var members: [CMember] = []
    while !token.isPunctuation("}") {
      guard token.kind != .end else {
        throw failure(
          "expected '}' to end the definition of '\(tag == nil ? keyword.text : cName)'", at: open,
          hint: "the '{' here is not closed; end the definition with '};'")
      }
      try member(&members)
    }
    advance()
    try self.attributes(&attributes)
    let type = try layout(name: tag?.text ?? "", isUnion: isUnion, members: members, attributes: attributes, at: open)
    if tag != nil, case .record(let record) = type.type {
      records[cName] = type
      declarations.records[cName] = record
    }
    return type
  }

  /// Whether the body opening at `start` is never closed. The script parser's span of a definition
  /// that lacks its `}` runs on into the probes after it, so a `{` inside that opens no nested
  /// struct, union or enum (`BEGIN {`) means the definition was not closed.
  private func isUnclosed(from start: Int) -> Bool {
    let keywords = ["struct", "union", "enum"]
    var depth = 0
    for i in start..<tokens.count {
      if tokens[i].isPunctuation("{") && i > start {
        let previous = tokens[i - 1]
        let opensRecord =
          keywords.contains(previous.text) || previous.isPunctuation(")")
          || (i >= 2 && previous.kind == .identifier && keywords.contains(tokens[i - 2].text))
        if !opensRecord { return true }
        depth += 1
      } else if tokens[i].isPunctuation("{") {
        depth += 1
      } else if tokens[i].isPunctuation("}") {
        depth -= 1
        if depth == 0 { return false }
      }
    }
    return true
  }

  /// One member declaration: `int a, *b;`, `unsigned x : 3;`, `union { … };`.
  private mutating func member(_ members: inout [CMember]) throws(Failure) {
    if token.isPunctuation(";") { return advance() }
    if token.text == "_Static_assert" || token.text == "static_assert" { return skipDeclaration() }
    let start = token
    let specifiers = try self.specifiers()
    guard !specifiers.isTypedef && !specifiers.hasStorageClass else {
      throw failure("a member cannot be 'typedef', 'static' or 'extern'", at: start)
    }
    if token.isPunctuation(";") {
      advance()
      if specifiers.base.isAnonymousRecord {
        members.append(CMember(name: nil, type: specifiers.base, attributes: specifiers.attributes, at: start))
      }
      return
    }
    while true {
      var member = CMember(name: nil, type: specifiers.base, attributes: specifiers.attributes, at: token)
      if !token.isPunctuation(":") {
        let declarator = try self.declarator(isAbstract: false)
        member.name = declarator.name
        member.at = declarator.name ?? member.at
        member.type = try derive(specifiers.base, declarator)
        member.type.isAnonymousRecord = false
      }
      try attributes(&member.attributes)
      let name = member.name.map { "'\($0.text)'" } ?? "an unnamed bit-field"
      if token.isPunctuation(":") {
        advance()
        let width = try constantExpression()
        guard case .integer(let integer) = member.type.type else {
          throw failure("bit-field \(name) has non-integral type '\(member.type.spelling)'", at: member.at)
        }
        guard width >= 0, width <= integer.bits else {
          throw failure(
            "width of bit-field \(name) (\(width) bits) \(width < 0 ? "is negative" : "exceeds the width of its type (\(integer.bits) bits)")",
            at: member.at)
        }
        guard width > 0 || member.name == nil else { throw failure("named bit-field \(name) has zero width", at: member.at) }
        member.bitWidth = Int(width)
        try attributes(&member.attributes)
      } else if member.type.isFunction {
        throw failure("field \(name) declared as a function", at: member.at, hint: "a function pointer is written 'int (*\(member.name?.text ?? "f"))(…)'")
      } else if !member.type.isComplete {
        var hint = member.type.spelling == "void" ? nil : "define '\(member.type.spelling)' before this point, or point to it with '*'"
        if let redefined = redefinedKernelRecord, hint != nil {
          hint! += "; the kernel's types are not used here, since the script defines '\(redefined)' again (as in bpftrace 0.17)"
        }
        throw failure("field \(name) has incomplete type '\(member.type.spelling)'", at: member.at, hint: hint)
      }
      members.append(member)
      if token.isPunctuation(",") {
        advance()
        continue
      }
      // The last member may end at the '}' without its ';', as clang takes it (with a warning).
      if token.isPunctuation("}") { return }
      try expect(";", "after the member \(name)")
      return
    }
  }

  mutating func enumSpecifier() throws(Failure) -> CType {
    advance()
    var attributes = CAttributes()
    let tag = try optionalTag(&attributes)
    let cName = "enum " + (tag?.text ?? "<anonymous>")
    var fixed: CType?
    if token.isPunctuation(":") {
      advance()
      fixed = try typeName()
    }
    guard token.isPunctuation("{") else {
      guard tag != nil else { throw failure("expected a name or '{' after 'enum'") }
      return enums[cName] ?? fixed ?? enumType([], spelling: cName, isPacked: false)
    }
    let open = token
    advance()
    var values: [Int64] = []
    var names: [Int64: String] = [:]
    var next: Int64 = 0
    while !token.isPunctuation("}") {
      guard token.kind == .identifier else {
        throw failure(
          token.kind == .end ? "expected '}' to end the definition of '\(cName)'" : "expected an enumerator name, found '\(token.text)'",
          at: token.kind == .end ? open : token)
      }
      let name = token
      advance()
      try self.attributes(&attributes)
      if token.isPunctuation("=") {
        advance()
        next = try constantExpression()
      }
      // Later enumerators may use earlier ones: `B = A + 1`.
      declarations.constants[name.text] = next
      values.append(next)
      if names[next] == nil { names[next] = name.text }
      next &+= 1
      guard token.isPunctuation(",") else { break }
      advance()
    }
    try expect("}", "to end the definition of '\(cName)'")
    try self.attributes(&attributes)
    var type = fixed ?? enumType(values, spelling: cName, isPacked: attributes.isPacked)
    type.spelling = cName
    // The script's own enumerators and casts to its enums print by name; a header's enums, and
    // members of enum type, stay numbers as bpftrace 0.17 prints them.
    if open.file == 0 {
      let enumeration = EnumerationType(name: cName, names: names)
      for name in names.values { declarations.enumerators[name] = enumeration }
      if tag != nil { declarations.enumerations[cName] = enumeration }
    }
    if tag != nil { enums[cName] = type }
    return type
  }
}
