import ScryLanguage

/// Tracepoints recorded from a real kernel's tracefs, so front-end tests need no kernel.
struct RecordedCatalog: ProbeCatalog {
  static let records: [String: RecordType] = [
    "sched:sched_switch": RecordType(
      name: "sched:sched_switch",
      fields: common + [
        RecordField(name: "prev_comm", cType: "char prev_comm[16]", type: .string(capacity: 16), offset: 8, size: 16),
        RecordField(name: "prev_pid", cType: "pid_t", type: .integer(.int32), offset: 24, size: 4),
        RecordField(name: "prev_prio", cType: "int", type: .integer(.int32), offset: 28, size: 4),
        RecordField(name: "prev_state", cType: "long", type: .int64, offset: 32, size: 8),
        RecordField(name: "next_comm", cType: "char next_comm[16]", type: .string(capacity: 16), offset: 40, size: 16),
        RecordField(name: "next_pid", cType: "pid_t", type: .integer(.int32), offset: 56, size: 4),
        RecordField(name: "next_prio", cType: "int", type: .integer(.int32), offset: 60, size: 4),
      ], size: 64),
    "syscalls:sys_enter_openat": RecordType(
      name: "syscalls:sys_enter_openat",
      fields: common + [
        RecordField(name: "__syscall_nr", cType: "int", type: .integer(.int32), offset: 8, size: 4),
        RecordField(name: "dfd", cType: "int", type: .int64, offset: 16, size: 8),
        RecordField(name: "filename", cType: "const char *", type: .pointer(.integer(IntegerType(bits: 8, isSigned: true))), offset: 24, size: 8),
        RecordField(name: "flags", cType: "int", type: .int64, offset: 32, size: 8),
        RecordField(name: "mode", cType: "umode_t", type: .uint64, offset: 40, size: 8),
      ], size: 48),
    "syscalls:sys_enter_getppid": RecordType(
      name: "syscalls:sys_enter_getppid",
      fields: common + [RecordField(name: "__syscall_nr", cType: "int", type: .integer(.int32), offset: 8, size: 4)], size: 16),
    "syscalls:sys_exit_getppid": RecordType(
      name: "syscalls:sys_exit_getppid",
      fields: common + [
        RecordField(name: "__syscall_nr", cType: "int", type: .integer(.int32), offset: 8, size: 4),
        RecordField(name: "ret", cType: "long", type: .int64, offset: 16, size: 8),
      ], size: 24),
    "raw_syscalls:sys_enter": RecordType(
      name: "raw_syscalls:sys_enter",
      fields: common + [
        RecordField(name: "id", cType: "long", type: .int64, offset: 8, size: 8),
        RecordField(name: "args", cType: "unsigned long args[6]", type: .array(.uint64, count: 6), offset: 16, size: 48),
      ], size: 64),
  ]

  static let common = [
    RecordField(name: "common_type", cType: "unsigned short", type: .integer(IntegerType(bits: 16, isSigned: false)), offset: 0, size: 2),
    RecordField(name: "common_flags", cType: "unsigned char", type: .integer(IntegerType(bits: 8, isSigned: false)), offset: 2, size: 1),
    RecordField(name: "common_preempt_count", cType: "unsigned char", type: .integer(IntegerType(bits: 8, isSigned: false)), offset: 3, size: 1),
    RecordField(name: "common_pid", cType: "int", type: .integer(.int32), offset: 4, size: 4),
  ]

  func tracepoints(category: String, name: String) -> [(category: String, name: String)] {
    Self.records.keys.sorted().compactMap { key in
      let parts = key.split(separator: ":").map(String.init)
      guard globMatch(category, parts[0]), globMatch(name, parts[1]) else { return nil }
      return (parts[0], parts[1])
    }
  }

  func record(category: String, name: String) -> RecordType? { Self.records["\(category):\(name)"] }

  /// One loaded module, as /sys/module lists it.
  func kernelModuleExists(_ name: String) -> Bool? { name == "vmlinux" || name == "ext4" }

  /// Functions of /bin/bash as a uprobe sees them (offsets are illustrative).
  static let bashFunctions = [
    UserFunction(name: "readline", fileOffset: 0xc6c20), UserFunction(name: "readline_internal", fileOffset: 0xc6a00),
    UserFunction(name: "main", fileOffset: 0x32f10),
  ]

  func userFunctions(binary: String, pattern: String) -> UserFunctionLookup {
    guard binary == "/bin/bash" else { return .failed(message: "cannot find binary or library '\(binary)'", hint: nil) }
    let found = Self.bashFunctions.filter { globMatch(pattern, $0.name) }
    return found.isEmpty ? .failed(message: "no function matching '\(pattern)' in /bin/bash", hint: nil) : .found(path: binary, functions: found)
  }

  /// USDT probes of python3 as its notes give them, and one whose operand Scry cannot read.
  func staticProbes(binary: String?, provider: String, name: String) -> StaticProbeLookup {
    guard binary == "/usr/bin/python3" else { return .failed(message: "cannot find binary or library '\(binary ?? "")'", hint: nil) }
    func probe(_ provider: String, _ name: String, _ arguments: String) -> UserStaticProbe {
      UserStaticProbe(
        path: "/usr/bin/python3", provider: provider, name: name, fileOffset: 0x42512a, semaphoreOffset: 0x884276,
        arguments: StaticProbeArgument.parseList(arguments))
    }
    let all = [
      probe("python", "function__entry", "8@%rbp 8@%r12 -4@%eax"), probe("python", "gc__start", "-4@112(%rsp)"),
      probe("other", "odd", "8@%xmm0"),
    ]
    let found = all.filter { globMatch(provider, $0.provider) && globMatch(name, $0.name) }
    return found.isEmpty ? .failed(message: "no usdt probe matching '\(provider):\(name)' in /usr/bin/python3", hint: nil) : .found(found)
  }
}

/// `*` and `?` glob matching, enough for recorded tracepoint names.
func globMatch(_ pattern: String, _ text: String) -> Bool {
  let p = Array(pattern.utf8), t = Array(text.utf8)
  var (pi, ti, star, mark) = (0, 0, -1, 0)
  while ti < t.count {
    if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) { pi += 1; ti += 1 }
    else if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
    else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
    else { return false }
  }
  while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
  return pi == p.count
}

func compile(
  _ text: String, name: String = "test.trace", positionals: [String] = [], unsafe: Bool = false,
  language: ScriptLanguage = .bpftrace
) -> CheckedProgram {
  Frontend.compile(SourceFile(name: name, text: text), catalog: RecordedCatalog(), positionals: positionals,
                   options: CheckOptions(allowsUnsafe: unsafe), language: language)
}

func rendered(_ checked: CheckedProgram) -> String {
  DiagnosticRenderer().render(checked.diagnostics, in: checked.program.source)
}
