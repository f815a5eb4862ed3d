import Glibc
import Testing

/// Uprobes typed by the binary's DWARF, as bpftrace 0.17 with libdw: `args->NAME` for the
/// function's parameters, `-lv` listing them, and `struct X` in casts from the binary's types.
/// On Tests/Fixtures/dwarf_target.c built with -g (DWARF 5) and -gdwarf-4, and without -g.
@Suite(.serialized) struct DWARFUprobeTests {
  static let builds: (dwarf5: String, dwarf4: String, plain: String)? = {
    let base = "/tmp/scry-dwarf-\(getpid())"
    let cc = access("/usr/bin/gcc", X_OK) == 0 ? "/usr/bin/gcc" : "/usr/bin/cc"
    let source = scriptsRoot() + "/Tests/Fixtures/dwarf_target.c"
    for (flag, suffix) in [("-g", "5"), ("-gdwarf-4", "4"), ("-g0", "plain")] {
      guard Run.program(cc, [flag, "-O0", "-o", base + suffix, source]).status == 0 else { return nil }
    }
    atexit {
      for suffix in ["5", "4", "plain"] { unlink("/tmp/scry-dwarf-\(getpid())" + suffix) }
    }
    return (base + "5", base + "4", base + "plain")
  }()

  func buildsOrSkip(_ what: String = "DWARF uprobe tests") -> (dwarf5: String, dwarf4: String, plain: String)? {
    guard kernelAvailable(what) else { return nil }
    guard let builds = Self.builds else {
      Issue.record("could not build Tests/Fixtures/dwarf_target.c with gcc")
      return nil
    }
    return builds
  }

