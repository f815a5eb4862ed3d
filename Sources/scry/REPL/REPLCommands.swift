import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan
import ScryRuntime

/// The `.commands` of the REPL.
extension REPL {
  static let help = """
    Type probe blocks to attach them at once, or statements to run them now:
      tracepoint:syscalls:sys_enter_openat { @opens[comm] = count(); }
      print(@opens)        @opens        clear(@opens)        1 + 2
    A block may span lines: input continues while '{', '(', '[' or a '<' block is open.
    Ctrl-C stops the running probes and prints the maps (or clears the line); Ctrl-D leaves.

    Commands:
      .help [NAME]       this text; with a function, builtin or probe type, what it does
      .probes            the session's probe blocks, attached or not, and event counts
      .list PATTERN      the probes this machine offers that match (as 'scry -l PATTERN')
      .maps              print every map now
      .detach N|all      detach probe block N (as numbered by .probes), or all of them
      .clear             detach everything and forget the session's blocks and maps
      .plan              the plan of the attached blocks (as scry --plan prints it)
      .save FILE.trace   write the session as a script that 'scry FILE.trace' runs
      .edit              open the session as a script in $VISUAL or $EDITOR; what you save replaces it
      .load FILE.trace   add a script's probe blocks to the session
      .output text|json  the output format from now on
      .wait MS           let the probes run for MS milliseconds (for replayed sessions)
      .quit              run END blocks, print the maps and leave (Ctrl-D too)

    """

  /// `.help NAME`: a function's usage and summary, a builtin, or a probe type, from the tables
  /// the checker uses (so help and language cannot disagree).
  static func help(for name: String) -> String {
    if let function = Function(name: name) {
      return "\(function.usage)\n  \(function.summary)\n"
    }
    if Builtin(name: name) != nil {
      return "\(name): a builtin; see docs/language.md (Builtins) for where it is available and its type\n"
    }
    if let kind = ProbeKind(provider: name) {
      return "\(kind.rawValue): a probe type; '.list \(kind.rawValue):*' lists what this machine offers\n"
    }
    let known = Function.allCases.filter { !$0.isSystemTapOnly }.map(\.name) + Builtin.names + ProbeKind.allCases.map(\.rawValue)
    let close = known.filter { $0.hasPrefix(String(name.prefix(2))) }.prefix(5)
    return "no function, builtin or probe type named '\(name)'"
      + (close.isEmpty ? "" : "; perhaps " + close.map { "'\($0)'" }.joined(separator: ", ")) + "\n"
  }

  func command(_ line: Substring) {
    let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    // `help hist` and `quit` are typed without the dot as often as with it.
    guard let name = words.first.map({ $0.hasPrefix(".") ? $0 : "." + $0 }) else { return }
    let argument = words.count > 1 ? words[1...].joined(separator: " ") : nil
    switch name {
    case ".help", ".h", ".?":
      writeAll(1, argument.map(Self.help(for:)) ?? Self.help)
    case ".quit", ".q", ".exit":
      done = true
    case ".probes":
      listProbes()
    case ".list", ".l":
      if !ProbeListing.list(pattern: argument ?? "*", verbose: false) { writeAll(1, "no probe matches\n") }
    case ".maps":
      if live.maps.isEmpty { writeAll(1, "no maps\n") } else { live.printMaps() }
    case ".detach":
      detach(argument)
    case ".clear":
      live.reset()
      program = SessionProgram()
      mapsDirty = false
    case ".plan":
      guard let plan = live.plan, program.hasAttachedBlocks else {
        writeAll(1, "nothing attached\n")
        return
      }
      let facts = AttachmentFacts.describe(plan, options: live.options)
      writeAll(
        1,
        PlanPrinter.render(
          plan, fetchPaths: facts.compactMapValues(\.fetchedBy), deliveryPaths: facts.compactMapValues(\.deliveredBy),
          carriedBy: facts.compactMapValues(\.carriedBy), syscallFamilies: AttachmentFacts.syscallFamilies(plan, options: live.options)))
    case ".save":
      guard let path = argument else { return printError("usage: .save FILE.trace") }
      save(to: path)
    case ".edit":
      edit()
    case ".load":
      guard let path = argument else { return printError("usage: .load FILE.trace") }
      do {
        let text = try FileSystem.readText(path)
        addBlocks(text, language: ScriptLanguage.detect(SourceFile(name: path, text: text), path: path))
      } catch {
        printError("cannot read '\(path)': \(error.errnoText)")
      }
    case ".output":
      guard let format = argument.flatMap({ $0 == "json" ? OutputFormat.json : $0 == "text" ? .text : nil }) else {
        return printError("usage: .output text|json")
      }
      live.setFormat(format)
    case ".wait":
      guard let ms = argument.flatMap({ Int($0) }), ms >= 0 else { return printError("usage: .wait MILLISECONDS") }
      pump(milliseconds: ms)
    default:
      printError("unknown command '\(name)'; .help lists them")
    }
  }

  /// Each block, its state and the events it has seen since it was added: per probe where the
  /// count is the probe's own (kernel counters, timers), else the block's samples.
  private func listProbes() {
    if program.blocks.isEmpty {
      writeAll(1, "no probes\n")
      return
    }
    let events = live.blockEvents()
    var out = ""
    for (i, block) in program.blocks.enumerated() {
      let state: String
      switch block.kind {
      case .begin?: state = "ran"
      case .end?: state = block.attached ? "pending" : "ran"
      default: state = block.attached ? "attached" : "detached"
      }
      out += "\(i + 1): \(block.specs)  [\(state)]"
      guard block.kind != .begin && block.kind != .end else {
        out += "\n"
        continue
      }
      let counted = events[i] ?? BlockEvents()
      out += "  \(counted.total) event\(counted.total == 1 ? "" : "s")\n"
      guard counted.perProbe.count > 1 else { continue }
      let busiest = counted.perProbe.sorted { $0.count > $1.count }
      for probe in busiest.prefix(Self.probesListed) { out += "     \(probe.name)  \(probe.count)\n" }
      if busiest.count > Self.probesListed { out += "     … \(busiest.count - Self.probesListed) more probes\n" }
    }
    let counts = live.eventCounts
    out += "events: \(counts.read) read, \(counts.lost) lost\n"
    writeAll(1, out)
  }

