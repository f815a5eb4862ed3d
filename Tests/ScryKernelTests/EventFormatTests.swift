import Glibc
import Testing

@testable import ScryKernel

/// Recorded from a 6.x kernel's tracefs, tabs included.
let sampleFormat = """
  name: sched_process_exec
  ID: 365
  format:
  \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
  \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
  \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
  \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

  \tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
  \tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
  \tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;
  \tfield:char comm[16];\toffset:20;\tsize:16;\tsigned:0;
  \tfield:const char * path;\toffset:40;\tsize:8;\tsigned:0;
  \tfield:unsigned long args[];\toffset:48;\tsize:0;\tsigned:0;
  \tfield:__rel_loc u8[] blob;\toffset:48;\tsize:4;\tsigned:0;

  print fmt: "filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid

  """

@Suite("event formats")
struct EventFormatTests {
  @Test func parsesRecordedFormat() throws {
    let format = try EventFormat.parse(sampleFormat)
    #expect(format.name == "sched_process_exec")
    #expect(format.id == 365)
    #expect(format.fields.count == 11)
    #expect(format.fields.prefix(4).allSatisfy { $0.isCommon })
    #expect(format.eventFields.count == 7)
    #expect(format.printFormat.hasPrefix("\"filename=%s"))

    let pid = try #require(format.field(named: "common_pid"))
    #expect(pid.cType == "int" && pid.offset == 4 && pid.size == 4 && pid.isSigned)

    let filename = try #require(format.field(named: "filename"))
    #expect(filename.isDataLocation && filename.cType == "char" && filename.arrayCount == nil)
    #expect(filename.offset == 8 && filename.size == 4 && !filename.isSigned)
    #expect(filename.dynamicRange(locator: 0x0005_0030, recordSize: 64) == 0x30..<0x35)
    #expect(filename.dynamicRange(locator: 0x0050_0030, recordSize: 64) == nil)

    let comm = try #require(format.field(named: "comm"))
    #expect(comm.cType == "char" && comm.arrayCount == 16 && !comm.isPointer)

    let path = try #require(format.field(named: "path"))
    #expect(path.cType == "const char *" && path.isPointer && path.arrayCount == nil)

    let args = try #require(format.field(named: "args"))
    #expect(args.cType == "unsigned long" && args.arrayCount == 0)

    let blob = try #require(format.field(named: "blob"))
    #expect(blob.isRelativeLocation && blob.cType == "u8")
    #expect(blob.dynamicRange(locator: 0x0002_0004, recordSize: 64) == 56..<58)
  }

  @Test func rejectsGarbage() {
    #expect(throws: KernelError.self) { try EventFormat.parse("hello\n") }
    #expect(throws: KernelError.self) { try EventFormat.parse("name: x\nID: 1\n\tfield:int;\toffset:0;\n") }
  }
}

extension KernelSuites {
  @Suite("tracefs")
  struct TraceFSTests {
    @Test func parsesEveryFormatOnThisKernel() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      var parsed = 0
      var ids = Set<UInt64>()
      for category in tracefs.categories() {
        for name in tracefs.events(in: category) {
          let path = tracefs.eventPath(category: category, name: name) + "/format"
          guard access(path, R_OK) == 0 else { continue }  // e.g. ftrace's internal events
          let format = try tracefs.format(category: category, name: name)
          parsed += 1
          #expect(format.name == name, "\(category):\(name)")
          #expect(ids.insert(format.id).inserted, "duplicate id \(format.id) at \(category):\(name)")
          if access(tracefs.eventPath(category: category, name: name) + "/id", R_OK) == 0 {
            let id = try tracefs.eventID(category: category, name: name)
            #expect(format.id == id)
          }
          if category == "ftrace" { continue }  // ftrace's own records have no common_pid layout guarantee
          #expect(format.field(named: "common_pid")?.offset == 4, "\(category):\(name)")
          for field in format.fields {
            #expect(
              field.offset >= 0 && field.size >= 0 && field.offset + field.size <= 65536, "\(category):\(name) \(field)"
            )
            #expect(!field.name.isEmpty && !field.cType.isEmpty, "\(category):\(name) \(field)")
            if field.isDataLocation || field.isRelativeLocation {
              #expect(field.size == 4, "\(category):\(name) \(field)")
            }
            if let count = field.arrayCount, count > 0 {
              #expect(field.size % count == 0, "\(category):\(name) \(field)")
            }
          }
          // Fixed fields do not overlap (a flexible `x[]` has size 0 and may sit anywhere).
          let sorted = format.fields.filter { $0.size > 0 }.sorted { $0.offset < $1.offset }
          for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(a.offset + a.size <= b.offset, "\(category):\(name) \(a) overlaps \(b)")
          }
        }
      }
      print("parsed \(parsed) formats")
      #expect(parsed > 100)

      let sw = try tracefs.format(category: "sched", name: "sched_switch")
      #expect(sw.field(named: "prev_comm")?.arrayCount == 16)
      #expect(sw.field(named: "prev_comm")?.cType == "char")
      #expect(sw.field(named: "next_pid")?.isSigned == true)
      #expect(sw.field(named: "next_pid")?.size == 4)
      #expect(sw.field(named: "prev_state")?.size == 8)

      let openat = try tracefs.format(category: "syscalls", name: "sys_enter_openat")
      #expect(openat.field(named: "filename")?.cType == "const char *")
      #expect(openat.field(named: "filename")?.isPointer == true)
      #expect(openat.field(named: "__syscall_nr")?.offset == 8)
      #expect(openat.field(named: "flags")?.size == 8)
      #expect(openat.fields.filter(\.isCommon).count == 4)
    }

    @Test func missingTracepointIsNamed() throws {
      guard KernelGate.check() else { return }
      let tracefs = try TraceFS.locate()
      #expect(tracefs.categories().contains("syscalls"))
      #expect(tracefs.events(in: "syscalls").contains("sys_enter_getppid"))
      do {
        _ = try tracefs.eventID(category: "sched", name: "no_such_event")
        Issue.record("expected an error")
      } catch let error as KernelError {
        #expect(error.description.contains("sched:no_such_event"))
        #expect(error.description.contains("no such tracepoint"))
      }
    }
  }
}
