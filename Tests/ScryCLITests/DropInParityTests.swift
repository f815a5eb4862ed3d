import Glibc
import Testing

/// The bpftrace command line and literals, run under both bpftrace 0.17 and Scry: same output, and
/// both refuse what bpftrace refuses. Needs root (bpftrace does).
@Suite(.serialized) struct DropInParityTests {
  static let scripts: [String] = [
    #"BEGIN { printf("%d %d %d %d\n", 1e6, 5e3, 0e3, 7e0); exit(); }"#,
    #"BEGIN { printf("%d %d %d\n", 1_000_000, 1__0, 07e2); exit(); }"#,
    #"BEGIN { printf("%d\n", 1e9); @x = 1e3; exit(); }"#,
    #"BEGIN { print(pton("255.1.1.1")); printf("%s %s\n", ntop(pton("::1")), ntop(pton("10.1.2.3"))); @[pton("1.2.3.4")] = 1; exit(); }"#,
    // 8-byte integer keys print signed, whatever their type; narrower unsigned ones do not.
    #"BEGIN { @a[(int32)-1] = 1; @c[(uint16)-1] = 1; @e[(uint8)-1] = 1; @g[(uint64)-1, (uint32)-1] = 1; @v = (uint64)-1; exit(); }"#,
    // The root cgroup is '/' in every hierarchy mounted here, named as bpftrace names them.
    #"BEGIN { printf("%s|%s|%s\n", cgroup_path(1), cgroup_path(1, "unified"), cgroup_path(1, "nothing*")); exit(); }"#,
  ]

  @Test(arguments: scripts)
  func literalsMatchBpftrace(_ script: String) throws {
    try expectSameOutputAsBpftrace([], script)
  }

  @Test(arguments: ["10e2", "1e17", "1e19", "1.5e3", "1e", "08"])
  func bothRefuseTheSameLiterals(_ literal: String) {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    let script = #"BEGIN { printf("%d\n", "# + literal + "); exit(); }"
    #expect(Run.program(bpftrace, ["-e", script]).status == 1)
    #expect(scry("-e", script).status == 1)
  }

  @Test func bothRefuseAnEmptyProgram() {
    guard kernelAvailable("bpftrace parity"), let bpftrace = bpftraceBinary() else { return }
    #expect(Run.program(bpftrace, ["-e", ""]).status == 1)
    #expect(scry("-e", "").status == 1)
  }

  @Test func standardInputAndBufferingFlagMatchBpftrace() throws {
    guard kernelAvailable("bpftrace parity"), bpftraceBinary() != nil else { return }
    let program = #"BEGIN { printf("%s %d\n", str($1), $#); @n = 3; exit(); }"#
    let command = #"printf '%s\n' '"# + program + #"' | "$TOOL" -B full - word"#
    let reference = Run.program("/bin/sh", ["-c", command], environment: ["TOOL": bpftraceBinary()!])
    try #require(reference.status == 0, "bpftrace failed: \(reference.stderr)")
    let ours = Run.program("/bin/sh", ["-c", command], environment: ["TOOL": scryBinary()])
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
  }

  @Test(arguments: [
    (["-q"], #"BEGIN { printf("x\n"); exit(); }"#, [String: String]()),
    (["-q", "-f", "json"], #"BEGIN { printf("x\n"); @a = 1; exit(); }"#, [:]),
    (["-B", "line"], #"BEGIN { printf("a\n"); } interval:ms:20 { printf("b\n"); exit(); }"#, [:]),
    ([], #"BEGIN { cat("/proc/sys/kernel/ostype"); printf("|\n"); exit(); }"#, ["BPFTRACE_CAT_BYTES_MAX": "3"]),
  ])
  func quietBufferingAndCatLimitMatchBpftrace(flags: [String], program: String, environment: [String: String]) throws {
    try expectSameOutputAsBpftrace(flags, program, environment: environment)
  }

  @Test func versionLineHasTheSameShape() {
    guard let bpftrace = bpftraceBinary() else { return }
    let reference = Run.program(bpftrace, ["-V"]).stdout
    let ours = scry("-V").stdout
    #expect(reference.hasPrefix("bpftrace v") && ours.hasPrefix("scry v"))
    // The bpftrace Scry stands in for is the one installed as the reference, named as it names itself.
    let named = reference.split(separator: "\n").first.map(String.init) ?? reference
    #expect(ours.hasSuffix(" (\(named) compatible)\n"), "\(ours) does not name \(named)")
  }
}
