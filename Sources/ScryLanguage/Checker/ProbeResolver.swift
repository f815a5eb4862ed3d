/// Turns probe specs as written into concrete probes: aliases resolved, units converted, wildcards
/// expanded through the catalog, with a diagnostic for each spec that cannot be made sense of.
struct ProbeResolver {
  let catalog: any ProbeCatalog
  /// `$1`, `$2`… in a probe spec are the script's positional parameters, as in bpftrace.
  let positionals: [String]
  var diagnostics: [Diagnostic] = []
  /// Probes that do not exist (an unknown tracepoint, a function a binary lacks): errors unless
  /// the script's `missing_probes` says to warn or ignore, as bpftrace's does.
  var missing: [MissingProbe] = []

  struct MissingProbe {
    var span: SourceSpan
    var message: String
    var hint: String?
    /// A kprobe or kretprobe (which bpftrace 0.17 may expand to nothing rather than refuse).
    var isKernelFunction = false
  }

  /// `--unsafe`: a uprobe address no function holds is probed as it is, with a warning.
  let allowsUnsafe: Bool

  /// The traced process's binary (`-c`/`-p`), whose memory watchpoints watch and whose functions
  /// `watchpoint:FUNC+argN` probes.
  let tracedBinary: String?

  init(catalog: any ProbeCatalog, positionals: [String] = [], allowsUnsafe: Bool = false, tracedBinary: String? = nil) {
    self.catalog = catalog
    self.positionals = positionals
    self.allowsUnsafe = allowsUnsafe
    self.tracedBinary = tracedBinary
  }

  /// The spec with every `$N` replaced by its positional parameter, as bpftrace substitutes them
  /// in attach points: a whole part (`interval:ms:$1`), part of one (`BEG$1`), or the whole spec
  /// (`$1` given `i:ms:1`, whose colons then separate parts).
  private mutating func substitutingPositionals(_ spec: ProbeSpec) -> ProbeSpec? {
    let pieces = [spec.provider] + spec.parts
    guard pieces.contains(where: { $0.contains("$") }) else { return spec }
    let providerSpan = SourceSpan(start: spec.span.start, end: spec.span.start + UInt32(spec.provider.utf8.count))
    var substituted: [String] = []
    var spans: [SourceSpan] = []
    for (piece, span) in zip(pieces, [providerSpan] + spec.partSpans) {
      guard piece.contains("$") else {
        substituted.append(piece)
        spans.append(span)
        continue
      }
      guard let text = substitutingPositionals(in: piece, span: span) else { return nil }
      let split = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
      substituted += split
      spans += Array(repeating: span, count: split.count)
    }
    return ProbeSpec(
      span: spec.span, provider: substituted[0], parts: Array(substituted.dropFirst()), partSpans: Array(spans.dropFirst()))
  }

  private mutating func substitutingPositionals(in piece: String, span: SourceSpan) -> String? {
    var result = ""
    var rest = Substring(piece)
    while let dollar = rest.firstIndex(of: "$") {
      result += rest[..<dollar]
      let digits = rest[rest.index(after: dollar)...].prefix { $0.isASCII && $0.isNumber }
      guard let n = Int(digits) else {
        result.append("$")
        rest = rest[rest.index(after: dollar)...]
        continue
      }
      guard n >= 1, n <= positionals.count else {
        diagnostics.append(.error(span, "probe uses positional parameter $\(n), but \(positionals.count) were given",
                                  hint: "pass it after the script: 'scry script.trace ARG1 ARG2'"))
        return nil
      }
      result += positionals[n - 1]
      rest = rest[digits.endIndex...]
    }
    return result + rest
  }

