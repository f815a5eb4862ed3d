import ScryLanguage

/// Renders a plan for `scry --plan`: what will be attached, with which sample fields and
/// kernel filters, the maps with their types, and each block's action in the IR.
public enum PlanPrinter {
  /// `dynamicGroup` is the tracefs group this run would create its uprobes and kprobes in.
  /// `fetchPaths` says, per attachment index, how pointer data is fetched on this machine;
  /// `deliveryPaths`, how the samples of a tracepoint reach Scry when that is not through perf;
  /// `carriedBy`, which program carries an attachment in place of its own tracepoint, and
  /// `syscallFamilies`, per block, how its syscalls tracepoints are attached and why.
  public static func render(
    _ plan: Plan, dynamicGroup: String = "scry_PID", fetchPaths: [Int: String] = [:],
    deliveryPaths: [Int: String] = [:], carriedBy: [Int: String] = [:], syscallFamilies: [String] = []
  ) -> String {
    var out = "Plan: \(plan.attachments.count) attachment\(plan.attachments.count == 1 ? "" : "s")"
    out += ", \(plan.maps.count) map\(plan.maps.count == 1 ? "" : "s")\n"
    out += "\nattachments:\n"
    for (i, a) in plan.attachments.enumerated() {
      out += "  [\(i)] \(a.probe.name)\n"
      out += "      kind: \(describe(a.probe))\n"
      out += "      block: \(a.blockIndex)\n"
      guard a.probe.kind.hasEventContext else {
        if !a.eventReads.isEmpty {
          out += "      read at the event by: a BPF raw_tracepoint program run by Scry on its own thread just before the"
            + " block (BPF_PROG_TEST_RUN; \(a.eventReads.count) reads, as Scry's own task)\n"
        }
        continue
      }
      out += "      scope: \(a.scope)\n"
      if let counting = a.counting, let key = counting.key, case .stacks(let parts) = key.source,
        !parts.hasStack
      {
        out += "      mode: counting per key in the kernel (no ring): \(Self.describe(key.source)) taken at the event,"
          + " counted in a kernel hash map keyed by them, folded into \(plan.maps[counting.mapIndex].name) when it"
          + " prints; sampled instead where the kernel cannot count (a followed process, no BPF)\n"
      } else if let counting = a.counting, let key = counting.key, case .stacks(let stacks) = key.source {
        out += "      mode: counting per stack in the kernel (no ring): \(Self.describe(key.source)), stacks as ids in"
          + " BPF stack trace maps (bpf_get_stackid), counted in a kernel hash map keyed by them"
          + (stacks.contains { if case .stack(let stack) = $0 { !stack.isKernel } else { false } } ? " and the pid" : "")
          + ", named when \(plan.maps[counting.mapIndex].name) prints; sampled instead where the kernel cannot count"
          + " (a followed process, no BPF)\n"
      } else if let counting = a.counting, let key = counting.key {
        out += "      mode: counting per key in a kernel hash map (no ring), the key read at the event as"
          + " \(Self.describe(key.source))\(key.arithmetic.isEmpty ? "" : ", then " + key.arithmetic.map(\.text).joined(separator: ", ")); sampled instead where the kernel cannot count (a followed process, no BPF)\n"
      } else if let counting = a.counting, a.probe.kind == .profile {
        out += "      mode: counting (no ring; a BPF program counts each sample on each CPU, folded into"
          + " \(plan.maps[counting.mapIndex].name)); sampled instead where the kernel cannot count (a followed process,"
          + " no BPF)\n"
      } else if let counting = a.counting {
        let key = counting.isKeyedByProbe ? "[probe]" : ""
        out += "      mode: counting (no ring; kernel counter folded into \(plan.maps[counting.mapIndex].name)\(key))\n"
      } else if deliveryPaths[i] != nil {
        out += "      mode: sampling through the BPF ring (perf fields if BPF is refused: \(a.sampleFields))\n"
      } else {
        out += "      mode: sampling, fields: \(a.sampleFields)\n"
      }
      if let path = deliveryPaths[i] {
        out += "      delivered by: \(path)\n"
      }
      if let carrier = carriedBy[i] {
        out += "      carried by: \(carrier)\n"
      }
      if let dynamic = a.dynamicProbe {
        // With the capture program the probe is a uprobe_multi link (or a PMU event); tracefs serves the fallback.
        // So is a uprobe counted in the kernel.
        let when = (deliveryPaths[i] != nil || a.counting != nil) && !dynamic.isKernel ? " (if BPF is refused)" : ""
        out += "      \(dynamic.controlFile)\(when): \(dynamic.definition(group: dynamicGroup))\n"
      }
      if let fetch = a.pointerFetch {
        let items = fetch.items.map { item -> String in
          switch item {
          case .string(let offset, let maxLength, let user):
            return "string (\(maxLength) bytes, \(user ? "user" : "kernel") memory) behind the pointer at +\(offset)"
          case .stringArray(let offset, let count, let length):
            return "up to \(count) strings of \(length) bytes behind the pointer array at +\(offset)"
          }
        }
        out += "      pointer data: " + items.joined(separator: "; ") + "\n"
        out += "      fetched by: \(fetchPaths[i] ?? "a BPF program run when the event fires")\n"
      }
      if let filter = a.kernelFilter {
        out += "      kernel filter: \(filter)\(a.kernelFilterIsWholePredicate ? "" : " (rest of predicate in user space)")\n"
      }
    }
    if !syscallFamilies.isEmpty {
      out += "\nsyscall tracepoints:\n"
      for family in syscallFamilies { out += "  \(family)\n" }
    }
    out += "\nmaps:\n"
    if plan.maps.isEmpty { out += "  (none)\n" }
    for map in plan.maps {
      let key = map.keyTypes.isEmpty ? "no key" : "key (" + map.keyTypes.map(\.description).joined(separator: ", ") + ")"
      out += "  \(map.name): \(key) -> \(map.valueType)\n"
    }
    out += "\nactions:\n"
    let printer = IRPrinter(maps: plan.maps)
    for (i, action) in plan.actions.enumerated() {
      out += "  [\(i)] \(action.header)\n"
      out += printer.render(action, indent: "      ")
    }
    return out
  }

