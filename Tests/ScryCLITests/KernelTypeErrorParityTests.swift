import Glibc
import Testing

/// Issue 14's errors and kernel-type answers, run under bpftrace 0.17 and Scry side by side:
/// both refuse what bpftrace refuses, Scry with a located error and, for a misspelt field, a
/// suggestion from the real field list; what both accept prints the same.
@Suite(.serialized) struct KernelTypeErrorParityTests {
  /// Runs `script` under both; both must fail, Scry with `located` (FILE:LINE:COL: error: …) and
  /// every one of `scryNeedles` in its error, bpftrace with `bpftraceNeedle`.
  private func expectBothRefuse(
    _ script: String, bpftraceNeedle: String, scryNeedles: [String], sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let reference = Run.program(bpftrace, ["-e", script])
    #expect(reference.status != 0, "bpftrace accepted it", sourceLocation: sourceLocation)
    #expect(reference.stderr.contains(bpftraceNeedle), "\(reference.stderr)", sourceLocation: sourceLocation)
    let ours = scry("-e", script)
    #expect(ours.status != 0, "scry accepted it", sourceLocation: sourceLocation)
    for needle in scryNeedles {
      #expect(ours.stderr.contains(needle), "\(ours.stderr)", sourceLocation: sourceLocation)
    }
    #expect(!ours.stderr.contains("Fatal error"), "\(ours.stderr)", sourceLocation: sourceLocation)
  }

  @Test func aMisspeltBTFFieldSuggestsTheRealOne() throws {
    try expectBothRefuse(
      #"BEGIN { printf("%d\n", curtask->pidd); exit(); }"#,
      bpftraceNeedle: "does not contain a field named 'pidd'",
      scryNeedles: ["-e:1:24: error: struct task_struct has no field 'pidd'", "did you mean 'pid'?"])
    try expectBothRefuse(
      #"BEGIN { printf("%s\n", ((struct task_struct *)curtask)->comn); exit(); }"#,
      bpftraceNeedle: "does not contain a field named 'comn'",
      scryNeedles: ["error: struct task_struct has no field 'comn'", "did you mean 'comm'?"])
  }

  @Test func aMisspeltScriptFieldSuggestsTheRealOne() throws {
    try expectBothRefuse(
      "struct Foo { int abc; int xyz; }\n" + #"BEGIN { $f = (struct Foo *)0; printf("%d\n", $f->abd); exit(); }"#,
      bpftraceNeedle: "does not contain a field named 'abd'",
      scryNeedles: ["-e:2:46: error: struct Foo has no field 'abd'", "did you mean 'abc'?"])
  }

  @Test func aMissingHeaderIsALocatedError() throws {
    try expectBothRefuse(
      "#include <linux/scry_no_such_header.h>\nBEGIN { exit(); }",
      bpftraceNeedle: "'linux/scry_no_such_header.h' file not found",
      scryNeedles: ["-e:1:1: error: 'linux/scry_no_such_header.h' file not found"])
  }

  @Test func anUnterminatedStructIsALocatedError() throws {
    try expectBothRefuse(
      "struct Foo { int a;\nBEGIN { exit(); }", bpftraceNeedle: "ERROR",
      scryNeedles: ["-e:1:12: error: expected '}' to end the definition of 'struct Foo'"])
  }

  /// bpftrace 0.17 has no offsetof: Scry's must agree with BTF itself, as bpftool dumps it.
  @Test func offsetofAndSizeofAgreeWithBTF() throws {
    guard kernelAvailable("offsetof"), access("/usr/sbin/bpftool", X_OK) == 0 else { return }
    let dump = Run.program("/usr/sbin/bpftool", ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"])
    try #require(dump.status == 0, "\(dump.stderr)")
    // "[N] STRUCT 'task_struct' size=S vlen=V", then its members "\t'pid' type_id=T bits_offset=B".
    var size: Int?
    var pidBits: Int?
    var inTask = false
    for line in dump.stdout.split(separator: "\n") {
      if line.first == "[" {
        if inTask { break }
        inTask = line.contains("] STRUCT 'task_struct' size=")
        if inTask { size = Int(line.split(separator: " ")[3].dropFirst(5)) }
      } else if inTask, line.hasPrefix("\t'pid' "), let field = line.split(separator: " ").last {
        pidBits = Int(field.dropFirst("bits_offset=".count))
      }
    }
    let expectedSize = try #require(size), expectedBits = try #require(pidBits)
    let run = scry("-e", #"BEGIN { printf("%d %d %d\n", sizeof(struct task_struct), offsetof(struct task_struct, pid), offsetof(struct task_struct, tgid)); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("\(expectedSize) \(expectedBits / 8) \(expectedBits / 8 + 4)\n"), "\(run.stdout)")
  }

  /// `TASK_RUNNING` is in the kernel's own linux/sched.h, not the C library's: both find it once
  /// the kernel's headers are there. This kernel has none of its own, so Debian's linux-headers
  /// package (any version) stands in, named as bpftrace takes it, by BPFTRACE_KERNEL_SOURCE.
  @Test func taskRunningComesFromTheKernelsSchedH() throws {
    let common = FileManagerless.entries(of: "/usr/src").filter { $0.hasPrefix("linux-headers-") && $0.hasSuffix("-common") }
    guard let source = common.last.map({ "/usr/src/" + $0 }) else {
      print("skipping the kernel's linux/sched.h: no linux-headers package in /usr/src")
      if let required = getenv("SCRY_REQUIRE_KERNEL"), String(cString: required) == "1" {
        Issue.record("SCRY_REQUIRE_KERNEL=1 but no linux-headers package is installed (make deps installs one)")
      }
      return
    }
    let build = source.replacingSuffix("-common", with: "-amd64")
    let environment = ["BPFTRACE_KERNEL_SOURCE": source, "BPFTRACE_KERNEL_BUILD": access(build, F_OK) == 0 ? build : source]
    try expectSameOutputAsBpftrace(
      [], "#include <linux/sched.h>\n" + #"BEGIN { printf("%d %d\n", TASK_RUNNING, TASK_INTERRUPTIBLE); exit(); }"#,
      environment: environment)
  }
}

/// Directory listing without Foundation.
private enum FileManagerless {
  static func entries(of path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }
}

extension String {
  fileprivate func replacingSuffix(_ suffix: String, with replacement: String) -> String {
    hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
  }
}
