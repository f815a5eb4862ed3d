import ArgumentParser
import Glibc
import ScryLanguage

/// bpftrace's command line where it means something to Scry: `-V`, `--info`, `-B`, environment
/// limits, the root check. Kept apart from `run()` so that stays a short pipeline.
extension ScryCommand {
  /// The bpftrace release whose language and output Scry follows.
  static let bpftraceVersion = "0.17.0"

  /// What `-V` and `--version` print: Scry's version, then the bpftrace it stands in for, as
  /// wrappers look for `bpftrace v` in `bpftrace --version`.
  static var versionLine: String { "scry v\(version) (bpftrace v\(bpftraceVersion) compatible)" }

  /// Work done before any script is read: `-V`, `--info`, the environment, `-l` without privileges.
  /// Throws the exit code when the command is finished or refused.
  func preflight() throws -> TracingEnvironment {
    if showsVersion {
      writeAll(1, Self.versionLine + "\n")
      throw ExitCode(0)
    }
    if info {
      writeAll(1, KernelInfo.report())
      throw ExitCode(0)
    }
    let environment: TracingEnvironment
    do {
      environment = try TracingEnvironment.read()
    } catch {
      printError(error.description)
      throw ExitCode(2)
    }
    if l && !Privileges.canTrace {
      printError(Privileges.refusal)
      throw ExitCode(1)
    }
    return environment
  }

  /// The program and its positional parameters: `-e PROGRAM [ARGS…]`, `FILE [ARGS…]`, `- [ARGS…]`
  /// (standard input), or standard input when nothing names a script.
  /// `-p PID` as bpftrace validates it, with its messages: decimal digits, within the kernel's
  /// largest pid_max.
  static func validatePid(_ text: String) throws {
    let maximum = 4_194_304
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
      printError("ERROR: pid '\(text)' is not a valid decimal number")
      throw ExitCode(1)
    }
    guard let value = Int(text), value >= 1, value <= maximum else {
      printError("ERROR: pid '\(text)' out of valid pid range [1,\(maximum)]")
      throw ExitCode(1)
    }
  }

  /// `-l`: the probes of a program (`-e`, or a FILE that exists), else those matching a pattern.
  /// A pattern named like a script file that does not exist gets bpftrace's warning.
  func listProbes() throws -> Bool {
    if let program = e { return ProbeListing.listProgram(SourceFile(name: "-e", text: program), pid: p) }
    guard let pattern = arguments.first else { return ProbeListing.list(pattern: "*", verbose: v, pid: p) }
    var status = stat()
    if stat(pattern, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG {
      let (source, _) = try readScript()
      return ProbeListing.listProgram(source, pid: p)
    }
    if let bad = ProbeListing.invalidCharacter(in: pattern) {
      // bpftrace's words: it reads the pattern as a probe, and its lexer refuses the character.
      printError("ERROR: invalid character '\(bad)' in the search pattern '\(pattern)'")
      return false
    }
    if pattern.hasSuffix(".bt") && !pattern.contains(":") {
      printError("WARNING: It appears that '\(pattern)' is a filename but the file does not exist. Treating '\(pattern)' as a search pattern.")
    }
    return ProbeListing.list(pattern: pattern, verbose: v, pid: p)
  }

  func readScript() throws -> (SourceFile, [String]) {
    do {
      if let program = e { return (SourceFile(name: "-e", text: program), arguments) }
      guard let path = arguments.first else {
        let source = SourceFile(name: "stdin", text: try ScriptInput.readStandardInput())
        if source.text.allSatisfy(\.isWhitespace) {
          printError("scry: no program on standard input; give one with -e, a .trace file, or run scry on a terminal")
          throw ExitCode(2)
        }
        return (source, [])
      }
      return (try ScriptInput.read(path: path), Array(arguments.dropFirst()))
    } catch let failure as ScriptInput.Failure {
      printError(failure.description)
      throw ExitCode(1)
    }
  }

  /// Refuses, before the checker looks anything up, a program with kernel probes when this process
  /// may not trace: otherwise the first symptom is a misleading "unknown tracepoint".
  func refuseWithoutPrivileges(_ source: SourceFile) throws {
    guard !Privileges.canTrace else { return }
    let (program, _) = Parser.parse(source)
    let needsKernel = program.probes.contains { probe in
      probe.specs.contains { ProbeKind(provider: $0.provider)?.hasEventContext ?? true }
    }
    guard needsKernel else { return }
    printError(Privileges.refusal)
    throw ExitCode(1)
  }
}

/// `-B`: how output is buffered, as bpftrace's `-B line|full|none`.
enum OutputBufferingOption: String, ExpressibleByArgument, CaseIterable {
  case line, full, none
}
