import Glibc
import ScryRuntime

extension ScryCommand {
  /// `scry`, `scry -i`, `scry --repl`: the interactive session, or a replay of REPL input when
  /// stdin is not a terminal. Arguments are the positional parameters $1, $2…
  func runREPL() throws -> Int32 {
    var options = SessionOptions()
    options.positionals = arguments
    options.allowsUnsafe = unsafe
    options.format = f == .json ? .json : .text
    options.targetPid = p
    options.failOnLost = lost == .fail
    options.ringPages = bufferPages
    options.allowsBPF = !noBPF
    let repl: REPL
    do {
      repl = try REPL(options: options, interactive: isatty(0) != 0)
    } catch {
      printError("scry: cannot start the REPL: \(error)")
      return 1
    }
    return repl.run()
  }
}

/// Everything on standard input: the script of `echo 'BEGIN { … }' | scry`.
func readAllStandardInput() -> String {
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  while true {
    let n = read(0, &chunk, chunk.count)
    if n < 0 && errno == EINTR { continue }
    if n <= 0 { break }
    bytes += chunk[0..<n]
  }
  return String(decoding: bytes, as: UTF8.self)
}
