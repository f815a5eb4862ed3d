import ScryKernel
import ScryLanguage

/// How a session runs: what the command line (or the REPL) asked for.
public struct SessionOptions: Sendable {
  public var positionals: [String] = []
  public var allowsUnsafe = false
  public var format: OutputFormat = .text
  /// `-o FILE`; nil for standard output.
  public var outputPath: String?
  /// `-p PID`: every probe but BEGIN/END follows this process; the session ends when it exits.
  public var targetPid: Int32?
  /// `-c CMD`: started with the probes attached; the session ends when it exits.
  public var command: String?
  /// `--lost fail`: lost events make the exit status 1.
  public var failOnLost = false
  /// `--stats`: report on stderr how many samples the rings delivered.
  public var printsStatistics = false
  /// `--no-bpf` clears it: no BPF program is loaded (tracepoints through perf only, pointer
  /// data read from the process, dynamic probes counted by perf).
  public var allowsBPF = true
  /// Ring data pages per CPU.
  public var ringPages = 1024
  /// Entries a map may hold before further inserts are dropped (and reported).
  public var maxMapEntries = 1 << 20
  /// `-q` clears it: no "Attaching N probes..." line (nor its json record).
  public var announcesProbes = true
  /// bpftrace's `__BPFTRACE_NOTIFY_PROBES_ATTACHED`: once every probe is attached (and a `-c`
  /// command started), a line on stderr says so; bpftrace's runtime test harness waits for it.
  public var notifiesProbesAttached = false
  /// `-B line` or `none`: output reaches the fd after every event's action, not in batches.
  public var flushesEachEvent = false
  /// Bytes `cat()` copies from a file (bpftrace's `BPFTRACE_CAT_BYTES_MAX`).
  public var catBytesMax = 10 * 1024
  /// `-f folded`: at exit, maps keyed by stacks print as folded stacks for flame graphs.
  public var foldsStacks = false
  /// `--flamegraph FILE.svg`: at exit, the maps keyed by stacks are drawn into this file.
  public var flameGraphPath: String?
  /// A config block's `print_maps_on_exit = false` clears it: nothing prints at exit.
  public var printsMapsOnExit = true
  /// SIGHUP ends the run for a reload (`Session.endedForReload`) instead of ending it: no END, no
  /// maps printed (an exporter re-reading its script file).
  public var reloadsOnHangup = false
  /// `-o FILE` is appended to rather than truncated (the program after a reload).
  public var appendsOutput = false
  /// bpftrace 0.17's way: a run with nothing to wait for after BEGIN (no events, timers, traced
  /// process or service) still runs until a signal or `exit()`, so `END { … }` alone waits for
  /// Ctrl-C. Off, such a run ends after BEGIN (the REPL's statements, SystemTap's begin blocks).
  public var waitsWhenIdle = false
  /// `-k` (1) and `-kk` (2): bpftrace's helper-error warnings where Scry's map accesses would
  /// fail in its BPF (a delete of an absent key; with 2, a read of one too); at 2 also each read
  /// of memory that fails at an event, said where it is written (see `HelperErrors`).
  public var helperChecks = 0

  public init() {}
}

/// Why a session could not start: script features the runtime lacks, or the kernel said no.
public enum SessionError: Error, CustomStringConvertible {
  case diagnostics([Diagnostic])
  case failure(String)
  /// A kernel call failed: kept whole (operation, probe, CPU, errno), for the CLI and for tests.
  case kernel(KernelError)

  /// `error` as a session error: kernel errors stay typed, anything else becomes its text.
  init(_ error: any Error) {
    switch error {
    case let error as SessionError: self = error
    case let error as KernelError: self = .kernel(error)
    default: self = .failure("\(error)")
    }
  }

  public var description: String {
    switch self {
    case .diagnostics(let diagnostics): return diagnostics.map(\.message).joined(separator: "\n")
    case .failure(let message): return message
    case .kernel(let error): return error.description
    }
  }

  /// The error as the CLI prints it.
  public func render(renderer: DiagnosticRenderer, source: SourceFile) -> String {
    switch self {
    case .diagnostics(let diagnostics): return renderer.render(diagnostics, in: source)
    case .failure(let message): return "ERROR: " + message + "\n"
    case .kernel(let error): return "ERROR: " + error.description + "\n"
    }
  }
}
