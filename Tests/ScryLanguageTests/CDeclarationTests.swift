import Glibc
import Testing

@testable import ScryLanguage

/// Reads `text` as a script's declarations; `headers` stand in for the file system (paths under
/// `/inc`, the only system directory).
func declare(_ text: String, headers: [String: String] = [:], forced: [String] = [])
  -> (declarations: CDeclarations, diagnostics: [Diagnostic], rendered: String)
{
  let source = SourceFile(name: "test.trace", text: text)
  let (program, _) = Parser.parse(source)
  let (declarations, diagnostics) = CDeclarationParser.parse(
    source, spans: program.declarations, forcedIncludes: forced, systemDirectories: ["/inc"], readFile: { headers[$0] })
  return (declarations, diagnostics, DiagnosticRenderer().render(diagnostics, in: source))
}

@Suite struct CDeclarationTests {
  /// Every shape of the subset, valid C for GCC too.
  static let layouts = """
    struct Pad { char a; int b; char c; long d; short e; };
    struct Nested { char x; struct Pad p; struct Pad *pp; struct Pad **ppp; int arr[3][5]; char name[16]; struct Later *later; };
    union U { char c; int i; long l; short s[5]; };
    struct Bits { unsigned a:3; unsigned b:5; unsigned c:30; unsigned char d:4; int :0; char e; unsigned long f:40;
      unsigned long g:30; short h:9; };
    struct Straddle { char a; int b:31; int c:2; unsigned char d:7; unsigned char e:2; long long f:1; };
    struct ZeroWidth { char a; long :0; char b; int :3; short c:4; };
    union BitUnion { int a:3; char c; unsigned long long d:33; };
    struct Packed { char a; int b; short c; long d; } __attribute__((packed));
    struct PackedBits { char a; unsigned b:31; unsigned c:2; } __attribute__((packed));
    struct Aligned { char a; int b __attribute__((aligned(16))); char c; } __attribute__((aligned(32)));
    struct __attribute__((aligned(8))) AlignedSmall { char a; };
    enum Color { RED, GREEN = 5, BLUE };
    enum Big { SMALL = -1, HUGE = 0x100000000 };
    typedef unsigned int u32_t;
    typedef u32_t my_u32;
    typedef struct { my_u32 x; enum Color c; } Anon_t;
    typedef Anon_t Anon2_t;
    typedef int arr_t[4];
    typedef struct Pad *pad_ptr;
    struct WithAnon { int a; union { int b; char c[3]; }; struct { short d; long e; }; Anon2_t t; enum Big big;
      void (*fn)(int, char *); _Bool flag; double dbl; float flt; const volatile unsigned short cv; long double ld;
      arr_t arr; pad_ptr pp; uint32_t u; struct { int inner; } named; int flex[]; };
    struct Outer { struct Inner { int i; char c; } in; struct Inner again; unsigned long long ull; signed char sc; };
    """

  @Test func layoutsMatchGCC() throws {
    guard access("/usr/bin/cc", X_OK) == 0 else { return }
    let (declarations, diagnostics, rendered) = declare(Self.layouts)
    #expect(diagnostics.isEmpty, "\(rendered)")
    var program = "#include <stdio.h>\n#include <stddef.h>\n#include <string.h>\n#include <stdint.h>\n" + Self.layouts
    program += """
      static int firstBit(const unsigned char *p, size_t n) {
        for (size_t i = 0; i < n * 8; i++) if (p[i / 8] >> (i % 8) & 1) return (int)i;
        return -1;
      }
      int main(void) {

      """
    var expected: [String] = []
    for (name, record) in declarations.records.sorted(by: { $0.key < $1.key }) {
      program += "  printf(\"\(name) size %zu align %zu\\n\", sizeof(\(name)), _Alignof(\(name)));\n"
      // Alignment is not a field of RecordType: compare the one the parser keeps for layouts.
      expected.append("\(name) size \(record.size) align \(alignment(of: name, in: Self.layouts))")
      for field in record.fields {
        if field.bitWidth > 0 {
          program += "  { \(name) v; memset(&v, 0, sizeof v); v.\(field.name) = -1; "
          program += "printf(\"\(name).\(field.name) bit %d\\n\", firstBit((unsigned char *)&v, sizeof v)); }\n"
          expected.append("\(name).\(field.name) bit \(field.offset * 8 + field.bitOffset)")
        } else {
          program += "  printf(\"\(name).\(field.name) offset %zu\\n\", offsetof(\(name), \(field.name)));\n"
          expected.append("\(name).\(field.name) offset \(field.offset)")
        }
      }
    }
    for name in ["Anon_t", "Anon2_t", "arr_t"] {
      program += "  printf(\"\(name) size %zu\\n\", sizeof(\(name)));\n"
      let size: Int? = switch declarations.typedefs[name] {
      case .record(let record): record.size
      case .array(_, let count): count * 4
      default: nil
      }
      expected.append("\(name) size \(size ?? -1)")
    }
    program += "  return 0;\n}\n"
    let base = "/tmp/scry-cdecl-\(getpid())"
    #expect(writeFile(base + ".c", program))
    try #require(system("cc -w -o \(base) \(base).c && \(base) > \(base).out") == 0)
    let actual = (readFile(base + ".out") ?? "").split(separator: "\n").map(String.init)
    for path in [base, base + ".c", base + ".out"] { unlink(path) }
    #expect(actual == expected)
  }

