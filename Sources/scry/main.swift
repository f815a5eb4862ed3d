// The `scry` command. `ScryCommand.runAndExit()` owns exit status: 0 success, 1 script or kernel errors, 2 usage.
import ScryKernel

// Scry's own executable started as the SIGCONT guardian of a process its watchpoints stop (see
// `ContinueGuardian`): nothing else of Scry runs in it.
ContinueGuardian.runIfRequested(CommandLine.arguments)
ScryCommand.runAndExit()
