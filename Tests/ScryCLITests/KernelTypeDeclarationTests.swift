import Glibc
import Testing

/// Script declarations that use kernel types without defining them, as bpftrace 0.17 resolves them
/// from BTF: laid out as a C compiler lays out the same struct over `bpftool btf dump … format c`,
/// and `BPFTRACE_HAVE_BTF` defined so bpftrace's tools skip their kernel `#include`s.
@Suite(.serialized) struct KernelTypeDeclarationTests {
  static let declaration = """
    struct probe_layout { char tag; struct load_weight load; sector_t sector; atomic_t count; struct path path; u8 tail; };
    """

  @Test func undeclaredKernelTypesAreLaidOutAsBTFSays() throws {
    guard kernelAvailable("kernel types in declarations") else { return }
    let bpftool = try #require(
      ["/usr/sbin/bpftool", "/usr/bin/bpftool", "/usr/local/sbin/bpftool"].first { (path: String) in access(path, X_OK) == 0 },
      "bpftool is not installed (Makefile APT_PACKAGES lists it)")
    let header = "/tmp/scry-vmlinux-\(getpid()).h"
    let source = "/tmp/scry-kernel-layout-\(getpid()).c"
    let binary = "/tmp/scry-kernel-layout-\(getpid())"
    defer { for path: String in [header, source, binary] { unlink(path) } }
    let dump = Run.program(bpftool, ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"])
    try #require(dump.status == 0, "bpftool btf dump failed: \(dump.stderr)")
    try write(dump.stdout, to: header)
    let members = ["load", "sector", "count", "path", "tail"]
    let program = """
      #include "\(header)"
      \(Self.declaration)
      int printf(const char *, ...);
      int main(void) {
        printf("%zu\(String(repeating: " %zu", count: members.count))\\n", sizeof(struct probe_layout),
          \(members.map { "__builtin_offsetof(struct probe_layout, \($0))" }.joined(separator: ", ")));
        return 0;
      }
      """
    try write(program, to: source)
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let built = Run.program(cc, ["-o", binary, source])
    try #require(built.status == 0, "could not compile the layout program: \(built.stderr)")
    let expected = Run.program(binary, []).stdout
    let script = Self.declaration + """
      BEGIN { printf("%d\(String(repeating: " %d", count: members.count))\\n", sizeof(struct probe_layout),
        \(members.map { "offsetof(struct probe_layout, \($0))" }.joined(separator: ", "))); exit(); }
      """
    let ours = scry("-q", "-e", script)
    #expect(ours.status == 0, "\(ours.stderr)")
    #expect(ours.stdout.split(separator: "\n").first.map(String.init) == expected.split(separator: "\n").first.map(String.init))
  }

  @Test func sizeAndMembersMatchBpftrace() throws {
    // bpftrace 0.17 has no offsetof: the size, and members read through a kernel pointer.
    let script = Self.declaration + """
      tracepoint:syscalls:sys_enter_exit_group /pid == cpid/ {
        printf("%d %d\\n", sizeof(struct probe_layout), sizeof(struct path));
        $t = (struct task_struct *)curtask;
        printf("%d\\n", $t->pid == pid);
        exit();
      }
      """
    try expectSameOutputAsBpftrace(["-c", "/bin/true"], script)
  }

  @Test func kernelHeadersGuardedByBPFTRACE_HAVE_BTFAreSkipped() throws {
    let guarded = "#ifndef BPFTRACE_HAVE_BTF\n#include <linux/blkdev.h>\n#endif\nBEGIN { printf(\"ok\\n\"); exit(); }"
    try expectSameOutputAsBpftrace([], guarded)
  }

  @Test func missingHeadersStayErrors() throws {
    guard kernelAvailable("missing headers") else { return }
    // As bpftrace: BTF does not stand in for a header that is not installed.
    for (header, line) in [("<linux/blkdev.h>", "'linux/blkdev.h' file not found"), ("\"no_such_user.h\"", "'no_such_user.h' file not found")] {
      let run = scry("--dry-run", "-e", "#include \(header)\nBEGIN { exit(); }")
      #expect(run.status != 0)
      #expect(run.stderr.contains(line), "\(run.stderr)")
      #expect(run.stderr.contains("hint: searched ") && run.stderr.contains("/usr/include;"), "\(run.stderr)")
    }
  }

  private func write(_ text: String, to path: String) throws {
    let file = try #require(fopen(path, "w"), "cannot write \(path)")
    fputs(text, file)
    fclose(file)
  }
}