  /// The alignment the parser gave a record, by reading it again with the internal state kept.
  func alignment(of name: String, in text: String) -> Int {
    var parser = CDeclarationParser(source: SourceFile(name: "t", text: text), searchPath: [], readFile: { _ in nil })
    let source = SourceFile(name: "t", text: text)
    parser.parseDeclarations(CTokenizer(bytes: source.bytes, file: 0).tokens(in: 0..<source.bytes.count))
    return parser.records[name]?.align ?? -1
  }

  @Test func fieldTypesFollowTheConventions() {
    let (d, diagnostics, rendered) = declare(Self.layouts)
    #expect(diagnostics.isEmpty, "\(rendered)")
    let nested = d.records["struct Nested"]
    #expect(nested?.field(named: "pp")?.type == .pointer(.structReference("struct Pad")))
    #expect(nested?.field(named: "ppp")?.type == .pointer(.pointer(.structReference("struct Pad"))))
    #expect(nested?.field(named: "name")?.type == .string(capacity: 16))
    #expect(nested?.field(named: "arr")?.type == .array(.array(.integer(.int32), count: 5), count: 3))
    #expect(nested?.field(named: "arr")?.cType == "int[3][5]")
    #expect(nested?.field(named: "later")?.type == .pointer(.structReference("struct Later")))
    if case .record(let pad)? = nested?.field(named: "p")?.type { #expect(pad.size == 32) } else { Issue.record("p") }
    let anon = d.records["struct WithAnon"]
    #expect(anon?.field(named: "fn")?.type == .pointer(.none))
    #expect(anon?.field(named: "fn")?.size == 8)
    #expect(anon?.field(named: "c")?.type == .string(capacity: 3))
    #expect(anon?.field(named: "big")?.type == .integer(.int64))
    #expect(anon?.field(named: "flag")?.type == .integer(IntegerType(bits: 8, isSigned: false)))
    #expect(anon?.field(named: "u")?.type == .integer(.uint32))
    #expect(anon?.field(named: "pp")?.type == .pointer(.structReference("struct Pad")))
    let bits = d.records["struct Bits"]?.field(named: "c")
    #expect(bits?.offset == 4 && bits?.size == 4 && bits?.bitOffset == 0 && bits?.bitWidth == 30)
    #expect(d.records["union U"]?.isUnion == true)
    #expect(d.records["struct Inner"]?.size == 8)
    #expect(d.typedefs["my_u32"] == .integer(.uint32))
    #expect(d.constants["RED"] == 0 && d.constants["GREEN"] == 5 && d.constants["BLUE"] == 6)
    #expect(d.constants["HUGE"] == 0x1_0000_0000)
  }

  @Test func defineExpressions() {
    let text = """
      #define A 0x10
      #define B (A << 2 | 1)
      #define C 'a'
      #define D (u32)-1
      #define E sizeof(struct Pad) + sizeof(int)
      #define F 10UL % 3 + ~0 + !0
      #define G (A > 3 ? 100 : 200)
      #define H -7 / 2
      #define MULTI 1 + \\
        2
      #define OCT 017
      #define NEG (-1 < 0u)
      #define SHIFTED (1ULL << 40) >> 8
      #define FN(x) ((x) + 1)
      #define USED_FN(x) ((x) * 2)
      #define S "text"
      #define EMPTY
      enum { E1 = 3, E2 = E1 * A, E3 = USED_FN(E2) };
      #define FROM_ENUM (E2 + 1)
      struct Pad { char a; long b; };
      BEGIN { exit(); }
      """
    let (d, diagnostics, rendered) = declare(text)
    let c = d.constants
    #expect(c["A"] == 16 && c["B"] == 65 && c["C"] == 97 && c["D"] == 0xFFFF_FFFF && c["E"] == 20)
    #expect(c["F"] == 1 && c["G"] == 100 && c["H"] == -3 && c["MULTI"] == 3 && c["OCT"] == 15 && c["NEG"] == 0)
    #expect(c["SHIFTED"] == 1 << 32 && c["E2"] == 48 && c["E3"] == 96 && c["FROM_ENUM"] == 49)
    #expect(c["EMPTY"] == nil && c["S"] == nil && c["FN"] == nil)
    // Only the script's unused non-constants are worth a word.
    #expect(diagnostics.map(\.severity) == [.warning, .warning], "\(rendered)")
    #expect(rendered.contains("test.trace:14:9: warning: 'FN' is not an integer constant"), "\(rendered)")
    #expect(rendered.contains("test.trace:16:9: warning: 'S' is not an integer constant"), "\(rendered)")
  }

  @Test func systemHeaderGivesConstantsAndStructs() {
    let source = SourceFile(name: "test.trace", text: "#include <linux/sched.h>\nBEGIN { }")
    let (program, _) = Parser.parse(source)
    let (d, diagnostics) = CDeclarationParser.parse(source, spans: program.declarations)
    let rendered = DiagnosticRenderer().render(diagnostics, in: source)
    #expect(!diagnostics.hasErrors, "\(rendered)")
    #expect(d.constants["SCHED_FIFO"] == 1 && d.constants["CLONE_VM"] == 0x100, "\(rendered)")
    #expect(d.constants["CLONE_CLEAR_SIGHAND"] == 0x1_0000_0000)
    #expect(d.records["struct clone_args"]?.size == d.constants["CLONE_ARGS_SIZE_VER2"].map(Int.init))
    #expect(d.typedefs["__u32"] == .integer(.uint32))
  }

  @Test func headersFollowGuardsConditionsAndNestedIncludes() {
    let headers = [
      "/inc/a.h": """
        #ifndef A_H
        #define A_H
        #include "b.h"
        #include <a.h>
        #if 0
        struct Hidden { int x; };
        #elif defined(B_H) && B_VALUE > 1
        struct Shown { bvalue_t v; };
        #else
        struct Wrong { int x; };
        #endif
        #ifdef NOT_DEFINED
        #error not here
        #endif
        extern int printf(const char *format, ...);
        static inline int twice(int x) { if (x) { return 2 * x; } return 0; }
        int counter;
        struct Unreadable { unknown_t x; };
        struct AfterSkip { int y; };
        #endif
        """,
      "/inc/b.h": "#define B_H\n#define B_VALUE \\\n  2\ntypedef unsigned short bvalue_t;\n#include \"a.h\"\n",
    ]
    let (d, diagnostics, rendered) = declare("#include <a.h>\nBEGIN { }", headers: headers)
    #expect(d.records["struct Shown"]?.field(named: "v")?.type == .integer(IntegerType(bits: 16, isSigned: false)))
    #expect(d.records["struct Hidden"] == nil && d.records["struct Wrong"] == nil)
    #expect(d.records["struct AfterSkip"] != nil && d.constants["B_VALUE"] == 2)
    #expect(diagnostics.count == 1, "\(rendered)")
    #expect(
      rendered.contains(
        "test.trace:1:1: warning: skipped 1 declaration Scry cannot read in 'a.h' and its includes (1 declarations with unknown types)"),
      "\(rendered)")
    #expect(rendered.contains("unknown type name 'unknown_t' at /inc/a.h:18"), "\(rendered)")
  }