  mutating func resolve(_ written: ProbeSpec) -> [ResolvedProbe] {
    guard let spec = substitutingPositionals(written) else { return [] }
    if let unattached = UnattachedProbeType(provider: spec.provider) {
      refuse(spec, unattached)
      return []
    }
    guard let kind = ProbeKind(provider: spec.provider) else {
      let providers = ProbeKind.allCases.map(\.rawValue) + ["begin", "end"]
      let hint = Suggestions.hint(for: spec.provider, in: providers)
        ?? "known probe types: BEGIN, END, interval, profile, tracepoint, software, hardware, uprobe, uretprobe, kprobe, kretprobe, usdt, rawtracepoint, watchpoint, asyncwatchpoint"
      let providerSpan = SourceSpan(start: spec.span.start, end: spec.span.start + UInt32(spec.provider.utf8.count))
      diagnostics.append(.error(providerSpan, "unknown probe type '\(spec.provider)'", hint: hint))
      return []
    }
    switch kind {
    case .begin, .end:
      guard spec.parts.isEmpty else {
        diagnostics.append(.error(spec.span, "\(kind.rawValue) takes no arguments", hint: "write just '\(kind.rawValue)'"))
        return []
      }
      // Named as written: `probe` is "BEGIN" in bpftrace 0.17's spelling, "begin" in 0.24's.
      return [ResolvedProbe(kind: kind, target: .special, name: spec.provider, span: spec.span)]
    case .interval, .profile:
      return resolveTimer(spec, kind: kind).map { [$0] } ?? []
    case .tracepoint:
      return resolveTracepoint(spec)
    case .software, .hardware:
      return resolvePerfEvent(spec, kind: kind).map { [$0] } ?? []
    case .uprobe, .uretprobe:
      guard spec.parts.count == 2, !spec.parts[0].isEmpty, !spec.parts[1].isEmpty else {
        wrongShape(spec, "\(kind.rawValue):BINARY:FUNCTION", example: "\(kind.rawValue):/bin/bash:readline")
        return []
      }
      return resolveUserFunction(spec, kind: kind)
    case .kprobe, .kretprobe:
      // `kprobe:func` or `kprobe:module:func`.
      guard (1...2).contains(spec.parts.count), let function = spec.parts.last, !function.isEmpty else {
        wrongShape(spec, "\(kind.rawValue):FUNCTION", example: "\(kind.rawValue):do_nanosleep")
        return []
      }
      // bpftrace 0.17 takes one part; 0.26 takes a module before the function. A first part that
      // is no loaded module (`kprobe:syscalls:sys_exit_nanosleep`) is 0.17's error.
      if spec.parts.count == 2, catalog.kernelModuleExists(spec.parts[0]) == false {
        let tracepoint = catalog.tracepoints(category: spec.parts[0], name: spec.parts[1]).isEmpty
          ? nil : "tracepoint:\(spec.parts[0]):\(spec.parts[1])"
        diagnostics.append(.error(
          spec.span, "\(kind.rawValue) probe type requires 1 argument",
          hint: tracepoint.map { "'\(spec.parts[0])' is no loaded kernel module; did you mean '\($0)'?" }
            ?? "'\(spec.parts[0])' is no loaded kernel module: write \(kind.rawValue):FUNCTION or \(kind.rawValue):MODULE:FUNCTION"))
        return []
      }
      let (symbol, offset) = splitOffset(function)
      // bpftrace refuses these before anything else: a return probe on them can deadlock the kernel.
      if kind == .kretprobe, Self.bannedReturnProbes.contains(symbol ?? function) {
        diagnostics.append(.error(spec.span, "kretprobe:\(symbol ?? function) can't be used as it might lock up your system.",
                                  hint: "probe the function's entry (kprobe:) instead"))
        return []
      }
      if let lacking = catalog.missingSupport(for: kind) {
        // Found here, so --dry-run says it too: the run would fail at attach. A probe this kernel
        // cannot have is a missing one, which `missing_probes` may skip.
        let name = symbol ?? function
        missing.append(
          MissingProbe(span: spec.span, message: "\(spec.text(kind)): \(lacking)",
                       hint: similarTracepoint(to: name).map { "the tracepoint '\($0)' covers similar ground" },
                       isKernelFunction: true))
        return []
      }
      return [
        ResolvedProbe(
          kind: kind, target: .kernelFunction(symbol: symbol ?? function, offset: offset),
          name: "\(kind.rawValue):\(function)", span: spec.span)
      ]
    case .usdt:
      return resolveStaticProbe(spec)
    case .watchpoint, .asyncwatchpoint:
      return resolveWatchpoint(spec, kind: kind)
    case .rawTracepoint:
      guard !spec.parts.isEmpty, !spec.parts.contains(where: \.isEmpty) else {
        wrongShape(spec, "rawtracepoint:NAME", example: "rawtracepoint:sched_switch")
        return []
      }
      return [ResolvedProbe(kind: kind, target: .other(parts: spec.parts), name: spec.text(kind), span: spec.span)]
    }
  }

