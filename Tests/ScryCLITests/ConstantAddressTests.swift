import Glibc
import Testing

/// Reads through addresses known before the event (`(struct x *)0`, `*(uint64 *)0x1234`): made at
/// the event like any other read, an unmapped address a failed read (zeros, counted), as bpftrace's.
@Suite(.serialized) struct ConstantAddressTests {
  /// bpftrace's runtime tests signed_ints "Comparison should print as 0 or 1" and
  /// regression codegen_struct_save_nested: address 0 read in BEGIN, straight and through a map.
  @Test func addressZeroReadsAsZerosInBegin() throws {
    try expectSameOutputAsBpftrace(
      [], #"struct x { uint64_t x; }; BEGIN { $a = (*(struct x*)0).x; printf("%d %d\n", $a > -1, $a < 1); exit(); }"#)
    try expectSameOutputAsBpftrace(
      [],
      #"struct Foo { int m; struct { int x; int y; } bar; int n; } BEGIN { @foo = (struct Foo *)0; @bar = @foo->bar; @x = @foo->bar.x; printf("_%s_\n", "done"); exit(); }"#
    )
  }

  /// The failed reads are counted and said at exit; a string at address 0 is empty.
  @Test func failedReadsAreCounted() {
    guard kernelAvailable("constant address reads") else { return }
    let run = scry("-e", #"struct foo { int a; }; BEGIN { printf("[%s] %d\n", str(0), ((struct foo *)8)->a); exit(); }"#)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("[] 0\n"), "\(run.stdout)")
    #expect(run.stderr.contains("WARNING: 2 reads of memory failed"), "\(run.stderr)")
  }
}