  @Test func forcedIncludesComeFirst() {
    let (d, diagnostics, _) = declare("struct S { hdr_t h; };", headers: ["/inc/f.h": "typedef long hdr_t;"], forced: ["f.h"])
    #expect(diagnostics.isEmpty)
    #expect(d.records["struct S"]?.size == 8)
  }

  @Test(arguments: [
    ("#include <linux/nope.h>\nBEGIN { }", "test.trace:1:1: error: 'linux/nope.h' file not found"),
    ("struct Foo { int a;\nBEGIN { }", "test.trace:1:12: error: expected '}' to end the definition of 'struct Foo'"),
    ("struct Foo { foo_t a; };", "test.trace:1:14: error: unknown type name 'foo_t'"),
    ("struct Foo { int a; long a; };", "test.trace:1:26: error: duplicate member 'a'"),
    ("struct Foo { struct Bar b; };", "test.trace:1:25: error: field 'b' has incomplete type 'struct Bar'"),
    ("struct Foo { int a:33; };", "test.trace:1:18: error: width of bit-field 'a' (33 bits) exceeds the width of its type (32 bits)"),
    ("struct Foo { int a[N]; };", "test.trace:1:20: error: use of undeclared identifier 'N'"),
    ("struct Foo { int a; } x y;", "test.trace:1:25: error: expected ';' after the declaration"),
    ("struct Foo { int a; };\nstruct Foo { int b; };", "test.trace:2:8: error: redefinition of 'struct Foo'"),
    ("#define X (1 / 0)\nstruct Foo { int a[X]; };", "test.trace:2:20: error: division by zero in a constant expression"),
    ("#if 1\nBEGIN { }", "test.trace:1:2: error: unterminated conditional directive"),
  ])
  func locatedErrors(_ text: String, _ message: String) {
    let (_, diagnostics, rendered) = declare(text)
    #expect(diagnostics.hasErrors)
    #expect(rendered.contains(message), "\(rendered)")
  }

