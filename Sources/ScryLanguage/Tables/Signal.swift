/// Linux signal names and numbers (x86-64): the one table `signal("SIGWINCH")` is checked and
/// lowered against, so a name the checker accepts is the number the runtime sends.
public enum Signal {
  /// Names without the `SIG` prefix, by number.
  public static let table: [(name: String, number: Int32)] = [
    ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("BUS", 7), ("FPE", 8), ("KILL", 9),
    ("USR1", 10), ("SEGV", 11), ("USR2", 12), ("PIPE", 13), ("ALRM", 14), ("TERM", 15), ("STKFLT", 16), ("CHLD", 17),
    ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22), ("URG", 23), ("XCPU", 24), ("XFSZ", 25),
    ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29), ("PWR", 30), ("SYS", 31),
  ]

  /// The number of `SIGTERM`, `TERM` or `15` (1…64, real-time signals included); nil otherwise.
  public static func number(named name: String) -> Int32? {
    if let n = Int32(name) { return n > 0 && n <= 64 ? n : nil }
    let bare = name.hasPrefix("SIG") ? String(name.dropFirst(3)) : name
    return table.first { $0.name == bare }?.number
  }
}
