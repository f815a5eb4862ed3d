import Glibc
import ScryKernel

/// Names and process ids of tasks, for `comm` and `pid` of events that carry only a thread id.
/// Filled lazily from /proc and kept current by the rings' COMM, FORK and EXIT records, so a task
/// that exec'd is named by its new program and one that exited keeps the name it had.
public final class ProcessTable {
  private struct Task {
    var name: TaskName
    var pid: UInt32
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    /// CLOCK_MONOTONIC time of what named it: the COMM or FORK record, or the read of /proc.
    /// Rings are drained one after another, so a task's fork and execs can arrive out of order,
    /// and after /proc showed the result; the newest wins.
    var stamp: UInt64 = 0
  }

  private var tasks: [UInt32: Task] = [:]
  /// The task looked up last: events come in runs from the same thread, and a hit here spares
  /// the dictionary's hashing on the per-sample path.
  private var recentTid: UInt32 = .max
  private var recent = Task(name: TaskName(string: ""), pid: 0)

  public init() {}

  @inline(__always)
  private func task(_ tid: UInt32) -> Task {
    if tid == recentTid { return recent }
    recent = tasks[tid] ?? load(tid)
    recentTid = tid
    return recent
  }

  /// The task's name; read from /proc the first time a task is seen.
  public func comm(of tid: UInt32) -> TaskName { task(tid).name }

  public func processID(of tid: UInt32) -> UInt32 { task(tid).pid }

  /// The task's real user and group ids, as /proc showed them when the task was first seen
  /// (a later setuid is not followed: perf reports no credential changes).
  public func credentials(of tid: UInt32) -> (uid: UInt32, gid: UInt32) {
    let task = task(tid)
    return (task.uid, task.gid)
  }

  /// A COMM record (an exec or a rename) stamped `time`.
  func update(tid: UInt32, pid: UInt32, name: UnsafeRawBufferPointer, time: UInt64) {
    // A task first seen here takes the record's name over what /proc shows by now.
    if time != 0, let known = tasks[tid], time < known.stamp { return }
    var task = tasks[tid] ?? load(tid)
    task.name = TaskName(bytes: name)
    task.pid = pid
    task.stamp = time
    tasks[tid] = task
    recentTid = .max
  }

  /// A FORK record stamped `time`: the new task starts with its parent's name and credentials.
  func inherit(tid: UInt32, pid: UInt32, from parent: UInt32, time: UInt64) {
    if time != 0, let existing = tasks[tid], time < existing.stamp { return }
    var task = tasks[parent] ?? load(parent)
    task.pid = pid
    task.stamp = time
    tasks[tid] = task
    recentTid = .max
  }

  private func load(_ tid: UInt32) -> Task {
    var task = Task(name: TaskName(bytes: UnsafeRawBufferPointer(start: nil, count: 0)), pid: tid)
    task.stamp = Clock.monotonicNanoseconds()
    if tid == 0 {
      task.name = TaskName(string: "swapper/0")
    } else {
      if let name = try? FileSystem.readText("/proc/\(tid)/comm") {
        task.name = TaskName(string: name.hasSuffix("\n") ? String(name.dropLast()) : name)
      }
      if let status = try? FileSystem.readText("/proc/\(tid)/status") {
        for line in status.split(separator: "\n") {
          // `Uid:` and `Gid:` list real, effective, saved and filesystem ids; bpftrace reports the real one.
          let value = line.drop { $0 != ":" }.dropFirst().trimmingCharacters()
          let first = UInt32(value.prefix { $0 != "\t" && $0 != " " })
          if line.hasPrefix("Tgid:"), let first { task.pid = first }
          if line.hasPrefix("Uid:"), let first { task.uid = first }
          if line.hasPrefix("Gid:"), let first { task.gid = first }
        }
      }
    }
    tasks[tid] = task
    return task
  }
}

extension Substring {
  func trimmingCharacters() -> Substring {
    var s = self
    while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
    while let last = s.last, last == " " || last == "\t" || last == "\n" { s = s.dropLast() }
    return s
  }
}
