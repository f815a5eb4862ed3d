import Glibc
import ScryKernel
import ScryLanguage
import Testing

@testable import ScryRuntime

/// Kernel BTF converted to the language's C types, as `CTypes` lays down: on the running
/// kernel's BTF (skipped without it, failed under SCRY_REQUIRE_KERNEL=1), and on a built blob
/// for what vmlinux does not show.
@Suite("KernelTypes (BTF)") struct KernelTypesTests {
  /// The converter over vmlinux, or nil when this machine has no kernel BTF.
  static func vmlinux(_ test: String = #function) -> KernelTypes? {
    guard access("/sys/kernel/btf/vmlinux", R_OK) == 0 else {
      let reason = "needs kernel BTF (no readable /sys/kernel/btf/vmlinux)"
      if getenv("SCRY_REQUIRE_KERNEL").map({ String(cString: $0) }) == "1" {
        Issue.record("\(test) skipped but SCRY_REQUIRE_KERNEL=1: \(reason)")
      } else {
        print("skipping \(test): \(reason)")
      }
      return nil
    }
    return KernelTypes()
  }

  static let int8 = ScryType.integer(IntegerType(bits: 8, isSigned: true))
  static let uint8 = ScryType.integer(IntegerType(bits: 8, isSigned: false))

  @Test func taskStruct() throws {
    guard let types = Self.vmlinux() else { return }
    let task = try #require(types.record(named: "struct task_struct"))
    #expect(task.name == "task_struct" && !task.isUnion && task.size > 1000)
    let pid = try #require(task.field(named: "pid"))
    #expect(pid.type == .integer(.int32) && pid.size == 4 && pid.cType == "pid_t")
    #expect(task.field(named: "tgid")?.offset == pid.offset + 4)
    let comm = try #require(task.field(named: "comm"))
    #expect(comm.type == .string(capacity: 16) && comm.size == 16 && comm.cType == "char[16]")
    let parent = try #require(task.field(named: "real_parent"))
    #expect(parent.type == .pointer(.structReference("struct task_struct")))
    #expect(parent.cType == "struct task_struct *" && parent.size == 8)
    #expect(task.field(named: "stack")?.type == .pointer(.none))
    // Cached: the same answer, and a second lookup costs nothing.
    #expect(types.record(named: "struct task_struct") == task)
  }

  @Test func anonymousMembersAreFlattened() throws {
    guard let types = Self.vmlinux() else { return }
    let skb = try #require(types.record(named: "struct sk_buff"))
    #expect(!skb.fields.contains { $0.name.isEmpty })
    // sk_buff opens with union { struct { next; prev; union { dev; dev_scratch } }; rbnode; list; … }.
    #expect(skb.field(named: "next")?.offset == 0)
    #expect(skb.field(named: "next")?.type == .pointer(.structReference("struct sk_buff")))
    #expect(skb.field(named: "prev")?.offset == 8)
    #expect(skb.field(named: "dev")?.offset == 16)
    #expect(skb.field(named: "dev")?.type == .pointer(.structReference("struct net_device")))
    #expect(skb.field(named: "rbnode")?.offset == 0)
    if case .record(let node)? = skb.field(named: "rbnode")?.type {
      #expect(node.name == "rb_node" && node.size == 24)
    } else {
      Issue.record("rbnode is not an embedded record")
    }
    // union { tstamp; skb_mstamp_ns } at 32, and the destructor (a function pointer) in a
    // union at 88 holding an anonymous struct.
    #expect(skb.field(named: "tstamp")?.offset == 32)
    #expect(skb.field(named: "tstamp")?.type == .integer(.int64))
    #expect(skb.field(named: "destructor")?.type == .pointer(.none))
    #expect(skb.field(named: "destructor")?.offset == 96)
  }

  @Test func bitfields() throws {
    guard let types = Self.vmlinux() else { return }
    let skb = try #require(types.record(named: "struct sk_buff"))
    // __u8 cloned:1, nohdr:1, fclone:2, … starting at bit 1008 (byte 126).
    let cloned = try #require(skb.field(named: "cloned"))
    #expect(cloned.offset == 126 && cloned.size == 1 && cloned.bitOffset == 0 && cloned.bitWidth == 1)
    #expect(cloned.type == Self.uint8)
    let fclone = try #require(skb.field(named: "fclone"))
    #expect(fclone.offset == 126 && fclone.bitOffset == 2 && fclone.bitWidth == 2)
    #expect(skb.field(named: "len")?.bitWidth == 0)
  }

  @Test func typedefsEnumsAndUnions() throws {
    guard let types = Self.vmlinux() else { return }
    #expect(types.typedef(named: "u64") == .uint64)
    #expect(types.typedef(named: "pid_t") == .integer(.int32))
    #expect(types.typedef(named: "bool") == Self.uint8)
    // atomic_t is a typedef of an anonymous struct { int counter; }.
    let atomic = types.typedef(named: "atomic_t")
    #expect(atomic == .record(RecordType(name: "", fields: [
      RecordField(name: "counter", cType: "int", type: .integer(.int32), offset: 0, size: 4)
    ], size: 4)))
    #expect(types.enumConstant(named: "BPF_MAP_TYPE_HASH") == 1)
    #expect(types.enumConstant(named: "NOT_AN_ENUMERATOR") == nil)
    let attr = try #require(types.record(named: "union bpf_attr"))
    #expect(attr.isUnion && attr.cName == "union bpf_attr")
    #expect(types.record(named: "struct bpf_attr") == nil)
    #expect(types.record(named: "task_struct") == nil)
    #expect(types.record(named: "struct no_such_struct") == nil)
    let listHead = try #require(types.record(named: "struct list_head"))
    #expect(listHead.fields.map(\.type) == Array(repeating: .pointer(.structReference("struct list_head")), count: 2))
  }

  @Test func nothingIsReadUntilAsked() {
    var asked = 0
    let types = KernelTypes(btf: {
      asked += 1
      return nil
    })
    #expect(asked == 0)
    #expect(types.record(named: "struct task_struct") == nil)
    #expect(types.typedef(named: "u64") == nil)
    #expect(asked == 1)
  }
}