  static func describe(_ source: CountedKey.Source) -> String {
    switch source {
    case .read(let value): return describe(value)
    case .task(let property): return property.rawValue
    case .stacks(let parts):
      return parts.map { part in
        switch part {
        case .stack(let stack): return "\(stack.isKernel ? "kstack" : "ustack")(\(stack.depth))"
        case .comm: return "comm"
        case .task(let property): return property.rawValue
        }
      }.joined(separator: ", ")
    }
  }

  static func describe(_ value: ProbeCapture.Value) -> String {
    switch value {
    case .operand(let operand, _, _): return operand.fetchText
    case .read(let base, let offset, let count, let signed):
      return ProbeCapture.Operand.memoryText(base, offset) + ":" + ProbeCapture.integerType(count, signed)
    case .string(let base, let offset, _), .bytes(let base, let offset, _): return ProbeCapture.Operand.memoryText(base, offset)
    }
  }

  static func describe(_ watch: Watchpoint) -> String {
    let breakpoint = "hardware breakpoint (perf, PERF_TYPE_BREAKPOINT), mode \(watch.mode), on \(watch.length) bytes"
    switch watch.site {
    case .address(let address):
      let memory = watch.binary.map { "of the traced process (\($0))" } ?? "of the kernel, on every CPU"
      return "\(breakpoint) at 0x\(String(address, radix: 16)) \(memory)"
    case .argument(let function, let index):
      let stop = watch.isAsync ? "the task runs on meanwhile" : "the task is stopped (bpf_send_signal SIGSTOP) until it is open"
      return "\(breakpoint) at the address arg\(index) of \(watch.binary ?? ""):\(function.name) is passed: "
        + "a uprobe at file offset 0x\(String(function.fileOffset, radix: 16)) reads it and Scry opens the breakpoint (\(stop))"
    }
  }

  static func describe(_ probe: ResolvedProbe) -> String {
    switch probe.target {
    case .special: return probe.kind.rawValue
    case .timer(let ns, _, _): return "\(probe.kind.rawValue) timer, every \(ns) ns"
    case .tracepoint(let category, let name, _): return "tracepoint \(category):\(name) (perf, PERF_TYPE_TRACEPOINT)"
    case .perfEvent(let name, let period):
      return "\(probe.kind.rawValue) event \(name)" + (period > 0 ? ", period \(period)" : "")
    case .userFunction(let path, let symbol, let fileOffset):
      return "\(probe.kind.rawValue) \(path):\(symbol ?? "address") at file offset 0x\(String(fileOffset, radix: 16))"
    case .userStaticProbe(let usdt):
      let semaphore = usdt.semaphoreOffset == 0 ? "" : ", semaphore at file offset 0x\(String(usdt.semaphoreOffset, radix: 16))"
      let arguments = usdt.arguments.isEmpty ? "" : ", arguments " + usdt.arguments.map(\.text).joined(separator: " ")
      return "usdt \(usdt.path):\(usdt.provider):\(usdt.name) at file offset 0x\(String(usdt.fileOffset, radix: 16))"
        + semaphore + arguments
    case .kernelFunction(let symbol, let offset): return "\(probe.kind.rawValue) \(symbol)+\(offset)"
    case .other(let parts): return "\(probe.kind.rawValue) " + parts.joined(separator: ":")
    case .breakpoint(let watch): return describe(watch)
    }
  }
}