  /// bpftrace 0.17's list of functions whose kretprobe may lock up the machine.
  static let bannedReturnProbes: Set<String> = [
    "_raw_spin_lock", "_raw_spin_lock_irqsave", "_raw_spin_unlock_irqrestore", "queued_spin_lock_slowpath",
  ]

  /// `usdt:PATH:PROVIDER:NAME`, `usdt:PATH:NAME` (any provider), and with `-p` `usdt:NAME` or a
  /// path of `*` or nothing (every file the process maps), as bpftrace 0.17 reads them.
  private mutating func resolveStaticProbe(_ spec: ProbeSpec) -> [ResolvedProbe] {
    // The path may be empty (`usdt::PROVIDER:NAME` with -p), and so may the provider
    // (`usdt:PATH::NAME`: any provider, as in bpftrace); the name may not.
    // One part is a probe's name (with -p), never a path: `usdt:/bin/app` lacks the name.
    guard (1...3).contains(spec.parts.count), let last = spec.parts.last, !last.isEmpty,
      spec.parts.count != 2 || !spec.parts[1].isEmpty,
      spec.parts.count > 1 || !spec.parts[0].contains("/")
    else {
      wrongShape(spec, "usdt:BINARY:[PROVIDER:]NAME", example: "usdt:/usr/bin/python3:python:function__entry")
      return []
    }
    let path = spec.parts.count == 1 ? "" : spec.parts[0]
    let provider = spec.parts.count == 3 && !spec.parts[1].isEmpty ? spec.parts[1] : "*"
    let name = spec.parts[spec.parts.count - 1]
    let binary = path.isEmpty || path == "*" ? nil : path
    switch catalog.staticProbes(binary: binary, provider: provider, name: name) {
    case .failed(let message, let hint):
      diagnostics.append(.error(spec.span, message, hint: hint))
      return []
    case .found(let probes):
      return probes.map { probe in
        ResolvedProbe(
          kind: .usdt, target: .userStaticProbe(probe), name: "usdt:\(probe.path):\(probe.provider):\(probe.name)",
          span: spec.span)
      }
    }
  }

  /// `fentry:vfs_read` and the like: named, with the cause (this kernel's, when it lacks the
  /// mechanism; else Scry's), so `--dry-run` says it too.
  private mutating func refuse(_ spec: ProbeSpec, _ type: UnattachedProbeType) {
    let written = ([spec.provider] + spec.parts).joined(separator: ":")
    let function = spec.parts.last.map { String($0.prefix { $0 != "+" }) } ?? ""
    let message: String
    if let missing = catalog.missingSupport(for: type) {
      message = "\(written): \(type.rawValue) probes cannot run on this kernel: they attach through \(type.kernelMechanism), and \(missing)"
    } else {
      message = "\(written): Scry does not attach \(type.rawValue) probes (they attach through \(type.kernelMechanism))"
    }
    let hint = type.needsFtrace ? similarTracepoint(to: function).map { "the tracepoint '\($0)' covers similar ground" } : nil
    if catalog.missingSupport(for: type) != nil {
      // This kernel cannot have the probe: a missing one, which `missing_probes` may skip.
      missing.append(MissingProbe(span: spec.span, message: message, hint: hint ?? type.alternative(function: function)))
    } else {
      diagnostics.append(.error(spec.span, message, hint: hint ?? type.alternative(function: function)))
    }
  }

