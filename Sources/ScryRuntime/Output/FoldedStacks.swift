import ScryKernel
import ScryLanguage

/// `-f folded`: each entry of a map keyed by stacks as one line of the folded format that
/// flamegraph.pl, speedscope and inferno read: `comm;outer;…;inner COUNT`, frames by function
/// name (call sites of one function fold together). The key's other parts
/// come first, then its user stacks, then its kernel stacks (so a kernel frame sits on the user
/// frame that entered the kernel), each from the outermost frame in.
enum FoldedStacks {
  /// Writes every map with a stack in its key; says on `warnings` which maps it left out.
  static func print(_ maps: [MapStorage], to out: OutputBuffer, warnings: (String) -> Void) {
    for (frames, count) in stacks(of: maps, warnings: warnings) {
      out.append(frames.joined(separator: ";"))
      out.appendByte(UInt8(ascii: " "))
      out.appendUnsigned(count)
      out.appendByte(UInt8(ascii: "\n"))
    }
  }

  /// Every entry of the maps keyed by stacks, as its frames (outermost first) and its count.
  static func stacks(of maps: [MapStorage], warnings: (String) -> Void) -> [(frames: [String], count: UInt64)] {
    var stacks: [(frames: [String], count: UInt64)] = []
    for map in maps {
      let info = map.info
      guard info.keyTypes.contains(where: \.isStack) else {
        warnings("map '\(info.name)' has no stack in its key: left out of the folded output")
        continue
      }
      guard let count = countReader(info.valueType) else {
        warnings("map '\(info.name)' holds \(info.valueType), not counts: left out of the folded output")
        continue
      }
      for entry in map.entries() {
        let total = count(entry.value)
        if total > 0 { stacks.append((frames(entry.key, types: info.keyTypes), total)) }
      }
    }
    return stacks
  }

  /// The names of one key's parts and frames, in folded order.
  static func frames(_ key: UnsafeRawPointer, types: [ScryType]) -> [String] {
    var others: [String] = []
    var user: [String] = []
    var kernel: [String] = []
    var offset = 0
    for type in types {
      let part = key + offset
      offset += type.byteSize
      guard case .stack(let stack) = type else {
        let text = OutputBuffer(capturing: ())
        ValueFormatter.appendText(part, type: type, to: text)
        others.append(sanitized(text.capturedString))
        continue
      }
      // The text in bpftrace mode, one frame a line, innermost first.
      let text = OutputBuffer(capturing: ())
      StackTable.appendText(part, type: StackType(isKernel: stack.isKernel, depth: stack.depth), indent: 0, to: text)
      let frames = text.capturedString.split(separator: "\n").map { sanitized(functionName(String($0))) }.reversed()
      if stack.isKernel { kernel += frames } else { user += frames }
    }
    return others + user + kernel
  }

  /// A frame as flame graphs group it: by function, without the offset of the call site.
  static func functionName(_ frame: String) -> String {
    guard let plus = frame.lastIndex(of: "+"), frame[frame.index(after: plus)...].allSatisfy(\.isNumber) else {
      return frame
    }
    return String(frame[..<plus])
  }

  /// `;` separates frames and a space ends the stack: neither may appear inside a name.
  static func sanitized(_ name: String) -> String {
    String(name.map { $0 == ";" ? ":" : $0 == " " ? "_" : $0 })
  }

  /// How to read an entry's count: counts, sums and plain integers.
  static func countReader(_ type: ScryType) -> ((UnsafeRawPointer) -> UInt64)? {
    switch type {
    case .aggregate(.count), .aggregate(.sum), .integer: return { $0.loadUnaligned(as: UInt64.self) }
    default: return nil
    }
  }
}

extension ScryType {
  var isStack: Bool {
    if case .stack = self { return true }
    return false
  }
}
