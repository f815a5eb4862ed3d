import Glibc
import Testing

@testable import ScryKernel

/// The BTF reader on the running kernel's vmlinux BTF (layouts checked against `bpftool`'s raw
/// dump when bpftool is installed), and on built blobs for the encodings and errors vmlinux
/// does not show.
@Suite("BTF") struct BTFTests {
  static let vmlinuxPath = "/sys/kernel/btf/vmlinux"

  /// The shared vmlinux BTF, or nil (skipped, or failed under SCRY_REQUIRE_KERNEL=1) without it.
  static func vmlinux(_ test: String = #function) throws -> BTF? {
    if access(vmlinuxPath, R_OK) != 0 {
      let reason = "needs kernel BTF (no readable \(vmlinuxPath); CONFIG_DEBUG_INFO_BTF is off)"
      if KernelGate.isRequired {
        Issue.record("\(test) skipped but SCRY_REQUIRE_KERNEL=1: \(reason)")
      } else {
        print("skipping \(test): \(reason)")
      }
      return nil
    }
    return try BTF.vmlinux.get()
  }

  static func record(_ btf: BTF, _ name: String, isUnion: Bool = false) throws -> BTFRecord {
    let id = try #require(btf.structID(named: name, isUnion: isUnion), "no \(name)")
    guard case .record(let record) = btf.type(id: id) else {
      Issue.record("\(name) is not a record")
      throw BTFTestFailure()
    }
    return record
  }

  struct BTFTestFailure: Error {}

  // MARK: - vmlinux

  @Test func listHeadIsTwoPointersToItself() throws {
    guard let btf = try Self.vmlinux() else { return }
    let listHead = try Self.record(btf, "list_head")
    #expect(listHead.size == 16)
    #expect(listHead.members.map(\.name) == ["next", "prev"])
    #expect(listHead.members.map(\.bitOffset) == [0, 64])
    for member in listHead.members {
      guard case .pointer(let pointee) = btf.type(id: member.type) else {
        Issue.record("\(member.name) is not a pointer")
        continue
      }
      #expect(pointee == btf.structID(named: "list_head"))
    }
    #expect(btf.size(of: try #require(btf.structID(named: "list_head"))) == 16)
  }