  /// Probes of one block `.probes` lists by name, busiest first (a wildcard can make hundreds).
  static let probesListed = 10

  private func detach(_ argument: String?) {
    var next = program
    if argument == "all" {
      for i in next.blocks.indices where next.blocks[i].kind != .end { next.blocks[i].attached = false }
    } else if let n = argument.flatMap({ Int($0) }), n >= 1, n <= next.blocks.count {
      next.blocks[n - 1].attached = false
    } else {
      return printError("usage: .detach N|all (N as numbered by .probes)")
    }
    guard live.plan != nil else {
      program = next
      return
    }
    // Rebuilt without the detached blocks: the plan keeps every block, attachments follow the flags.
    let result = next.check(blocks: "", catalog: catalog, positionals: positionals, options: checkOptions)
    guard !result.checked.diagnostics.hasErrors else { return }
    do {
      try live.install(Planner.plan(result.checked), attached: next.attachedFlags, newBlocks: [])
      program = next
    } catch {
      printError("\(error)")
    }
  }

  /// `.edit`: the session, as `.save` writes it, in the user's editor; if the file comes back
  /// changed, the session becomes it (see `replaceSession(with:)`).
  private func edit() {
    var template = Array("/tmp/scry-session-XXXXXX.trace".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 6) }
    guard fd >= 0 else { return printError("cannot make a file to edit: \(String(cString: strerror(errno)))") }
    let path = String(cString: template)
    defer { unlink(path) }
    let before = program.scriptText
    writeAll(fd, before)
    close(fd)
    let editor = [getenv("VISUAL"), getenv("EDITOR")].compactMap { $0.map { String(cString: $0) } }
      .first { !$0.isEmpty } ?? "vi"
    let status = Self.runInTerminal(editor, path)
    guard status == 0 else { return printError("'\(editor)' exited with status \(status); the session is unchanged") }
    guard let after = try? FileSystem.readText(path), after != before else {
      return writeAll(1, "the session is unchanged\n")
    }
    let language = ScriptLanguage.detect(SourceFile(name: path, text: after), path: nil)
    guard language == .bpftrace, program.language != .systemTap else {
      // A SystemTap session is one program whose globals span its entries: it starts again.
      live.reset()
      program = SessionProgram()
      mapsDirty = false
      return addBlocks(after, language: language)
    }
    replaceSession(with: after)
  }

  /// The session becomes the script `text`. A block left as it was (same text, same place) keeps
  /// its state and, when its plan is unchanged too, runs on with its probes and maps; changed and
  /// added blocks attach (a BEGIN block among them runs), removed ones detach. A script that does
  /// not check leaves the session as it was.
  private func replaceSession(with text: String) {
    let result = SessionProgram().check(blocks: text, catalog: catalog, positionals: positionals, options: checkOptions)
    let diagnostics = result.checked.diagnostics
    if !diagnostics.isEmpty { printError(SessionProgram.render(diagnostics, of: result, renderer: renderer), newline: false) }
    if diagnostics.hasErrors { return printError("the session is unchanged") }
    var next = SessionProgram()
    next.declarations = next.newDeclarations(in: result)
    next.blocks = next.newBlocks(in: result)
    var changed: [Int] = []
    for i in next.blocks.indices {
      if i < program.blocks.count && program.blocks[i].text == next.blocks[i].text {
        next.blocks[i].attached = program.blocks[i].attached
      } else {
        changed.append(i)
      }
    }
    let plan: Plan
    do {
      plan = try Planner.plan(result.checked)
    } catch {
      printError(SessionProgram.render(error.diagnostics, of: result, renderer: renderer), newline: false)
      return printError("the session is unchanged")
    }
    do {
      try live.install(plan, attached: next.attachedFlags, newBlocks: changed)
    } catch {
      live.flushOutput()
      printError(error.render(renderer: renderer, source: result.source), newline: false)
      return printError("the session is unchanged")
    }
    for i in changed where next.blocks[i].kind == .begin { next.blocks[i].attached = false }
    program = next
    mapsDirty = true
    if live.exitRequested { stopProbes() }
  }

  /// Runs `editor FILE` through the shell (so `EDITOR="code -w"` works) on the terminal, with the
  /// signals Scry blocks for its signalfd unblocked; returns its exit status.
  private static func runInTerminal(_ editor: String, _ file: String) -> Int32 {
    let pid = fork()
    if pid == 0 {
      var none = sigset_t()
      sigemptyset(&none)
      sigprocmask(SIG_SETMASK, &none, nil)
      let argv: [UnsafeMutablePointer<CChar>?] = [
        strdup("/bin/sh"), strdup("-c"), strdup(editor + " \"$1\""), strdup("sh"), strdup(file), nil,
      ]
      execv("/bin/sh", argv)
      _exit(127)
    }
    guard pid > 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  private func save(to path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return printError("cannot write '\(path)': \(String(cString: strerror(errno)))") }
    writeAll(fd, program.scriptText)
    close(fd)
    writeAll(1, "saved \(program.blocks.count) block\(program.blocks.count == 1 ? "" : "s") to \(path)\n")
  }
}
