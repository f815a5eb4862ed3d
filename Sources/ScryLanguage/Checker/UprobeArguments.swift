/// `args->NAME` in uprobes, typed from the binary's DWARF, as bpftrace 0.17 does with libdw.
///
/// bpftrace 0.17 takes only the parameters' order and types from DWARF, never their locations:
/// parameter i is read as `argi`, the calling convention's i-th register. So this pass rewrites
/// `args->NAME` into `(TYPE)argi` before the walk, and everything after (reading the register,
/// following a pointer into memory at the event, printing) is what a written cast gets. The
/// binaries' DWARF also describes the structs those casts name (`CTypes.userBinaries`).
extension Checker {
  mutating func resolveUprobeArguments() {
    var binaries: [String] = []
    for probes in result.probes {
      for probe in probes where probe.kind == .uprobe || probe.kind == .uretprobe {
        if case .userFunction(let path, _, _) = probe.target, !binaries.contains(path) { binaries.append(path) }
      }
    }
    result.cTypes.userBinaries = binaries

    var nextID = UInt32(result.program.nodeCount)
    var rewritten = false
    var blocks: [ProbeBlock] = []
    for (index, block) in result.program.probes.enumerated() {
      let probes = result.probes[index]
      let uses = Self.argumentUses(in: block)
      let kinds = block.specs.compactMap { ProbeKind(provider: $0.provider) }
      guard !uses.isEmpty, !kinds.isEmpty, kinds.allSatisfy({ $0 == .uprobe }) else {
        blocks.append(block)
        continue
      }
      // Probes that did not resolve, or parameters that cannot be known, were reported: the
      // uses become nodes the walk ignores, rather than errors of their own.
      let parameters = probes.isEmpty ? nil : commonParameters(of: probes)
      var casts: [String: NodeCopier.Replacement] = [:]
      for use in uses { casts[use.name] = .missing }
      for use in uses {
        guard let parameters else { break }
        guard let i = parameters.firstIndex(where: { $0.name == use.name }) else {
          // bpftrace's words.
          error(use.span, "Can't find function parameter \(use.name)",
                hint: parameters.isEmpty ? "the function has no parameters in its DWARF"
                  : "its parameters: " + parameters.map(\.name).joined(separator: ", "))
          continue
        }
        guard i < 6 else {
          error(use.span, "parameter '\(use.name)' is the function's \(i + 1)th: only the first six are in registers (arg0…arg5)")
          continue
        }
        guard let type = Self.typeName(for: parameters[i].type, span: use.span) else {
          error(use.span, "parameter '\(use.name)' has type '\(parameters[i].cType)', which Scry cannot read from a register",
                hint: "integers, enums and pointers can be read")
          continue
        }
        casts[use.name] = .cast(type, builtin: "arg\(i)")
      }
      var copier = NodeCopier(nextID: nextID, keepsIDs: true)
      copier.replacement = { e in
        guard case .field(let base, let name, _) = e.kind, case .identifier("args") = base.kind else { return nil }
        return casts[name]
      }
      blocks.append(copier.probeBlock(block))
      nextID = copier.nextID
      rewritten = true
    }
    guard rewritten else { return }
    let program = result.program
    result.program = Program(
      source: program.source, probes: blocks, nodeCount: Int(nextID), declarations: program.declarations,
      mapLoopOrders: program.mapLoopOrders, printsMapsAtExit: program.printsMapsAtExit,
      histogramStyle: program.histogramStyle, config: program.config, mapDeclarations: program.mapDeclarations,
      macroExpansions: program.macroExpansions, internalMaps: program.internalMaps)
  }

  /// Every `args->NAME` (or `args.NAME`) of a block, in source order.
  private static func argumentUses(in block: ProbeBlock) -> [(name: String, span: SourceSpan)] {
    var uses: [(String, SourceSpan)] = []
    forEachExpression(in: block.expressionRoots) { e in
      if case .field(let base, let name, _) = e.kind, case .identifier("args") = base.kind { uses.append((name, e.span)) }
    }
    return uses
  }

  /// The parameters every probe of the block agrees on; nil (reported) when a binary has no
  /// DWARF or the probes' functions differ, as bpftrace's "mixed arguments".
  private mutating func commonParameters(of probes: [ResolvedProbe]) -> [UserParameter]? {
    var common: [UserParameter]? = nil
    for probe in probes {
      guard case .userFunction(let path, let symbol, _) = probe.target else { return nil }
      switch catalog.userParameters(binary: path, function: symbol ?? "") {
      case .noDebugInfo(let reason):
        error(probe.span, "No debuginfo found for \(path)", hint: reason ?? "build it with -g, or install its debug file (under /usr/lib/debug)")
        return nil
      case .found(let parameters):
        if let common, common != parameters {
          error(probe.span, "Probe has attach points with mixed arguments", hint: "give each function its own block")
          return nil
        }
        common = parameters
      }
    }
    return common
  }

  /// The cast that reads a parameter of this type from its register, nil for a struct, array
  /// or float passed by value.
  static func typeName(for type: ScryType, span: SourceSpan) -> TypeName? {
    var depth = 0
    var current = type
    while case .pointer(let target) = current {
      depth += 1
      current = target
    }
    switch current {
    case .integer(let integer) where [8, 16, 32, 64].contains(integer.bits):
      return TypeName(span: span, name: (integer.isSigned ? "int" : "uint") + String(integer.bits), pointerDepth: depth)
    case .boolean:
      return TypeName(span: span, name: "uint8", pointerDepth: depth)
    case .structReference(let name) where depth > 0:
      return TypeName(span: span, name: name, pointerDepth: depth)
    case .none where depth > 0:
      return TypeName(span: span, name: "void", pointerDepth: depth)
    default:
      return nil
    }
  }
}
