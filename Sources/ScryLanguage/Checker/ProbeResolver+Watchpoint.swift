/// `watchpoint:ADDR:LEN:MODE`, `watchpoint:FUNC+argN:LEN:MODE` and `asyncwatchpoint:FUNC+argN:LEN:MODE`,
/// read and checked as bpftrace 0.17 reads them (its attach-point parser and semantic analyser),
/// with its words, so scripts and wrappers that look for them find them.
extension ProbeResolver {
  /// x86-64's debug registers cannot watch reads alone, nor execution with data (Intel SDM 3, 17.2.4).
  static let invalidWatchpointModes: Set<String> = ["r", "rx", "wx", "rwx"]
  /// The last argument register bpftrace's `argN` reaches on x86-64 (arg0…arg5).
  static let maxWatchpointArgument = 5

  mutating func resolveWatchpoint(_ spec: ProbeSpec, kind: ProbeKind) -> [ResolvedProbe] {
    guard spec.parts.count == 3 else {
      diagnostics.append(.error(spec.span, "\(kind.rawValue) probe type requires 3 arguments",
                                hint: "for example '\(kind.rawValue):increment+arg0:4:w' or 'watchpoint:0x10000000:8:w'"))
      return []
    }
    var function: String?
    var number: UInt64
    if let plus = spec.parts[0].firstIndex(of: "+") {
      let name = String(spec.parts[0][..<plus])
      let argument = String(spec.parts[0][spec.parts[0].index(after: plus)...])
      guard !name.isEmpty, !argument.isEmpty, !argument.contains("+") else {
        diagnostics.append(.error(spec.span, "Invalid function/address argument", hint: "write FUNCTION+argN, as 'increment+arg0'"))
        return []
      }
      guard argument.count > 3, argument.hasPrefix("arg"), let index = parseIntegerLiteral(String(argument.dropFirst(3))) else {
        diagnostics.append(.error(spec.span, "Invalid function argument", hint: "write FUNCTION+argN, as 'increment+arg0'"))
        return []
      }
      function = name
      number = index
    } else {
      guard let address = parseIntegerLiteral(spec.parts[0]) else {
        diagnostics.append(.error(spec.partSpans[0], "Found trailing non-numeric characters", hint: "an address, as 0x10000000"))
        return []
      }
      number = address
    }
    guard let length = parseIntegerLiteral(spec.parts[1]) else {
      diagnostics.append(.error(spec.partSpans[1], "Found trailing non-numeric characters", hint: "a length of 1, 2, 4 or 8"))
      return []
    }
    var failures: [String] = []
    if function != nil {
      if tracedBinary == nil { failures.append("-p PID or -c CMD required for watchpoint") }
      if number > UInt64(Self.maxWatchpointArgument) { failures.append("x86_64 doesn't support arg\(number)") }
    } else if kind == .asyncwatchpoint {
      failures.append("\(kind.rawValue) requires a function name")
    } else if number == 0 {
      failures.append("watchpoint must be attached to a non-zero address")
    }
    if ![1, 2, 4, 8].contains(length) { failures.append("watchpoint length must be one of (1,2,4,8)") }
    let mode = String(spec.parts[2].sorted())
    if mode.isEmpty || mode.contains(where: { !"rwx".contains($0) }) {
      failures.append("watchpoint mode must be combination of (r,w,x)")
    } else if Set(mode).count != mode.count {
      failures.append("watchpoint modes may not be duplicated")
    } else if Self.invalidWatchpointModes.contains(mode) {
      failures.append("invalid watchpoint mode: \(mode)")
    }
    if !failures.isEmpty {
      for failure in failures { diagnostics.append(.error(spec.span, failure)) }
      return []
    }
    if let lacking = catalog.missingSupport(for: kind) {
      // This kernel cannot have the probe: a missing one, which `missing_probes` may skip.
      missing.append(MissingProbe(span: spec.span, message: "\(spec.text(kind)): \(lacking)", hint: nil))
      return []
    }
    // bpftrace names the probe with the traced binary as written (-c's word, /proc/PID/exe), the function, the address or argument
    // number (left out when 0), the length and the sorted mode.
    func name(_ function: String?) -> String {
      var parts = [kind.rawValue]
      if let tracedBinary { parts.append(tracedBinary) }
      if let function { parts.append(function) }
      if number != 0 { parts.append(String(number)) }
      return (parts + [String(length), mode]).joined(separator: ":")
    }
    guard let function, let tracedBinary else {
      let watch = Watchpoint(site: .address(number), length: Int(length), mode: mode, binary: tracedBinary, isAsync: false)
      return [ResolvedProbe(kind: kind, target: .breakpoint(watch), name: name(nil), span: spec.span)]
    }
    switch catalog.userFunctions(binary: tracedBinary, pattern: function) {
    case .failed(let message, let hint):
      missing.append(MissingProbe(span: spec.span, message: message, hint: hint))
      return []
    case .found(let path, let functions):
      return functions.map { found in
        let watch = Watchpoint(
          site: .argument(function: found, index: Int(number)), length: Int(length), mode: mode, binary: path,
          isAsync: kind == .asyncwatchpoint)
        return ResolvedProbe(kind: kind, target: .breakpoint(watch), name: name(found.name), span: spec.span)
      }
    }
  }
}
