/// bpftrace compiles each probe of a USDT wildcard block on its own, so `arg0` may be a 2-byte
/// value at one probe and an 8-byte one at the next (`usdt:./prog:*:reg_*`). Scry reads all the
/// records of a block alike, so such a block is split into one copy per argument shape, each
/// with fresh node ids, checked and lowered on its own: the same output, one block per shape.
extension Checker {
  mutating func splitStaticProbeShapes() {
    var copier = NodeCopier(nextID: UInt32(result.program.nodeCount))
    var blocks: [ProbeBlock] = []
    var probes: [[ResolvedProbe]] = []
    for (block, resolved) in zip(result.program.probes, result.probes) {
      let groups = Self.staticShapeGroups(resolved)
      for (index, group) in groups.enumerated() {
        blocks.append(index == 0 ? block : copier.probeBlock(block))
        probes.append(group)
      }
    }
    guard blocks.count != result.program.probes.count else { return }
    let p = result.program
    result.program = Program(
      source: p.source, probes: blocks, nodeCount: Int(copier.nextID), declarations: p.declarations,
      mapLoopOrders: p.mapLoopOrders, printsMapsAtExit: p.printsMapsAtExit, histogramStyle: p.histogramStyle,
      config: p.config, mapDeclarations: p.mapDeclarations, macroExpansions: p.macroExpansions,
      internalMaps: p.internalMaps)
    result.probes = probes
  }

  /// The block's probes grouped by the size and sign of their USDT arguments, in order of first
  /// appearance; probes of other kinds stay in the first group (the checker compares them there).
  static func staticShapeGroups(_ probes: [ResolvedProbe]) -> [[ResolvedProbe]] {
    var keys: [String] = []
    var groups: [[ResolvedProbe]] = []
    for probe in probes {
      guard case .userStaticProbe(let usdt) = probe.target else {
        // "*": no shape yet (shapes are sizes, so no USDT probe's key is "*").
        if groups.isEmpty { groups.append([]); keys.append("*") }
        groups[0].append(probe)
        continue
      }
      let key = usdt.arguments.map { "\($0.isSigned ? "-" : "")\($0.byteCount)" }.joined(separator: " ")
      if let index = keys.firstIndex(of: key) {
        groups[index].append(probe)
      } else if keys.first == "*" {
        // The first group so far holds only probes of other kinds: this shape joins them.
        keys[0] = key
        groups[0].append(probe)
      } else {
        keys.append(key)
        groups.append([probe])
      }
    }
    return groups.isEmpty ? [probes] : groups
  }
}
