import CReadline
import Glibc

/// libreadline driven through its callback interface, so the REPL's epoll keeps serving events
/// while a line is being typed. Owns the history file. One per process: readline's state is global.
final class LineEditor {
  /// Lines readline finished, waiting for the REPL (nil: end of input, Ctrl-D).
  private(set) var completedLines: [String?] = []
  private let historyPath: String?
  private(set) var prompt: String
  private(set) var isInstalled = false

  /// The editor whose callbacks readline calls; readline is a process-wide singleton.
  nonisolated(unsafe) static var current: LineEditor?
  /// Tab completion, set by the REPL.
  nonisolated(unsafe) static var completer: ((_ word: String, _ lineBefore: String) -> [String]?)?

  init(prompt: String, historyPath: String?) {
    self.prompt = prompt
    self.historyPath = historyPath
    // SIGINT and SIGWINCH come through the REPL's signalfd, not readline's handlers.
    // '@', '$', ':', '.' and '/' stay inside words: map names, probe specs, paths.
    // The strings live as long as the process, as readline expects.
    scry_rl_configure(strdup("scry"), strdup(" \t\n\"'`><=;|&{}()[],+-*%!~^?")) { text, start, _ in
      LineEditor.complete(text, start)
    }
    if let historyPath {
      // Created private before anything is written to it; an existing file is made private too.
      let fd = open(historyPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
      if fd >= 0 { close(fd) }
      chmod(historyPath, 0o600)
      stifle_history(1000)
      read_history(historyPath)
    }
    LineEditor.current = self
  }

  /// Shows `prompt` and reads lines from now on. Each finished line removes the handler (so
  /// readline does not redraw a prompt while the REPL prints what the line did); the REPL
  /// installs it again, with the prompt that fits what follows. Removing the handler would also
  /// put the terminal back in canonical mode, where keys typed while the REPL works are cooked
  /// (a Ctrl-D becomes an end of file, not a byte readline can read): it is kept raw instead.
  func install(prompt: String) {
    self.prompt = prompt
    rl_callback_handler_install(prompt) { line in
      let text = line.map { String(cString: $0) }
      free(line)
      rl_callback_handler_remove()
      scry_rl_keep_terminal_raw()
      LineEditor.current?.isInstalled = false
      LineEditor.current?.completedLines.append(text)
    }
    isInstalled = true
  }

  /// Stops reading lines and gives the terminal back in the mode it had.
  func remove() {
    if isInstalled { rl_callback_handler_remove() }
    rl_deprep_terminal()
    isInstalled = false
  }

  /// Reads what the terminal has; completed lines land in `completedLines`.
  func readAvailable() { rl_callback_read_char() }

  /// Input readline holds in its own buffer: the terminal's fd will not wake the REPL for it.
  var hasBufferedInput: Bool { scry_rl_has_buffered_input() != 0 }

  func takeLines() -> [String?] {
    defer { completedLines.removeAll() }
    return completedLines
  }


  /// Adds an entry to the history and appends it to the history file.
  func remember(_ entry: String) {
    // One history line per entry: readline's file keeps one entry a line.
    let line = entry.split(separator: "\n", omittingEmptySubsequences: true).joined(separator: " ")
    guard !line.isEmpty else { return }
    add_history(line)
    if let historyPath {
      append_history(1, historyPath)
      history_truncate_file(historyPath, 1000)
    }
  }

  /// Prints `body`'s output above the line being typed: the prompt and the typed text are taken
  /// off the screen, the output written, then both put back with the cursor where it was.
  func printAbove(_ body: () -> Void) {
    guard isInstalled else { return body() }
    let point = scry_rl_point()
    let saved = rl_copy_text(0, scry_rl_end())
    rl_save_prompt()
    rl_replace_line("", 0)
    rl_redisplay()
    // The cursor is at the start of the (now empty) prompt line.
    body()
    rl_restore_prompt()
    rl_replace_line(saved ?? strdup(""), 0)
    free(saved)
    scry_rl_set_point(point)
    rl_on_new_line()
    rl_redisplay()
  }

  /// Ctrl-C with no probes running: forget the line (and any open block) and prompt afresh.
  func discardLine(prompt: String) {
    rl_replace_line("", 0)
    scry_rl_set_point(0)
    writeAll(1, "^C\n")
    remove()
    install(prompt: prompt)
  }

  func resizeTerminal() { rl_resize_terminal() }

  // MARK: Completion

  private static func complete(_ text: UnsafePointer<CChar>?, _ start: Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    let word = text.map { String(cString: $0) } ?? ""
    let line = scry_rl_line_buffer().map { String(cString: $0) } ?? ""
    let before = String(decoding: Array(line.utf8).prefix(Int(start)), as: UTF8.self)
    guard let matches = completer?(word, before) else {
      // nil: readline's own filename completion (after `.save`/`.load`).
      return nil
    }
    scry_rl_completion_over()
    guard !matches.isEmpty else { return nil }
    let unique = Array(Set(matches)).sorted()
    // A match that ends a level (`tracepoint:sched:`, a directory) is continued, not ended by a space.
    if unique.count == 1, let last = unique[0].last, [":", "/", "("].contains(last) {
      scry_rl_set_append_character(0)
    }
    // readline frees the array and its strings with free(): both come from malloc.
    let result = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (unique.count + 2))!
      .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: unique.count + 2)
    result[0] = strdup(commonPrefix(unique))
    var n = 1
    if unique.count > 1 {
      for match in unique {
        result[n] = strdup(match)
        n += 1
      }
    }
    result[n] = nil
    return result
  }

  private static func commonPrefix(_ words: [String]) -> String {
    guard var prefix = words.first.map({ Array($0.utf8) }) else { return "" }
    for word in words.dropFirst() {
      let bytes = Array(word.utf8)
      var i = 0
      while i < prefix.count, i < bytes.count, prefix[i] == bytes[i] { i += 1 }
      prefix = Array(prefix[0..<i])
    }
    return String(decoding: prefix, as: UTF8.self)
  }
}
