/// Work the event loop does between events for someone outside the runtime (an exporter's HTTP
/// listener, a push timer): one fd the loop waits on beside the rings. A session without services
/// waits exactly as before, so the one-liner path pays nothing for them.
public protocol LoopService: AnyObject {
  /// Readable when the service has work (its own epoll, a listener, a timerfd).
  var pollFD: Int32 { get }
  /// Called on the actions' thread once every pending event has been handed to its action; the
  /// snapshot is taken when (and only if) the service asks for it.
  func serve(snapshot: () -> MetricsSnapshot)
  /// The run is over (END has run): a last look at the maps, e.g. a final push.
  func finish(snapshot: () -> MetricsSnapshot)
}