  private mutating func wrongShape(_ spec: ProbeSpec, _ shape: String, example: String) {
    diagnostics.append(.error(spec.span, "malformed probe '\(spec.text)': expected \(shape)", hint: "for example '\(example)'"))
  }

  /// `func+0x10` → ("func", 16); `0x401000` → (nil, 0x401000); `func` → ("func", 0).
  private func splitOffset(_ text: String) -> (String?, UInt64) {
    // A number is an address, in any base bpftrace reads (`0x4a1b0`, `10`): no function name
    // starts with a digit.
    if text.first?.isNumber == true, let address = parseIntegerLiteral(text) { return (nil, address) }
    if let plus = text.firstIndex(of: "+"), let offset = parseIntegerLiteral(String(text[text.index(after: plus)...])) {
      return (String(text[..<plus]), offset)
    }
    return (text, 0)
  }

  /// `uprobe:BINARY:FUNCTION[+OFFSET]`, `uprobe:BINARY:0xADDRESS`, wildcards over function names.
  private mutating func resolveUserFunction(_ spec: ProbeSpec, kind: ProbeKind) -> [ResolvedProbe] {
    let binary = spec.parts[0]
    let (symbol, offset) = splitOffset(spec.parts[1])
    let lookup = symbol.map { catalog.userFunctions(binary: binary, pattern: $0) } ?? catalog.userAddress(binary: binary, address: offset)
    switch lookup {
    case .failed(let message, let hint):
      missing.append(MissingProbe(span: spec.span, message: message, hint: hint))
      return []
    case .found(let path, let functions):
      guard let symbol else { return resolveUserAddress(spec, kind: kind, address: offset, path: path, functions: functions) }
      if offset != 0 && functions.count != 1 {
        diagnostics.append(.error(spec.span, "an offset needs exactly one function, but '\(symbol)' matches \(functions.count)"))
        return []
      }
      // bpftrace's check and words: the kernel would plant the probe in whatever follows.
      if let function = functions.first, let size = function.size, offset >= size {
        diagnostics.append(.error(spec.span, "Offset outside the function bounds ('\(function.name)' size is \(size))",
                                  hint: "an offset below \(size) stays inside '\(function.name)'"))
        return []
      }
      return functions.map { function in
        let suffix = offset == 0 ? "" : "+\(offset)"
        return ResolvedProbe(
          kind: kind, target: .userFunction(path: path, symbol: function.name, fileOffset: function.fileOffset + offset),
          name: "\(kind.rawValue):\(path):\(function.name)\(suffix)", span: spec.span)
      }
    }
  }

  /// `uprobe:BINARY:ADDRESS`, as bpftrace 0.17 resolves it: the address must lie in a function of
  /// the binary's symbol tables (its probe then is that function plus an offset, as
  /// `FUNCTION+OFFSET` is), unless `--unsafe` takes it as it is; a return probe only at the
  /// function's start.
  private mutating func resolveUserAddress(
    _ spec: ProbeSpec, kind: ProbeKind, address: UInt64, path: String, functions: [UserFunction]
  ) -> [ResolvedProbe] {
    let written = "\(spec.parts[0]):0x\(String(address, radix: 16))"
    let name = "\(kind.rawValue):\(path):\(spec.parts[1])"
    guard let function = functions.first else { return [] }
    if function.name.isEmpty {
      guard allowsUnsafe else {
        diagnostics.append(.error(
          spec.span, "Could not resolve address: \(written)",
          hint: "'\(spec.text(kind))' names an address, and no function of \(path)'s symbol tables holds it: "
            + "give a function (FUNCTION or FUNCTION+OFFSET), or --unsafe to probe the address as it is"))
        return []
      }
      diagnostics.append(.warning(
        spec.span, "Could not determine instruction boundary for \(spec.text(kind)) (binary appears stripped). Misaligned probes can lead to tracee crashes!"))
    } else if kind == .uretprobe && function.offset != 0 {
      diagnostics.append(.error(
        spec.span, "uretprobes cannot be attached at function offset. (address resolved to: \(function.name)+\(function.offset))",
        hint: "a return probe goes at the function's start: 'uretprobe:\(spec.parts[0]):\(function.name)'"))
      return []
    }
    return [ResolvedProbe(kind: kind, target: .userFunction(path: path, symbol: nil, fileOffset: function.fileOffset),
                          name: name, span: spec.span)]
  }