  @Test func missingHeaderNamesTheDirectoriesSearched() {
    let (_, diagnostics, _) = declare("#include \"nope.h\"\nBEGIN { }")
    #expect(diagnostics.first?.hint?.contains("/inc") == true)
  }

  static let fuzzCorpus = [
    layouts,
    "#include <a.h>\n#define N (4 * sizeof(struct S))\n#if N > 2\nenum E { X = N, Y };\n#endif\nBEGIN { }",
    "typedef struct { int a:3, :0, b:4; union { char c[2][3]; }; } T; #define F(a, ...) a ## __VA_ARGS__ #a\nint F(x, y);",
    "#define A B\n#define B A\nstruct S { int a[A + 1]; };\n#define C C C C C\n#if C\n#else\n#endif",
  ]

  @Test func mutatedDeclarationsNeverTrap() {
    var rng = FuzzTests.SplitMix(state: 0xC0DE)
    let headers = ["/inc/a.h": "#pragma once\nstruct S { long s; };\n#include \"a.h\"\n#define M(x) (x + M(x))"]
    for text in Self.fuzzCorpus {
      for _ in 0..<400 {
        let mutated = String(decoding: FuzzTests.mutate(Array(text.utf8), &rng), as: UTF8.self)
        let (_, diagnostics, rendered) = declare(mutated, headers: headers)
        if diagnostics.hasErrors { #expect(rendered.contains(": error: ")) }
      }
    }
  }

  @Test func pathologicalDeclarationsGiveDiagnostics() {
    let inputs = [
      "struct S { int a[" + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + "]; };",
      "struct S " + String(repeating: "{ struct T ", count: 3000),
      "struct S { int " + String(repeating: "*", count: 100) + String(repeating: "(", count: 3000) + "p; };",
      (0..<40).map { "#define A\($0 + 1) A\($0) A\($0)" }.joined(separator: "\n") + "\n#define A0 1\nstruct S { int a[A40]; };",
      "enum { A = 1 << 70, B = -9223372036854775807 - 1, C = B / -1, D = B % -1 };",
    ]
    for input in inputs {
      let (_, diagnostics, _) = declare(input)
      #expect(diagnostics.hasErrors || !diagnostics.isEmpty || input.hasPrefix("enum"), "\(input.prefix(40))")
    }
  }
}

func writeFile(_ path: String, _ text: String) -> Bool {
  guard let f = fopen(path, "w") else { return false }
  defer { fclose(f) }
  let bytes = Array(text.utf8)
  return fwrite(bytes, 1, bytes.count, f) == bytes.count
}
