import Glibc
import ScryKernel
import ScryLanguage
import ScryPlan
import ScryRuntime

/// The interactive session: `scry`, `scry -i`, `scry --repl`. Probe blocks typed at the prompt are
/// checked against the session, attached at once and keep running while the user types; statements
/// run at once against the live maps; `.commands` inspect and change the session.
/// On a terminal it edits lines with readline; otherwise (`scry -i < session.txt`) it replays its input.
final class REPL {
  static let prompt = "scry> "
  static let continuationPrompt = "  ... "

  let live: LiveSession
  var program = SessionProgram()
  let catalog = TraceFSCatalog()
  let checkOptions: CheckOptions
  let positionals: [String]
  let renderer: DiagnosticRenderer
  let interactive: Bool
  var editor: LineEditor?
  /// Lines of an entry still open (a block not closed yet).
  var pending: [String] = []
  var done = false
  /// Maps changed since they were last printed by a stop: leaving prints them.
  var mapsDirty = false

  init(options: SessionOptions, interactive: Bool) throws {
    self.interactive = interactive
    live = try LiveSession(options: options, inputFD: interactive ? 0 : nil)
    checkOptions = CheckOptions(allowsUnsafe: options.allowsUnsafe)
    positionals = options.positionals
    renderer = DiagnosticRenderer(useColor: interactive && isatty(2) != 0)
  }

  /// Runs until `.quit`, Ctrl-D, SIGTERM or the end of the replayed input; returns the exit status.
  func run() -> Int32 {
    if interactive { runInteractive() } else { runReplay() }
    leave()
    return 0
  }

  // MARK: Loops

  private func runInteractive() {
    let editor = LineEditor(prompt: Self.prompt, historyPath: Self.historyPath())
    self.editor = editor
    let completion = Completion(catalog: catalog, mapNames: { [live] in live.maps.map(\.name) })
    LineEditor.completer = { word, before in completion.candidates(word: word, lineBefore: before) }
    editor.install(prompt: Self.prompt)
    while !done {
      let wake = live.wait(timeoutMilliseconds: -1)
      showPendingOutput()
      switch wake {
      case .input?:
        // A line and what was typed after it (a Ctrl-D) can come in one read: readline keeps the
        // rest, which the terminal no longer reports, so it is fed until its buffer is empty.
        repeat {
          editor.readAvailable()
          for line in editor.takeLines() where !done { accept(line) }
          if !done && !editor.isInstalled {
            editor.install(prompt: pending.isEmpty ? Self.prompt : Self.continuationPrompt)
          }
        } while !done && editor.hasBufferedInput
      case .interrupt?:
        if live.isRunning {
          editor.printAbove { stopProbes() }
        } else {
          pending = []
          editor.discardLine(prompt: Self.prompt)
        }
      case .exitRequested?:
        editor.printAbove { stopProbes() }
      case .resize?:
        editor.resizeTerminal()
      case .terminate?:
        done = true
      case nil:
        break
      }
    }
    editor.remove()
  }

  /// Replays REPL input from a file or pipe: the same entries, no line editing, no prompt.
  private func runReplay() {
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    var atEnd = false
    while !done {
      if let newline = buffer.firstIndex(of: 0x0A) {
        let line = String(decoding: buffer[..<newline], as: UTF8.self)
        buffer.removeSubrange(...newline)
        accept(line)
        pump(milliseconds: 0)
        continue
      }
      if atEnd {
        if !buffer.isEmpty {
          accept(String(decoding: buffer, as: UTF8.self))
          buffer = []
        }
        if !pending.isEmpty { accept("") }
        // Like a script: what is still attached runs until exit() or Ctrl-C.
        if live.isRunning && !done { pump(milliseconds: -1) }
        return
      }
      let n = read(0, &chunk, chunk.count)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { atEnd = true } else { buffer += chunk[0..<n] }
    }
  }

  /// Lets the probes run for `milliseconds` (-1: until they stop, by exit() or Ctrl-C).
  func pump(milliseconds: Int) {
    let deadline = Clock.monotonicNanoseconds() + UInt64(max(milliseconds, 0)) * 1_000_000
    repeat {
      let now = Clock.monotonicNanoseconds()
      if milliseconds >= 0 && now >= deadline && milliseconds > 0 { break }
      let left = milliseconds < 0 ? Int32(-1) : Int32(clamping: (deadline &- now) / 1_000_000)
      let wake = live.wait(timeoutMilliseconds: milliseconds == 0 ? 0 : left)
      showPendingOutput()
      switch wake {
      case .interrupt?, .exitRequested?:
        if live.isRunning { stopProbes() }
        if milliseconds < 0 { return }
      case .terminate?:
        done = true
        return
      default:
        break
      }
      if milliseconds < 0 && !live.isRunning { return }
    } while milliseconds != 0
  }

  private func showPendingOutput() {
    guard live.hasPendingOutput else { return }
    if let editor { editor.printAbove { live.flushOutput() } } else { live.flushOutput() }
  }

  // MARK: Entries

  /// One line from the editor or the replayed input; nil is Ctrl-D.
  func accept(_ line: String?) {
    guard let line else {
      if interactive { writeAll(1, "\n") }
      done = true
      return
    }
    pending.append(line)
    let text = pending.joined(separator: "\n")
    let kind = InputScanner.kind(of: text)
    if kind != .empty && kind != .command
      && !InputScanner.isComplete(text, kind: kind, lastLineEmpty: pending.count > 1 && line.isEmpty)
    {
      return
    }
    pending = []
    if kind == .empty { return }
    editor?.remember(text)
    switch kind {
    case .command: command(text.drop { $0 == " " || $0 == "\t" })
    case .program: addBlocks(text, language: .bpftrace)
    case .systemTap: addBlocks(text, language: .systemTap)
    case .statement: runStatement(text)
    case .empty: break
    }
    live.flushOutput()
  }