  private mutating func resolveTimer(_ spec: ProbeSpec, kind: ProbeKind) -> ResolvedProbe? {
    var unit: String
    var valueText: String
    var valueSpan: SourceSpan
    if spec.parts.count == 2 {
      (unit, valueText, valueSpan) = (spec.parts[0], spec.parts[1], spec.partSpans[1])
    } else if spec.parts.count == 1 {
      // The newer spelling `interval:1s`, `profile:99hz`.
      let text = spec.parts[0]
      let digits = text.prefix { $0.isNumber }
      (unit, valueText, valueSpan) = (String(text.dropFirst(digits.count)), String(digits), spec.partSpans[0])
    } else {
      wrongShape(spec, "\(kind.rawValue):UNIT:N with UNIT one of s, ms, us, hz", example: "\(kind.rawValue):s:1")
      return nil
    }
    let units: [String: UInt64] = ["s": 1_000_000_000, "ms": 1_000_000, "us": 1000, "ns": 1, "hz": 0]
    unit = unit == "sec" ? "s" : unit
    guard let scale = units[unit] else {
      let unitSpan = spec.parts.count == 2 ? spec.partSpans[0] : spec.partSpans[0]
      diagnostics.append(
        .error(unitSpan, "unknown time unit '\(unit)' in \(kind.rawValue) probe", hint: "use s, ms, us or hz: '\(kind.rawValue):s:1'"))
      return nil
    }
    guard let value = parseIntegerLiteral(valueText), value > 0 else {
      diagnostics.append(
        .error(valueSpan, "\(kind.rawValue) needs a positive whole number, not '\(valueText)'", hint: "for example '\(kind.rawValue):\(unit):1'"))
      return nil
    }
    let period: UInt64
    if scale == 0 {
      guard value <= 1_000_000_000 else {
        diagnostics.append(.error(valueSpan, "frequency \(value) hz is too high"))
        return nil
      }
      period = 1_000_000_000 / value
    } else {
      let (product, overflow) = value.multipliedReportingOverflow(by: scale)
      guard !overflow else {
        diagnostics.append(.error(valueSpan, "period '\(valueText)\(unit)' is too long"))
        return nil
      }
      period = product
    }
    return ResolvedProbe(
      kind: kind, target: .timer(periodNanoseconds: period, unit: unit, value: value),
      name: "\(kind.rawValue):\(unit):\(value)", span: spec.span)
  }

  private mutating func resolveTracepoint(_ spec: ProbeSpec) -> [ResolvedProbe] {
    guard spec.parts.count == 2, !spec.parts[0].isEmpty, !spec.parts[1].isEmpty else {
      wrongShape(spec, "tracepoint:CATEGORY:NAME", example: "tracepoint:sched:sched_switch")
      return []
    }
    let matches = catalog.tracepoints(category: spec.parts[0], name: spec.parts[1])
    guard !matches.isEmpty else {
      let written = spec.parts.joined(separator: ":")
      let all = catalog.tracepoints(category: "*", name: "*").map { "\($0.category):\($0.name)" }
      var hint = Suggestions.hint(for: written, in: all).map { $0.replacingOccurrences(of: "'", with: "'tracepoint:", firstOnly: true) }
      if all.isEmpty {
        hint = "tracepoints could not be listed: is tracefs mounted at /sys/kernel/tracing, and are you root?"
      } else if hint == nil {
        hint = "list them with 'scry -l \"tracepoint:\(spec.parts[0]):*\"'"
      }
      missing.append(MissingProbe(span: spec.span, message: "unknown tracepoint '\(written)'", hint: hint))
      return []
    }
    return matches.map { match in
      ResolvedProbe(
        kind: .tracepoint,
        target: .tracepoint(category: match.category, name: match.name, record: catalog.record(category: match.category, name: match.name)),
        name: "tracepoint:\(match.category):\(match.name)", span: spec.span)
    }
  }