  @Test func taskStructMembers() throws {
    guard let btf = try Self.vmlinux() else { return }
    let task = try Self.record(btf, "task_struct")
    #expect(task.size > 1000)
    let members = Dictionary(task.members.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    let pid = try #require(members["pid"])
    // pid_t → __kernel_pid_t → int.
    guard case .integer(let int) = btf.type(id: btf.resolved(pid.type)) else {
      Issue.record("pid is not an integer")
      return
    }
    #expect(int.size == 4 && int.isSigned && int.bits == 32)
    #expect(members["tgid"].map { btf.resolved($0.type) } == btf.resolved(pid.type))
    let comm = try #require(members["comm"])
    guard case .array(let array) = btf.type(id: comm.type) else {
      Issue.record("comm is not an array")
      return
    }
    #expect(array.count == 16)
    guard case .integer(let char) = btf.type(id: btf.resolved(array.element)) else {
      Issue.record("comm's element is not an integer")
      return
    }
    #expect(char.name == "char" && char.size == 1)
    let parent = try #require(members["real_parent"])
    #expect(btf.type(id: parent.type) == .pointer(try #require(btf.structID(named: "task_struct"))))
  }

  @Test func enumeratorsAndTypedefs() throws {
    guard let btf = try Self.vmlinux() else { return }
    #expect(btf.enumValue(named: "BPF_MAP_TYPE_UNSPEC") == 0)
    #expect(btf.enumValue(named: "BPF_MAP_TYPE_HASH") == 1)
    #expect(btf.enumValue(named: "BPF_MAP_TYPE_ARRAY") == 2)
    #expect(btf.enumValue(named: "NO_SUCH_ENUMERATOR_ANYWHERE") == nil)
    let u64 = try #require(btf.typedefID(named: "u64"))
    guard case .integer(let integer) = btf.type(id: btf.resolved(u64)) else {
      Issue.record("u64 is not an integer")
      return
    }
    #expect(integer.size == 8 && !integer.isSigned)
    #expect(btf.size(of: u64) == 8)
    #expect(btf.structID(named: "no_such_struct_anywhere") == nil)
    #expect(btf.structID(named: "u64") == nil)
  }

  @Test func skBuffBitfields() throws {
    guard let btf = try Self.vmlinux() else { return }
    let skb = try Self.record(btf, "sk_buff")
    let cloned = try #require(skb.members.first { $0.name == "cloned" })
    let fclone = try #require(skb.members.first { $0.name == "fclone" })
    #expect(cloned.bitfieldSize == 1)
    #expect(fclone.bitfieldSize == 2)
    #expect(fclone.bitOffset == cloned.bitOffset + 2)
    #expect(skb.members.first { $0.name == "len" }?.bitfieldSize == 0)
    // sk_buff starts with an anonymous union (its list links), whose members C reaches directly.
    let first = try #require(skb.members.first)
    #expect(first.name.isEmpty && first.bitOffset == 0)
    guard case .record(let links) = btf.type(id: first.type) else {
      Issue.record("sk_buff's first member is not a record")
      return
    }
    #expect(links.isUnion && links.name.isEmpty)
  }

  /// Every member of some well-used structs, and the last type id, as bpftool reads them.
  @Test func layoutsAgreeWithBpftool() throws {
    guard let btf = try Self.vmlinux() else { return }
    let names = ["task_struct", "sk_buff", "page", "file", "inode", "mm_struct", "list_head", "bpf_attr"]
    let ids = try names.map { name in try #require(btf.structID(named: name, isUnion: name == "bpf_attr")) }
    guard let dump = Bpftool.rawDump(Self.vmlinuxPath, ids: Set(ids)) else {
      print("skipping \(#function): bpftool is not installed (apt-get install bpftool)")
      return
    }
    #expect(dump.lastID == UInt32(btf.typeCount - 1))
    for (name, id) in zip(names, ids) {
      let isUnion = name == "bpf_attr"
      let expected = try #require(dump.types[id], "bpftool has no type \(id)")
      #expect(expected.header.hasPrefix("[\(id)] \(isUnion ? "UNION" : "STRUCT") '\(name)' size="))
      let record = try Self.record(btf, name, isUnion: isUnion)
      #expect(record.members.map(Bpftool.line) == expected.members, "\(name)")
    }
  }

  // MARK: - Built blobs

  @Test func oldStyleBitfieldsComeFromTheIntType() throws {
    var builder = BTFBuilder()
    // INT 'unsigned int' with 3 bits at bit offset 2 of its storage: a bitfield without kind_flag.
    let int3 = builder.type("unsigned int", kind: 1, sizeOrType: 4, data: [2 << 16 | 3])
    let int32 = builder.type("int", kind: 1, sizeOrType: 4, data: [1 << 24 | 32])
    let flags = builder.type(
      "flags", kind: 4, vlen: 2, sizeOrType: 8,
      data: [builder.string("a"), int32, 0, builder.string("b"), int3, 32])
    let btf = try BTF(bytes: builder.bytes)
    guard case .record(let record) = btf.type(id: flags) else {
      Issue.record("not a record")
      return
    }
    #expect(record.members[0] == BTFMember(name: "a", type: int32, bitOffset: 0, bitfieldSize: 0))
    #expect(record.members[1] == BTFMember(name: "b", type: int3, bitOffset: 34, bitfieldSize: 3))
  }

  @Test func splitBTFContinuesItsBase() throws {
    var baseBuilder = BTFBuilder()
    let int = baseBuilder.type("int", kind: 1, sizeOrType: 4, data: [1 << 24 | 32])
    let base = try BTF(bytes: baseBuilder.bytes)
    var module = BTFBuilder(firstID: 2, stringBase: UInt32(baseBuilder.strings.count))
    let pointer = module.type(kind: 2, sizeOrType: int)
    let thing = module.type(
      "thing", kind: 4, vlen: 1, kindFlag: true, sizeOrType: 8, data: [module.string("p"), pointer, 0])
    module.type("THING_ONE", kind: 6, vlen: 1, sizeOrType: 4, data: [module.string("THING_A"), 7])
    let split = try BTF(bytes: module.bytes, base: base)
    #expect(split.typeCount == 5)
    #expect(split.structID(named: "thing") == thing)
    #expect(split.type(id: pointer) == .pointer(int))
    #expect(split.type(id: int) == base.type(id: int))
    #expect(split.typeIDs(named: "int") == [int])
    #expect(split.enumValue(named: "THING_A") == 7)
    #expect(split.size(of: thing) == 8)
    #expect(split.type(id: 99) == nil)
  }

  @Test func malformedBlobsThrow() throws {
    var builder = BTFBuilder()
    builder.type("int", kind: 1, sizeOrType: 4, data: [32])
    builder.type("s", kind: 4, vlen: 1, sizeOrType: 4, data: [builder.string("x"), 1, 0])
    let good = builder.bytes
    #expect(throws: Never.self) { try BTF(bytes: good) }
    #expect(throws: KernelError.self) { try BTF(bytes: []) }
    #expect(throws: KernelError.self) { try BTF(bytes: Array(good.prefix(20))) }
    // Cut inside the struct's member: the type section now ends past the blob.
    #expect(throws: KernelError.self) { try BTF(bytes: Array(good.prefix(24 + 30))) }
    var badMagic = good
    badMagic[0] = 0
    #expect(throws: KernelError.self) { try BTF(bytes: badMagic) }
    // An unknown kind: the reader cannot know where the next type starts.
    var unknownKind = BTFBuilder()
    unknownKind.type("x", kind: 31)
    #expect(throws: KernelError.self) { try BTF(bytes: unknownKind.bytes) }
    // A struct claiming more members than its section holds.
    var overlong = BTFBuilder()
    overlong.type("s", kind: 4, vlen: 100, sizeOrType: 4, data: [0, 0, 0])
    #expect(throws: KernelError.self) { try BTF(bytes: overlong.bytes) }
  }

  @Test func filesThatAreNotBTFThrow() {
    // /proc files cannot be mapped: this goes through the read() fallback, then fails on the magic.
    #expect(throws: KernelError.self) { try BTF(path: "/proc/self/status") }
    #expect(throws: KernelError.self) { try BTF(path: "/nonexistent/btf") }
    #expect(throws: KernelError.self) { try BTF.module(named: "../vmlinux") }
  }

  @Test func danglingReferencesDecodeWithoutTrapping() throws {
    var builder = BTFBuilder()
    // A typedef loop, a name offset past the strings, a member of an unknown type.
    builder.type("a", kind: 8, sizeOrType: 2)
    builder.type("b", kind: 8, sizeOrType: 1)
    builder.type(kind: 4, vlen: 1, sizeOrType: 4, data: [0xffff, 999, 0])
    let btf = try BTF(bytes: builder.bytes)
    #expect(btf.resolved(1) == 0)
    #expect(btf.size(of: 1) == nil)
    guard case .record(let record) = btf.type(id: 3) else {
      Issue.record("not a record")
      return
    }
    #expect(record.members == [BTFMember(name: "", type: 999, bitOffset: 0, bitfieldSize: 0)])
    #expect(btf.type(id: 999) == nil)
  }
}
