import Glibc

/// Runs work that recurses over a script's syntax tree on a thread with a large stack.
///
/// The parser caps nesting (`Parser.maxDepth`, `Parser.maxHeight`), but the checker walks the tree
/// recursively with about 10 KiB of stack per level in a debug build, so a chain of 900 `+` overflows
/// the main thread's 8 MiB. A thread's stack is reserved, not committed: 256 MiB costs only the pages
/// touched. Raising RLIMIT_STACK instead would leak into the commands `-c` and `system()` start.
enum LargeStack {
  static let size = 256 << 20

  /// `body` on a fresh thread with a `size` stack while the caller waits; on the calling thread
  /// if no thread can be created.
  static func run<T>(_ body: () -> T) -> T {
    withoutActuallyEscaping(body) { body in
      let job = LargeStackJob(body)
      var attributes = pthread_attr_t()
      pthread_attr_init(&attributes)
      defer { pthread_attr_destroy(&attributes) }
      pthread_attr_setstacksize(&attributes, size)
      var thread = pthread_t()
      let context = Unmanaged<LargeStackWork>.passRetained(job).toOpaque()
      let created = pthread_create(&thread, &attributes, { context in
        Unmanaged<LargeStackWork>.fromOpaque(context!).takeRetainedValue().perform()
        return nil
      }, context)
      guard created == 0 else {
        Unmanaged<LargeStackWork>.fromOpaque(context).release()
        return body()
      }
      pthread_join(thread, nil)
      return job.result!
    }
  }
}

/// Work handed to the thread by pointer; non-generic so the C entry point can call it.
private class LargeStackWork {
  func perform() {}
}

/// The work and, once the thread has run, its result; the caller reads it only after `pthread_join`.
private final class LargeStackJob<T>: LargeStackWork {
  let body: () -> T
  var result: T?
  init(_ body: @escaping () -> T) { self.body = body }
  override func perform() { result = body() }
}
