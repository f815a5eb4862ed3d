import Glibc
import ScryKernel
import ScryLanguage
import Testing

@testable import ScryRuntime

/// Kernel types from a module's split BTF, converted for the language: this kernel has no
/// modules, so a hand-built base stands in for vmlinux and hand-built modules sit in a directory
/// of their own.
@Suite("KernelTypes (module BTF)") struct ModuleKernelTypesTests {
  /// Little-endian BTF blobs, the few kinds these tests use.
  struct Blob {
    var strings: [UInt8] = [0]
    var types: [UInt8] = []
    var nextID: UInt32
    let stringBase: UInt32

    init(firstID: UInt32 = 1, stringBase: UInt32 = 0) {
      self.nextID = firstID
      self.stringBase = stringBase
    }

    /// A split blob over this one: ids and string offsets continue.
    var split: Blob { Blob(firstID: nextID, stringBase: UInt32(strings.count)) }

    mutating func string(_ text: String) -> UInt32 {
      let offset = UInt32(strings.count) + stringBase
      strings += Array(text.utf8) + [0]
      return offset
    }

    @discardableResult
    mutating func type(_ name: String, kind: UInt32, vlen: Int = 0, sizeOrType: UInt32, data: [UInt32] = []) -> UInt32 {
      let nameOffset = name.isEmpty ? 0 : string(name)
      for word in [nameOffset, kind << 24 | UInt32(vlen), sizeOrType] + data {
        withUnsafeBytes(of: word.littleEndian) { types += $0 }
      }
      defer { nextID += 1 }
      return nextID
    }

    /// struct `name` { members }, each (name, type, byte offset).
    @discardableResult
    mutating func record(_ name: String, size: UInt32, _ members: [(String, UInt32, UInt32)]) -> UInt32 {
      var data: [UInt32] = []
      for (member, type, offset) in members { data += [string(member), type, offset * 8] }
      return type(name, kind: 4, vlen: members.count, sizeOrType: size, data: data)
    }

    var bytes: [UInt8] {
      var header: [UInt8] = []
      for word in [UInt32(0xeb9f) | 1 << 16, 24, 0, UInt32(types.count), UInt32(types.count), UInt32(strings.count)] {
        withUnsafeBytes(of: word.littleEndian) { header += $0 }
      }
      return header + types + strings
    }
  }

  @Test func aModuleStructResolvesBaseAndOwnMembers() throws {
    var base = Blob()
    let int = base.type("int", kind: 1, sizeOrType: 4, data: [1 << 24 | 32])
    let char = base.type("char", kind: 1, sizeOrType: 1, data: [8])
    let comm = base.type("", kind: 3, sizeOrType: 0, data: [char, int, 16])
    let task = base.record("base_task", size: 20, [("pid", int, 0), ("comm", comm, 4)])
    let vmlinux = try BTF(bytes: base.bytes)

    // mod_a: struct mod_dev { int id; struct base_task task; struct mod_dev *next; u32_t n; }.
    var a = base.split
    let u32 = a.type("u32_t", kind: 8, sizeOrType: int)
    let devID = a.nextID + 1
    let devPointer = a.type("", kind: 2, sizeOrType: devID)
    a.record("mod_dev", size: 40, [("id", int, 0), ("task", task, 4), ("next", devPointer, 24), ("n", u32, 32)])
    // mod_b: the same ids, other types; a struct of the same layout but a different name.
    var b = base.split
    let otherByte = b.type("u8_t", kind: 8, sizeOrType: char)
    b.record("mod_other", size: 1, [("flag", otherByte, 0)])

    var template = Array("/tmp/scry-module-types-XXXXXX".utf8CString)
    let directory = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
    defer {
      for name in ["mod_a", "mod_b"] { unlink(directory + "/" + name) }
      rmdir(directory)
    }
    for (name, bytes) in [("mod_a", a.bytes), ("mod_b", b.bytes)] {
      let file = try #require(fopen(directory + "/" + name, "wb"))
      _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
      fclose(file)
    }

    let types = KernelTypes(btf: { KernelBTF(vmlinux: vmlinux, moduleDirectory: directory) })
    let dev = try #require(types.record(named: "struct mod_dev"))
    #expect(dev.size == 40 && dev.fields.map(\.name) == ["id", "task", "next", "n"])
    #expect(dev.field(named: "id")?.type == .integer(.int32))
    #expect(dev.field(named: "next")?.type == .pointer(.structReference("struct mod_dev")))
    #expect(dev.field(named: "next")?.cType == "struct mod_dev *")
    #expect(dev.field(named: "n")?.type == .integer(.int32) && dev.field(named: "n")?.cType == "u32_t")
    // An embedded vmlinux struct, converted from the base's ids.
    guard case .record(let embedded)? = dev.field(named: "task")?.type else {
      Issue.record("task is not an embedded record")
      return
    }
    #expect(embedded.name == "base_task" && embedded.field(named: "comm")?.type == .string(capacity: 16))
    #expect(types.record(named: "struct base_task") == embedded)
    // mod_b's types, though their ids are mod_a's too.
    let other = try #require(types.record(named: "struct mod_other"))
    #expect(other.field(named: "flag")?.type == .integer(IntegerType(bits: 8, isSigned: true)) && other.field(named: "flag")?.cType == "u8_t")
    #expect(types.typedef(named: "u32_t") == .integer(.int32))
    #expect(types.record(named: "struct no_such_thing") == nil)
  }
}
