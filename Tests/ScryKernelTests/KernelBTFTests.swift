import Glibc
import Testing

@testable import ScryKernel

/// The search over vmlinux and the modules' split BTF. This kernel has no modules (only
/// /sys/kernel/btf/vmlinux), so the modules are hand-built blobs in a directory of their own,
/// split over a hand-built base standing in for vmlinux.
@Suite("KernelBTF (module BTF)") struct KernelBTFTests {
  /// A base with `int`, `struct base_thing { int x; }` and `enum { BASE_ONE = 1 }`, and the
  /// builder state a split blob over it continues from.
  struct Base {
    var builder = BTFBuilder()
    let int: UInt32
    let thing: UInt32
    let blob: BTF

    init() throws {
      int = builder.type("int", kind: 1, sizeOrType: 4, data: [1 << 24 | 32])
      thing = builder.type("base_thing", kind: 4, vlen: 1, sizeOrType: 4, data: [builder.string("x"), int, 0])
      builder.type("base_enum", kind: 6, vlen: 1, sizeOrType: 4, data: [builder.string("BASE_ONE"), 1])
      blob = try BTF(bytes: builder.bytes)
    }

    /// A builder for a module over this base: ids and string offsets continue the base's.
    var module: BTFBuilder {
      BTFBuilder(firstID: builder.nextID, stringBase: UInt32(builder.strings.count))
    }
  }

  /// A fresh directory holding `files`; removed by the caller with `remove`.
  static func directory(_ files: [String: [UInt8]]) throws -> String {
    var template = Array("/tmp/scry-module-btf-XXXXXX".utf8CString)
    let path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
    for (name, bytes) in files {
      let file = try #require(fopen(path + "/" + name, "wb"))
      _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
      fclose(file)
    }
    return path
  }

  static func remove(_ path: String) {
    for name in FileSystem.entries(of: path) { unlink(path + "/" + name) }
    rmdir(path)
  }

  @Test func modulesAreSearchedAfterVmlinuxAndResolveBothIdSpaces() throws {
    let base = try Base()
    // mod_a: struct mod_thing { int count; struct base_thing *b; struct mod_thing *next; }, a
    // typedef and an enum: members referring to the base's ids and to the module's own.
    var a = base.module
    let thingPointer = a.type(kind: 2, sizeOrType: base.thing)
    let modThing = a.nextID + 1
    let selfPointer = a.type(kind: 2, sizeOrType: modThing)
    #expect(
      a.type(
        "mod_thing", kind: 4, vlen: 3, sizeOrType: 24,
        data: [a.string("count"), base.int, 0, a.string("b"), thingPointer, 64, a.string("next"), selfPointer, 128])
        == modThing)
    let typedef = a.type("mod_count_t", kind: 8, sizeOrType: base.int)
    a.type("mod_enum", kind: 6, vlen: 1, sizeOrType: 4, data: [a.string("MOD_A_VALUE"), 3])
    // mod_b reuses mod_a's ids for other types.
    var b = base.module
    b.type("mod_b_thing", kind: 4, vlen: 1, sizeOrType: 4, data: [b.string("y"), base.int, 0])
    // Not BTF, and vmlinux (the base, never read as a module): both skipped.
    let directory = try Self.directory([
      "mod_a": a.bytes, "mod_b": b.bytes, "broken": [1, 2, 3], "vmlinux": [0],
    ])
    defer { Self.remove(directory) }
    let kernel = KernelBTF(vmlinux: base.blob, moduleDirectory: directory)

    // vmlinux first: a name it defines reads no module.
    let baseThing = try #require(kernel.structID(named: "base_thing"))
    #expect(baseThing.btf === base.blob && baseThing.id == base.thing)
    #expect(kernel.enumValue(named: "BASE_ONE") == 1)
    #expect(kernel.loadedBlobs.count == 1)

    // A miss falls back to the modules, read on demand.
    let found = try #require(kernel.structID(named: "mod_thing"))
    #expect(found.btf !== base.blob && found.btf.path == directory + "/mod_a" && found.id == modThing)
    guard case .record(let record)? = found.btf.type(id: found.id) else {
      Issue.record("mod_thing is not a record")
      return
    }
    #expect(record.members.map(\.name) == ["count", "b", "next"])
    // Its members' types: the base's `int` and `struct base_thing`, and the module's own pointer.
    #expect(found.btf.type(id: record.members[0].type) == base.blob.type(id: base.int))
    #expect(found.btf.blob(defining: record.members[0].type) === base.blob)
    #expect(found.btf.type(id: record.members[1].type) == .pointer(base.thing))
    guard case .record(let pointee)? = found.btf.type(id: base.thing) else {
      Issue.record("base_thing is not a record")
      return
    }
    #expect(pointee.name == "base_thing")
    #expect(found.btf.type(id: record.members[2].type) == .pointer(modThing))
    #expect(found.btf.blob(defining: modThing) === found.btf)
    #expect(found.btf.size(of: record.members[0].type) == 4)

    #expect(kernel.typedefID(named: "mod_count_t")?.id == typedef)
    #expect(kernel.enumID(named: "mod_enum")?.btf === found.btf)
    #expect(kernel.enumValue(named: "MOD_A_VALUE") == 3)
    // The same ids in mod_b are mod_b's types.
    let other = try #require(kernel.structID(named: "mod_b_thing"))
    #expect(other.id == thingPointer && other.btf.path == directory + "/mod_b")
    #expect(kernel.structID(named: "no_such_thing") == nil)
    #expect(kernel.enumValue(named: "NO_SUCH_VALUE") == nil)
    // Each module read once and kept: vmlinux, mod_a, mod_b (the broken one remembered as such).
    #expect(kernel.loadedBlobs.count == 3)
    #expect(kernel.structID(named: "mod_thing")?.btf === found.btf)
    #expect(kernel.allBlobs().count == 3)
  }

  @Test func aMissingModuleDirectoryIsNoModules() throws {
    let base = try Base()
    let kernel = KernelBTF(vmlinux: base.blob, moduleDirectory: "/nonexistent/btf")
    #expect(kernel.structID(named: "base_thing")?.id == base.thing)
    #expect(kernel.structID(named: "mod_thing") == nil)
    #expect(kernel.allBlobs().count == 1)
  }

  @Test func theRunningKernel() throws {
    guard try BTFTests.vmlinux() != nil else { return }
    let kernel = try KernelBTF.running.get()
    let task = try #require(kernel.structID(named: "task_struct"))
    #expect(task.btf === kernel.vmlinux)
    #expect(kernel.structID(named: "scry_no_such_struct") == nil)
    // Every file of /sys/kernel/btf but vmlinux is a module (this kernel has none).
    let modules = FileSystem.entries(of: "/sys/kernel/btf").filter { $0 != "vmlinux" }
    #expect(kernel.allBlobs().count <= 1 + modules.count)
  }
}