  /// A syscall tracepoint that covers what a kernel function does (`do_sys_openat2` → openat).
  func similarTracepoint(to function: String) -> String? {
    var name = function
    for prefix in ["__x64_sys_", "__arm64_sys_", "ksys_", "do_sys_", "__se_sys_", "sys_"] where name.hasPrefix(prefix) {
      name = String(name.dropFirst(prefix.count))
      break
    }
    if name == "open" || name == "openat2" { name = "openat" }
    guard !catalog.tracepoints(category: "syscalls", name: "sys_enter_" + name).isEmpty else { return nil }
    return "tracepoint:syscalls:sys_enter_" + name
  }

  private mutating func resolvePerfEvent(_ spec: ProbeSpec, kind: ProbeKind) -> ResolvedProbe? {
    let table = kind == .software ? PerfEventName.software : PerfEventName.hardware
    guard (1...2).contains(spec.parts.count), !spec.parts[0].isEmpty else {
      wrongShape(spec, "\(kind.rawValue):EVENT[:PERIOD]", example: kind == .software ? "software:page-faults:100" : "hardware:cache-misses:1000000")
      return nil
    }
    let name = spec.parts[0]
    guard let event = PerfEventName.find(name, in: table) else {
      let names = table.map(\.name)
      diagnostics.append(
        .error(spec.partSpans[0], "unknown \(kind.rawValue) event '\(name)'",
               hint: Suggestions.hint(for: name, in: names + table.flatMap(\.aliases)) ?? "known: " + names.joined(separator: ", ")))
      return nil
    }
    var period = event.defaultPeriod
    if spec.parts.count == 2 {
      guard let value = parseIntegerLiteral(spec.parts[1]), value > 0 else {
        diagnostics.append(.error(spec.partSpans[1], "the sample period must be a positive whole number, not '\(spec.parts[1])'"))
        return nil
      }
      period = value
    }
    // Named as written (`software:cpu:…` stays `cpu`), as bpftrace's `probe` builtin names it.
    return ResolvedProbe(
      kind: kind, target: .perfEvent(name: event.name, period: period), name: "\(kind.rawValue):\(name):\(period)",
      span: spec.span)
  }
}

extension ProbeSpec {
  /// The spec with its provider spelled out in full (`t:a:b` → `tracepoint:a:b`).
  func text(_ kind: ProbeKind) -> String { ([kind.rawValue] + parts).joined(separator: ":") }
}

extension String {
  func replacingOccurrences(of target: String, with replacement: String, firstOnly: Bool) -> String {
    var result = ""
    var rest = Substring(self)
    while let range = rest.range(of: target) {
      result += rest[..<range.lowerBound] + replacement
      rest = rest[range.upperBound...]
      if firstOnly { break }
    }
    return result + rest
  }

  func range(of target: String) -> Range<String.Index>? { Substring(self).range(of: target) }
}

extension Substring {
  func range(of target: String) -> Range<String.Index>? {
    guard !target.isEmpty else { return nil }
    var index = startIndex
    while index < endIndex {
      if self[index...].hasPrefix(target) { return index..<self.index(index, offsetBy: target.count) }
      index = self.index(after: index)
    }
    return nil
  }
}
