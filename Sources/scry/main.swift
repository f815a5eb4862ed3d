// The `scry` command. `ScryCommand.runAndExit()` owns exit status: 0 success, 1 script or kernel errors, 2 usage.
ScryCommand.runAndExit()