  @Test func listingShowsEachParameterAsBpftraceDoes() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry("-lv", "uprobe:\(builds.dwarf5):*s")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("""
      :pointers
          int* p
          const char* text
          struct Sample* sample
          union Either* either
          void* opaque
          char** words
      """), "\(run.stdout)")
    #expect(run.stdout.contains(":scalars\n    int n\n    char c\n    long unsigned int big\n    counter_t count\n    enum colour colour\n"))
    #expect(run.stdout.contains(":noparams\n"))
    let uret = scry("-lv", "uretprobe:\(builds.dwarf5):scalars")
    #expect(uret.stdout == "uretprobe:\(builds.dwarf5):scalars\n", "\(uret.stdout)")
    // Without DWARF, only the names.
    let plain = scry("-lv", "uprobe:\(builds.plain):scalars")
    #expect(plain.stdout == "uprobe:\(builds.plain):scalars\n", "\(plain.stdout)")
  }

  @Test(arguments: ["5", "4"]) func listingMatchesBpftrace(_ version: String) throws {
    guard let builds = buildsOrSkip("bpftrace DWARF listing"), let bpftrace = bpftraceBinary() else { return }
    let binary = version == "5" ? builds.dwarf5 : builds.dwarf4
    // A uretprobe lists no parameters; `*:FILE:PATTERN` lists the uprobes' with them.
    for pattern in ["uprobe:\(binary):*", "uretprobe:\(binary):scalars", "*:\(binary):pointers"] {
      let reference = Run.program(bpftrace, ["-lv", pattern])
      let ours = scry("-lv", pattern)
      #expect(ours.stdout == reference.stdout, "\(pattern)\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    }
  }

  @Test(arguments: ["5", "4"]) func argumentsByNameMatchBpftrace(_ version: String) throws {
    guard let builds = buildsOrSkip("bpftrace DWARF arguments"), let bpftrace = bpftraceBinary() else { return }
    let binary = version == "5" ? builds.dwarf5 : builds.dwarf4
    let script = "uprobe:\(binary):scalars { printf(\"%d %c %lu %lu %d\\n\", args->n, args->c, args->big, args->count, args->colour); }"
      + " uprobe:\(binary):pointers { printf(\"%d %d\\n\", *args->p, args->opaque == 0); }"
    let reference = Run.program(bpftrace, ["-c", "\(binary) 3", "-e", script])
    let ours = scry("-c", "\(binary) 3", "-e", script)
    #expect(reference.status == 0 && ours.status == 0, "\(reference.stderr)\(ours.stderr)")
    #expect(ours.stdout == reference.stdout, "\nscry:\n\(ours.stdout)\nbpftrace:\n\(reference.stdout)")
    #expect(ours.stdout.contains("2 x 1099511627776 99 7\n13 1\n"))
  }

  /// bpftrace 0.17 gives up on a struct with a bitfield (it clears the DWARF fields and leaves it
  /// to clang, which does not know it) and on unions (it looks up structs only); Scry lays both
  /// out. `args.NAME` is `args->NAME`, as for a tracepoint (bpftrace refuses the dot).
  @Test func structMembersThroughParameterPointers() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry(
      "-c", "\(builds.dwarf5) 1", "-e",
      "uprobe:\(builds.dwarf5):pointers { printf(\"%d %s %d %d %d %d %d\\n\", args->sample->a, args->sample->name,"
        + " args->sample->inner.l, args->sample->next->a, args->sample->flag, args->sample->level, args->sample->colour);"
        + " print(args->sample->values); print(args->sample->grid); printf(\"%d %s %d\\n\", args->either->i, args.either->c, args.opaque); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("123 hello -6 2 1 5 7\n[1,2,3]\n[[1,2,3],[4,5,6]]\n65 A 0\n"), "\(run.stdout)")
  }

  /// Without BPF the same reads are tracefs fetch arguments (`+0(%si)` chains).
  @Test func parametersThroughTracefsFetchArguments() throws {
    guard let builds = buildsOrSkip() else { return }
    let run = scry(
      "--no-bpf", "-c", "\(builds.dwarf4) 1", "-e",
      "uprobe:\(builds.dwarf4):scalars { printf(\"%c %d\\n\", args->c, args->colour); }"
        + " uprobe:\(builds.dwarf4):pointers { printf(\"%d %d %s %d\\n\", *args->p, args->sample->a, args->sample->name,"
        + " args->sample->values[2]); }")
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("x 7\n13 123 hello 3\n"), "\(run.stdout)")
  }

  @Test func castsNameTheBinarysStructsAndTheScriptsOwnWin() throws {
    guard let builds = buildsOrSkip() else { return }
    let cast = scry(
      "-c", "\(builds.dwarf4) 1", "-e",
      "uprobe:\(builds.dwarf4):pointers { printf(\"%d %d\\n\", ((struct Sample *)arg2)->a, ((union Either *)arg3)->i); }")
    #expect(cast.status == 0, "\(cast.stderr)")
    #expect(cast.stdout.contains("123 65\n"), "\(cast.stdout)")
    let override = scry(
      "-c", "\(builds.dwarf5) 1", "-e",
      "struct Sample { short lo; short hi; } uprobe:\(builds.dwarf5):pointers { printf(\"%d %d\\n\", ((struct Sample *)arg2)->lo, sizeof(struct Sample)); }")
    #expect(override.status == 0, "\(override.stderr)")
    #expect(override.stdout.contains("123 4\n"), "\(override.stdout)")
  }

  @Test func errorsInBpftracesWords() throws {
    guard let builds = buildsOrSkip() else { return }
    let unknown = scry("--dry-run", "-e", "uprobe:\(builds.dwarf5):scalars { print(args->zz); }")
    #expect(unknown.status != 0)
    #expect(unknown.stderr.contains("error: Can't find function parameter zz"), "\(unknown.stderr)")
    #expect(unknown.stderr.contains("its parameters: n, c, big, count, colour"))
    #expect(!unknown.stderr.contains("'args' is read only"), "one error, not two: \(unknown.stderr)")
    let plain = scry("--dry-run", "-e", "uprobe:\(builds.plain):scalars { print(args->n); }")
    #expect(plain.stderr.contains("error: No debuginfo found for \(builds.plain)"), "\(plain.stderr)")
    let mixed = scry("--dry-run", "-e", "uprobe:\(builds.dwarf5):*s { print(args->n); }")
    #expect(mixed.stderr.contains("error: Probe has attach points with mixed arguments"), "\(mixed.stderr)")
    let uret = scry("--dry-run", "-e", "uretprobe:\(builds.dwarf5):scalars { print(args->n); }")
    #expect(uret.stderr.contains("error: 'args' is not available in uretprobe probes"), "\(uret.stderr)")
    let whole = scry("--dry-run", "-e", "uprobe:\(builds.dwarf5):scalars { print(args); }")
    #expect(whole.stderr.contains("in a uprobe, 'args' is read only as 'args->NAME'"), "\(whole.stderr)")
  }

  @Test func infoSaysDWARFIsSupported() throws {
    let run = scry("--info")
    #expect(run.stdout.contains("  libdw (DWARF support): yes\n"), "\(run.stdout)")
  }
}
