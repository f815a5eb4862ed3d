/// Where BPF programs' samples arrive: one `bpf-output` perf event and ring per online
/// CPU, and the perf event array (index = CPU) that `bpf_perf_event_output` writes through.
///
/// Each sample is a PERF_RECORD_SAMPLE whose RAW part (`PerfSample.raw`) starts with the
/// bytes the program sent (the kernel pads the raw size to keep records 8-byte aligned).
/// Start it with `enable()`: the kernel drops output aimed at a disabled event.
public final class BPFOutputChannel {
  /// The perf event array to pass to programs (`TracepointFetchProgram` outputMapFD).
  public let map: BPFMap
  /// One `bpf-output` event per online CPU.
  public let events: [PerfEvent]
  /// `rings[i]` is mapped on `events[i]`.
  public let rings: [PerfRing]
  /// The sample fields each record carries (RAW always included).
  public let sampleType: PerfSampleType

  /// Opens the per-CPU events (with `sampleType` plus RAW) and their rings of `dataPages`
  /// pages, and stores each event at its CPU's index in a new perf event array.
  public init(sampleType: PerfSampleType = [.raw], dataPages: Int = 64) throws {
    let type = sampleType.union(.raw)
    map = try BPFMap.perfEventArray(entries: BPFMap.possibleCPUCount())
    var events: [PerfEvent] = []
    var rings: [PerfRing] = []
    for cpu in SystemInfo.onlineCPUs() {
      let event = try PerfEvent.software(
        .bpfOutput, description: "bpf-output", cpu: cpu, options: .init(sampleType: type))
      rings.append(try PerfRing(event: event, dataPages: dataPages))
      events.append(event)
      try map.update(index: UInt32(cpu), fd: event.fd)
    }
    self.events = events
    self.rings = rings
    self.sampleType = type
  }

  /// Starts accepting samples on every CPU.
  public func enable() throws {
    for event in events { try event.enable() }
  }

  /// Stops accepting samples (those in the rings stay there).
  public func disable() throws {
    for event in events { try event.disable() }
  }
}

/// One tracepoint whose hits run a fetch program: the scratch map, the loaded program and
/// the one perf event it is attached to.
///
/// The program runs for hits on every CPU as soon as it is attached (a tracepoint's BPF
/// programs belong to the tracepoint, not to a CPU, and enabling the carrier event changes
/// nothing), so `init` attaches last. To pause delivery, disable the `BPFOutputChannel`
/// (the program still runs, its output is dropped); releasing this object closes the
/// event and so detaches the program.
public final class TracepointFetchProbe {
  public let fetch: TracepointFetch
  public let scratch: BPFMap
  public let program: BPFProgram
  /// The tracepoint event (opened on one CPU, counting only) that carries the program.
  public let event: PerfEvent

  /// Loads the fetch program for `fetch` writing into `channel` and attaches it to
  /// tracepoint `id`. `description` (e.g. "tracepoint:syscalls:sys_enter_openat") names it
  /// in errors; `cpu` is where the carrier event is opened (any online CPU will do).
  public init(
    tracepointID id: UInt64, description: String, fetch: TracepointFetch, channel: BPFOutputChannel,
    cpu: Int32? = nil
  ) throws {
    try fetch.validate()
    self.fetch = fetch
    scratch = try BPFMap.perCPUArray(valueSize: fetch.sampleSize, entries: 1)
    let instructions = TracepointFetchProgram.instructions(
      for: fetch, outputMapFD: channel.map.fd, scratchMapFD: scratch.fd)
    let name = description.split(separator: ":").last.map(String.init) ?? "scry_fetch"
    program = try BPFProgram.loadTracepointProgram(instructions, name: name)
    let carrierCPU = cpu ?? SystemInfo.onlineCPUs().first ?? 0
    event = try PerfEvent.tracepoint(
      id: id, description: description, cpu: carrierCPU, options: .init(countingOnly: true, startDisabled: false))
    try event.attach(program)
  }
}
