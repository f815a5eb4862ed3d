import ArgumentParser
import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan
import ScryRuntime

/// `scry`: compile a probe script into a plan, attach it, and print what the actions produce.
struct ScryCommand: ParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "scry",
    abstract: "A tracing language for Linux: bpftrace scripts, perf events, tracepoints.",
    discussion: """
      EXAMPLES
        scry -e 'BEGIN { printf("hello\\n"); exit(); }'
        scry -e 'tracepoint:sched:sched_switch { count[comm]++ }'
        scry -e 'tracepoint:syscalls:sys_enter_* { @[probe] = count(); }'
        scry -c 'ls -l' -e 'tracepoint:syscalls:sys_enter_openat /pid == cpid/ { @opens = count(); }'
        scry examples/hello.trace
        scry -l 'tracepoint:sched:*'
        scry --plan -e 'tracepoint:sched:sched_switch < count[comm]++ >'

      EXIT STATUS
        0 on success (or the code given to exit()), 1 on script or kernel errors, 2 on bad usage.

      \(TracingEnvironment.helpSection)
      """,
    version: versionLine
  )

  @Option(name: .short, help: ArgumentHelp("The program to run.", valueName: "PROGRAM"))
  var e: String?

  @Flag(name: .short, help: "List probes (tracepoints, software and hardware events) matching PATTERN.")
  var l = false

  @Flag(name: .short, help: "Verbose: with -l, show each tracepoint's fields.")
  var v = false

  @Option(name: .customShort("f"), help: ArgumentHelp("Output format: bpftrace's text or JSON, or text with maps keyed by stacks as folded stacks for flame graphs.", valueName: "text|json|folded"))
  var formatName: String = "text"

  /// `-f`, checked in `validate()`.
  var f: OutputFormatOption { OutputFormatOption(rawValue: formatName) ?? .text }

  @Option(name: .short, help: ArgumentHelp("Write output to FILE instead of standard output.", valueName: "FILE"))
  var o: String?

  @Option(name: .customShort("p"), help: ArgumentHelp("Trace only this process (and exit when it exits).", valueName: "PID"))
  var pidText: String?

  /// `-p PID`, once `validate()` has checked it as bpftrace checks it.
  var p: Int32? { pidText.flatMap { Int32($0) } }

  @Option(name: .short, help: ArgumentHelp("Run CMD with the probes attached; `cpid` is its pid.", valueName: "CMD"))
  var c: String?

  @Option(name: .long, help: ArgumentHelp("The script's language; by default SystemTap for .stp files and programs that start with 'probe', 'global' or 'function'.", valueName: "bpftrace|stap"))
  var lang: ScriptLanguageOption?

  @Option(name: .short, help: ArgumentHelp("As SystemTap's -x: trace only this process, as -p.", valueName: "PID"))
  var x: Int32?

  @Flag(name: .long, help: "Print the plan (attachments, maps, actions) and exit without attaching.")
  var plan = false

  @Flag(name: .customLong("dry-run"), help: "Check the program and exit without attaching.")
  var dryRun = false

  @Flag(name: .long, help: "Allow functions with effects outside Scry: system(), signal().")
  var unsafe = false

  @Option(name: .long, help: ArgumentHelp("What lost events do: 'warn' reports them, 'fail' also exits 1.", valueName: "warn|fail"))
  var lost: LostPolicyOption = .warn

  @Option(name: .customLong("buffer-pages"), help: ArgumentHelp("Ring buffer pages per CPU (a power of two).", valueName: "N"))
  var bufferPages: Int = 1024

  @Flag(name: .customLong("no-bpf"), help: "Load no BPF program: tracepoints reach Scry through perf rings only, strings behind pointers are read from the process (best-effort).")
  var noBPF = false

  @Option(name: .customLong("flamegraph"), help: ArgumentHelp("At exit, draw the maps keyed by stacks as an interactive flame graph (SVG: zoom, search, tooltips) into FILE.", valueName: "FILE.svg"))
  var flameGraph: String?

  @Flag(name: .long, help: "At exit, report on stderr how many samples the rings delivered.")
  var stats = false

  @Flag(name: [.short, .customLong("repl")], help: "Start the interactive session (the default with no script on a terminal); reads REPL input from stdin when it is not a terminal.")
  var i = false

  // bpftrace's options (see ScryCommand+Dropin.swift).
  @Flag(name: .short, help: "Quiet: no 'Attaching N probes...' line.")
  var q = false

  @Flag(name: .short, help: "Warn when a helper fails at run time (-kk: every helper); accepted for bpftrace.")
  var k: Int

  @Option(name: .customShort("B"), help: ArgumentHelp("Output buffering, as bpftrace's -B: line and none write after every event, full in batches (the default).", valueName: "line|full|none"))
  var outputBuffering: OutputBufferingOption?

  @Option(name: .customLong("include"), help: ArgumentHelp("Add '#include <FILE>' before the program (repeatable).", valueName: "FILE"))
  var includes: [String] = []

  @Option(name: .customShort("I"), help: ArgumentHelp("Add DIR to the include search path (repeatable).", valueName: "DIR"))
  var includeDirectories: [String] = []

  @Flag(name: .customShort("V"), help: "Print the version ('scry v…') and exit.")
  var showsVersion = false

  @Flag(name: .long, help: "Print the kernel's tracing features as Scry sees them and exit.")
  var info = false

  @Flag(name: .customLong("usdt-file-activation"), help: "Accepted for bpftrace: USDT semaphores by file path.")
  var usdtFileActivation = false

  @Flag(name: .customLong("no-warnings"), help: "Accepted for bpftrace: disable warning messages.")
  var noWarnings = false

  // Exporters (see ScryCommand+Export.swift).
  @Option(name: .long, help: ArgumentHelp("Keep running and serve the maps as metrics at http://ADDR:PORT/metrics (Prometheus text or OpenMetrics); ADDR defaults to 127.0.0.1.", valueName: "[ADDR:]PORT"))
  var serve: String?

  @Option(name: .long, help: ArgumentHelp("Push the maps to this Prometheus Pushgateway every --push-interval, and at the end.", valueName: "URL"))
  var push: String?

  @Option(name: .long, help: ArgumentHelp("Send the maps to this OTLP/HTTP metrics endpoint (JSON) every --push-interval, and at the end.", valueName: "URL"))
  var otlp: String?

  @Option(name: .customLong("push-interval"), help: ArgumentHelp("Seconds between pushes of --push and --otlp.", valueName: "SECONDS"))
  var pushInterval: Double = 15

  @Argument(
    parsing: .allUnrecognized,
    help: ArgumentHelp(
      "A .trace script ('-' for standard input), or a pattern with -l, then the positional parameters $1, $2… and named ones (--name=value, read by getopt())",
      valueName: "FILE|PATTERN"))
  var rawArguments: [String] = []

  /// The script or pattern, then the positional parameters: `rawArguments` without the named ones.
  var arguments: [String] { ProgramParameters(rawArguments).positionals }

  func validate() throws {
    if let pidText { try Self.validatePid(pidText) }
    if OutputFormatOption(rawValue: formatName) == nil {
      // bpftrace's words, and the formats Scry has.
      printError("ERROR: Invalid output format \"\(formatName)\"\nValid formats: "
        + OutputFormatOption.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", "))
      throw ExitCode(1)
    }
    if let unknown = ProgramParameters(rawArguments).unknownOption { throw ValidationError("Unknown option '\(unknown)'") }
    if bufferPages <= 0 || bufferPages & (bufferPages - 1) != 0 {
      throw ValidationError("--buffer-pages must be a power of two, like 256 or 1024")
    }
    if i && (e != nil || l) { throw ValidationError("-i starts the REPL: it takes no -e or -l") }
    if i && (c != nil || o != nil) { throw ValidationError("-c and -o cannot be used with the REPL") }
    if (p ?? x) != nil && c != nil { throw ValidationError("-p and -c cannot be used together") }
    if p != nil && x != nil { throw ValidationError("-p and -x name the same process: give one") }
    try validateExport()
  }

  /// What watchpoints watch, as bpftrace 0.17 names it: `-c`'s program (found in PATH when its
  /// name has no slash), or `/proc/PID/exe` with `-p`.
  var tracedBinary: String? {
    if let pid = p ?? x { return "/proc/\(pid)/exe" }
    guard let c, let program = (try? TracedProcess.words(of: c))?.first else { return nil }
    if program.contains("/") { return program }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(program)" }.first { access($0, X_OK) == 0 } ?? program
  }

  func run() throws {
    let environmentLimits = try preflight()
    if l { throw ExitCode(try listProbes() ? 0 : 1) }
    // No script: the REPL on a terminal (or with -i), else a script read from stdin as bpftrace's `-`.
    let readsStandardInput = e == nil && arguments.isEmpty
    if i || (readsStandardInput && isatty(0) != 0) { throw ExitCode(try runREPL()) }
    let (source, positionals) = try readScript()
    let language = lang?.language ?? ScriptLanguage.detect(source, path: e == nil ? arguments.first : nil)
    if language == .bpftrace { try refuseWithoutPrivileges(source) }
    let targetPid = p ?? x
    let catalog = TraceFSCatalog(targetPid: targetPid)
    let checked = LargeStack.run {
      Frontend.compile(
        source, catalog: catalog, positionals: positionals,
        options: CheckOptions(
          allowsUnsafe: unsafe, stringCapacity: environmentLimits.stringLength, includeDirectories: includeDirectories,
          forcedIncludes: includes, environmentSettings: environmentLimits.fromEnvironment,
          namedParameters: ProgramParameters(rawArguments).named, tracedBinary: tracedBinary),
        requiresProbes: true, language: language, targetPid: x)
    }
    let limits = environmentLimits.applying(checked.config)
    let renderer = DiagnosticRenderer(useColor: isatty(2) != 0)
    if !checked.diagnostics.isEmpty {
      // A broken file can produce hundreds of follow-on errors; the first ones are the useful ones.
      let shown = Array(checked.diagnostics.prefix(20))
      printError(renderer.render(shown, in: source), newline: false)
      if checked.diagnostics.count > shown.count {
        printError("(\(checked.diagnostics.count - shown.count) more diagnostics not shown)")
      }
    }
    if checked.diagnostics.hasErrors { throw ExitCode(1) }
    let unread = ProgramParameters(rawArguments).named.keys.filter { !checked.namedParametersRead.contains($0) }.sorted()
    if !unread.isEmpty {
      // bpftrace's words: a named parameter no getopt() reads is a mistake on the command line.
      printError("ERROR: Unexpected command line options: " + unread.joined(separator: ", "))
      throw ExitCode(1)
    }
    // Lowering finds what the runtime cannot evaluate, so --dry-run and --plan refuse it too.
    let plan: Plan
    do {
      plan = try Planner.plan(checked)
    } catch {
      printError(renderer.render(Array(error.diagnostics.prefix(20)), in: source), newline: false)
      throw ExitCode(1)
    }
    if plan.attachments.count > limits.maxProbes {
      // bpftrace's words, so wrappers that look for them still find them.
      printError(
        "ERROR: Can't attach to \(plan.attachments.count) probes because it exceeds the current limit of \(limits.maxProbes) probes.\n"
          + "You can increase the limit through the BPFTRACE_MAX_PROBES (or SCRY_MAX_PROBES) environment variable, "
          + "but BE CAREFUL since a high number of probes attached can cause your system to crash.")
      throw ExitCode(1)
    }
    var options = SessionOptions()
    options.positionals = positionals
    options.allowsUnsafe = unsafe
    options.format = f == .json ? .json : .text
    options.foldsStacks = f == .folded
    options.flameGraphPath = flameGraph
    options.outputPath = o
    options.targetPid = targetPid
    options.command = c
    options.failOnLost = lost == .fail
    options.ringPages = bufferPages
    options.allowsBPF = !noBPF
    options.printsStatistics = stats
    options.maxMapEntries = limits.mapKeysMax
    options.catBytesMax = limits.catBytesMax
    options.printsMapsOnExit = checked.config.printsMapsOnExit ?? true
    // SystemTap prints no such line: its scripts' output is theirs alone.
    options.announcesProbes = !q && language == .bpftrace
    options.notifiesProbesAttached = getenv("__BPFTRACE_NOTIFY_PROBES_ATTACHED") != nil
    // bpftrace 0.17 runs a script of BEGIN and END alone until Ctrl-C or exit(); SystemTap's
    // begin-only scripts keep ending after their begin blocks, as Scry's have.
    options.waitsWhenIdle = language == .bpftrace
    options.helperChecks = k
    // `outputBuffering == .none` would compare with nil: name the mode explicitly.
    if let mode = outputBuffering { options.flushesEachEvent = mode != .full }
    options.reloadsOnHangup = reloadsOnHangup
    // What the attach step would refuse with these options, refused here at its block.
    let refusals = AttachmentFacts.refusals(plan, options: options)
    if !refusals.isEmpty {
      let diagnostics = refusals.map { refusal in
        let block = checked.program.probes[refusal.blockIndex]
        return Diagnostic.error(block.specs.first?.span ?? block.span, refusal.message)
      }
      printError(renderer.render(diagnostics, in: source), newline: false)
      throw ExitCode(1)
    }
    let exposition = try exposition(plan, source: source, renderer: renderer)
    if dryRun { return }
    if self.plan {
      // Printed from the plan and options alone: nothing is attached, loaded or opened.
      let facts = AttachmentFacts.describe(plan, options: options)
      writeAll(
        1,
        PlanPrinter.render(
          plan, dynamicGroup: DynamicEvents.groupName(for: getpid()), fetchPaths: facts.compactMapValues(\.fetchedBy),
          deliveryPaths: facts.compactMapValues(\.deliveredBy), carriedBy: facts.compactMapValues(\.carriedBy),
          syscallFamilies: AttachmentFacts.syscallFamilies(plan, options: options)))
      return
    }
    let services = try makeExporters(exposition)
    let session: Session
    do {
      session = try Session(plan: plan, options: options)
    } catch {
      printError(error.render(renderer: renderer, source: source), newline: false)
      throw ExitCode(1)
    }
    session.services = services
    throw ExitCode(runReloading(session, options: options, limits: limits, renderer: renderer))
  }

  /// Runs the command; usage errors exit 2 rather than argument-parser's 64.
  static func runAndExit() -> Never {
    do {
      var command = try parseAsRoot()
      try command.run()
      Glibc.exit(0)
    } catch let code as ExitCode {
      Glibc.exit(code.rawValue)
    } catch {
      // --help and --version arrive as errors that exit 0.
      if exitCode(for: error) == .success { exit(withError: error) }
      if let text = usageErrorText(fullMessage(for: error)) { printError(text) }
      Glibc.exit(2)
    }
  }

  /// argument-parser's message for a usage error in bpftrace's shape: `ERROR:` then `USAGE:`, which
  /// wrappers and bpftrace's tests look for. nil when the error was printed where it was found.
  static func usageErrorText(_ message: String) -> String? {
    guard !message.isEmpty else { return nil }
    var lines: [String] = []
    for line in message.split(separator: "\n", omittingEmptySubsequences: false) {
      // `-idonotexist` also reads as the flags -i -d -o with -o missing its value; that second
      // reading only confuses, so the unknown option alone is reported.
      if line.hasPrefix("   or: ") { continue }
      if line.hasPrefix("Error: ") {
        lines.append("ERROR: " + line.dropFirst("Error: ".count))
      } else if line.hasPrefix("Usage: ") {
        lines.append("USAGE: " + line.dropFirst("Usage: ".count))
      } else {
        lines.append(String(line))
      }
    }
    return lines.joined(separator: "\n")
  }
}

enum OutputFormatOption: String, ExpressibleByArgument, CaseIterable {
  case text, json
  /// Text, with the maps keyed by stacks printed as folded stacks at exit (flame graphs).
  case folded
}

enum LostPolicyOption: String, ExpressibleByArgument, CaseIterable {
  case warn, fail
}

func printError(_ message: String, newline: Bool = true) {
  writeAll(2, newline ? message + "\n" : message)
}

func writeAll(_ fd: Int32, _ text: String) {
  var bytes = Array(text.utf8)[...]
  while !bytes.isEmpty {
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if n < 0 && errno == EINTR { continue }
    if n <= 0 { return }
    bytes = bytes.dropFirst(n)
  }
}

/// `--lang`: the script's language, when the file name and first word should not decide.
enum ScriptLanguageOption: String, ExpressibleByArgument, CaseIterable {
  case bpftrace, stap

  var language: ScriptLanguage { self == .stap ? .systemTap : .bpftrace }
}
