import ScryKernel

/// `scry -l 'struct task_*'` and `scry -lv 'struct task_struct'`: the kernel's structs and unions
/// from BTF, named and defined in C as bpftrace lists them (members tab-indented, anonymous structs
/// and unions nested in place, bitfields with their widths, function pointers with parameters).
public enum KernelTypeListing {
  /// `struct NAME` and `union NAME` of the kernel (vmlinux and its modules) that match a glob
  /// pattern, sorted.
  public static func names(matching pattern: String, kernel: KernelBTF? = try? KernelBTF.running.get()) -> [String] {
    guard let kernel else { return [] }
    var names = Set<String>()
    for btf in kernel.allBlobs() {
      // A module's blob answers for vmlinux's ids too: list only its own.
      let first = btf === kernel.vmlinux ? 1 : UInt32(clamping: kernel.vmlinux.typeCount)
      for id in first..<max(first, UInt32(clamping: btf.typeCount)) {
        guard case .record(let record)? = btf.type(id: id), !record.name.isEmpty else { continue }
        let name = (record.isUnion ? "union " : "struct ") + record.name
        if Glob.matches(pattern, name) { names.insert(name) }
      }
    }
    return names.sorted()
  }

  /// The C definition of `struct NAME` (or `union NAME`), nil when the kernel has none.
  public static func definition(of name: String, kernel: KernelBTF? = try? KernelBTF.running.get()) -> String? {
    let words = name.split(separator: " ")
    guard words.count == 2, let found = kernel?.structID(named: String(words[1]), isUnion: words[0] == "union"),
      case .record(let record)? = found.btf.type(id: found.id)
    else { return nil }
    let btf = found.btf
    var out = "\(words[0]) \(words[1]) {\n"
    appendMembers(of: record, indent: 1, btf: btf, to: &out)
    return out + "};\n"
  }

  private static func appendMembers(of record: BTFRecord, indent: Int, btf: BTF, to out: inout String) {
    let tabs = String(repeating: "\t", count: indent)
    for member in record.members {
      // A struct or union without a name is written out in place (a member of it, or members of
      // the parent when the member has no name either).
      if case .record(let inner)? = btf.type(id: skippingQualifiers(member.type, btf: btf)), inner.name.isEmpty, indent < 16 {
        out += tabs + (inner.isUnion ? "union" : "struct") + " {\n"
        appendMembers(of: inner, indent: indent + 1, btf: btf, to: &out)
        out += tabs + "}" + (member.name.isEmpty ? "" : " " + member.name) + ";\n"
        continue
      }
      out += tabs + declaration(member.name, type: member.type, btf: btf)
      if member.bitfieldSize > 0 { out += ": \(member.bitfieldSize)" }
      out += ";\n"
    }
  }

  /// `type name` with C's declarator syntax: `char comm[16]`, `loff_t (*llseek)(struct file *, loff_t, int)`.
  static func declaration(_ name: String, type id: UInt32, btf: BTF) -> String {
    let spelling = KernelTypeSpelling(btf: btf)
    if case .pointer(let pointee)? = btf.type(id: skippingQualifiers(id, btf: btf)),
      case .functionPrototype(let returnType, let parameters)? = btf.type(id: btf.resolved(pointee))
    {
      var list = parameters.map { $0.type == 0 ? "..." : spelling.spell($0.type) }
      if list.isEmpty { list = ["void"] }
      return spelling.spell(returnType) + " (*\(name))(" + list.joined(separator: ", ") + ")"
    }
    let spelled = spelling.spell(id)
    if let bracket = spelled.firstIndex(of: "[") {
      return String(spelled[..<bracket]) + " " + name + String(spelled[bracket...])
    }
    return spelled.hasSuffix("*") ? spelled + name : spelled + " " + name
  }

  private static func skippingQualifiers(_ id: UInt32, btf: BTF) -> UInt32 {
    var id = id
    for _ in 0..<8 {
      switch btf.type(id: id) {
      case .qualifier(_, let inner)?, .typeTag(_, let inner)?: id = inner
      default: return id
      }
    }
    return id
  }
}
