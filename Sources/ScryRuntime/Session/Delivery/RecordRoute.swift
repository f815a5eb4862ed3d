import ScryKernel

/// Where the samples of one kernel event go: the action to run and how to read the sample.
/// Holds no references it counts: the session keeps the action and the probe name alive.
struct RecordRoute {
  /// The probe block's action; the session keeps it alive, the route does not count references.
  var action: Unretained<Action>
  var decoder: PerfSampleDecoder
  var probeName: UnsafeRawBufferPointer
  /// The function a uprobe is placed in, for `func`; empty for other probes.
  var functionName: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
  /// The kernel filter took the whole predicate: the action need not evaluate it again.
  var skipPredicate: Bool
  /// tid comes from the record's `common_pid` (PERF_SAMPLE_TID not requested).
  var tidFromRecord: Bool
  /// Where PERF_SAMPLE_TIME sits in the sample, found once from the sample type; nil without time.
  var timeOffset: Int?
  /// Where a capture program's own fields sit in its records; nil for perf samples, which
  /// carry none (the task's name then comes from the process table).
  var captured: CapturedFields?
  /// `-kk`: the reads of each record that failed are said before its action.
  var failedReads: Unretained<FailedReadReport>?

  /// Byte offsets in a capture program's record, -1 for a field it does not write. Kept small:
  /// the route is read for every sample.
  struct CapturedFields {
    var comm: Int32 = -1
    var credentials: Int32 = -1
    var kernelStack: Int32 = -1
    var userStack: Int32 = -1
  }

  init(
    action: Action, probeName: UnsafeRawBufferPointer, sampleType: PerfSampleType, skipPredicate: Bool,
    commOffset: Int?, credentialsOffset: Int? = nil, kernelStackOffset: Int? = nil, userStackOffset: Int? = nil
  ) {
    self.action = Unretained(action)
    self.decoder = PerfSampleDecoder(sampleType: sampleType)
    self.probeName = probeName
    self.skipPredicate = skipPredicate
    self.tidFromRecord = !sampleType.contains(.tid)
    self.timeOffset = Self.timeOffset(in: sampleType)
    if commOffset != nil || credentialsOffset != nil || kernelStackOffset != nil || userStackOffset != nil {
      captured = CapturedFields(
        comm: Int32(commOffset ?? -1), credentials: Int32(credentialsOffset ?? -1),
        kernelStack: Int32(kernelStackOffset ?? -1), userStack: Int32(userStackOffset ?? -1))
    }
  }

  /// perf lays a sample out as IDENTIFIER, IP, TID, TIME, …: time follows the fields before it.
  static func timeOffset(in type: PerfSampleType) -> Int? {
    guard type.contains(.time) else { return nil }
    return (type.contains(.identifier) ? 8 : 0) + (type.contains(.ip) ? 8 : 0) + (type.contains(.tid) ? 8 : 0)
  }
}