  /// Probe blocks: checked with the session, then attached at once; BEGIN blocks run now. A
  /// session holds one language, the one its first entry was written in.
  func addBlocks(_ text: String, language: ScriptLanguage) {
    if let current = program.language, current != language {
      let (session, entry) = current == .systemTap ? ("SystemTap's", "a bpftrace block") : ("bpftrace's", "a SystemTap entry")
      return printError(
        "error: this session runs \(session) language (its first entry did): \(entry) cannot join it\n"
          + "  hint: the two name and print globals apart ('count' is '@count'); '.clear' starts a new session in either")
    }
    let result = program.check(blocks: text, language: language, catalog: catalog, positionals: positionals, options: checkOptions)
    let diagnostics = result.checked.diagnostics
    if !diagnostics.isEmpty { printError(SessionProgram.render(diagnostics, of: result, renderer: renderer), newline: false) }
    if diagnostics.hasErrors { return }
    program.declarations += program.newDeclarations(in: result)
    let added = program.newBlocks(in: result)
    // A global or a function alone: nothing to attach, but later entries use it.
    if added.isEmpty && language == .systemTap { program.systemTapEntries.append(text) }
    install(result, added: added)
  }

  private func install(_ result: SessionProgram.Checked, added: [SessionProgram.Block], announce: Bool = true) {
    guard !added.isEmpty, let plan = plan(result) else { return }
    let first = program.blocks.count
    var next = program
    next.blocks += added
    if result.language == .systemTap { next.systemTapEntries.append(result.entry) }
    do {
      try live.install(
        plan, attached: next.attachedFlags, newBlocks: Array(first..<next.blocks.count), announce: announce)
    } catch {
      live.flushOutput()
      printError(error.render(renderer: renderer, source: result.source), newline: false)
      return
    }
    // BEGIN blocks ran once; they are kept for `.save` but never attached again.
    for i in first..<next.blocks.count where next.blocks[i].kind == .begin { next.blocks[i].attached = false }
    program = next
    mapsDirty = true
    if live.exitRequested { stopProbes() }
  }

  /// A statement or expression, run once against the live maps. One that creates a map joins the
  /// session as a BEGIN block (so the map keeps its type, and `.save` keeps it).
  func runStatement(_ text: String) {
    let result = program.check(statement: text, catalog: catalog, positionals: positionals, options: checkOptions)
    let diagnostics = result.checked.diagnostics
    if !diagnostics.isEmpty { printError(SessionProgram.render(diagnostics, of: result, renderer: renderer), newline: false) }
    if diagnostics.hasErrors { return }
    noteEventBuiltins(in: result.checked)
    let known = Set(live.maps.map(\.name))
    if result.checked.maps.contains(where: { !known.contains($0.name) }) {
      let block = SessionProgram.Block(text: program.beginBlock(text), specs: "BEGIN", kind: .begin, attached: true)
      let wrapped = program.check(
        blocks: block.text, language: program.language ?? .bpftrace, catalog: catalog, positionals: positionals, options: checkOptions)
      if !wrapped.checked.diagnostics.hasErrors {
        // Quietly: the user typed a statement, not a probe.
        install(wrapped, added: [block], announce: false)
        return
      }
    }
    guard let plan = plan(result) else { return }
    do {
      try live.runOnce(block: program.blocks.count, of: plan)
    } catch {
      printError(error.render(renderer: renderer, source: result.source), newline: false)
    }
  }

  /// A statement at the prompt runs once, now, as BEGIN would: a builtin that names an event's
  /// task (`count[comm]++`) then names Scry's own, which is rarely what was meant. Say so.
  private func noteEventBuiltins(in checked: CheckedProgram) {
    guard let block = checked.program.probes.last else { return }
    let eventBuiltins: Set<Builtin> = [.comm, .pid, .tid, .cpu, .uid, .gid, .username, .cgroup, .curtask]
    var found: Builtin?
    block.forEachExpression { e in
      if case .builtin(let builtin)? = checked.resolutions[e.id], eventBuiltins.contains(builtin) { found = builtin }
    }
    guard let found else { return }
    printError(
      "note: a statement at the prompt runs once, now, as in BEGIN: '\(found.name)' is Scry's own here\n"
        + "  hint: to trace events, give a probe: 'tracepoint:sched:sched_switch { count[comm]++ }'")
  }

  /// The plan of an entry that checked clean; nil after showing what the runtime cannot evaluate.
  private func plan(_ result: SessionProgram.Checked) -> Plan? {
    do {
      return try Planner.plan(result.checked)
    } catch {
      printError(SessionProgram.render(error.diagnostics, of: result, renderer: renderer), newline: false)
      return nil
    }
  }

  /// Ctrl-C or exit() while probes run: detach them all, run pending END blocks, print the maps.
  func stopProbes() {
    live.stop(endBlocks: program.pendingEndBlocks)
    for i in program.blocks.indices { program.blocks[i].attached = false }
    mapsDirty = false
  }

  /// Leaving: END blocks run, maps are printed, every kernel resource is released.
  private func leave() {
    if program.hasAttachedBlocks || (mapsDirty && !live.maps.isEmpty) { stopProbes() }
    live.reset()
  }

  static func historyPath() -> String? {
    if let home = getenv("HOME"), home.pointee != 0 { return String(cString: home) + "/.scry_history" }
    if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) + "/.scry_history" }
    return nil
  }
}
