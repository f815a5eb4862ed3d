import Glibc
import Testing

@testable import ScryKernel

/// `.note.stapsdt` as `<sys/sdt.h>` writes it, read back and checked against `readelf -n`: each
/// probe's provider, name, arguments, and its pc and semaphore as file offsets.
@Suite struct StaticProbeNoteTests {
  static let source = """
    #define _SDT_HAS_SEMAPHORES 1
    #include <sys/sdt.h>
    unsigned short p_guarded_semaphore __attribute__((section(".probes"))) __attribute__((used));
    unsigned short p_plain_semaphore __attribute__((section(".probes"))) __attribute__((used));
    int main(int argc, char **argv) {
      if (p_guarded_semaphore) STAP_PROBE2(p, guarded, argc, argv[0]);
      STAP_PROBE(p, plain);
      return 0;
    }
    """

  @Test func notesMatchReadelf() throws {
    guard access("/usr/bin/gcc", X_OK) == 0, access("/usr/bin/readelf", X_OK) == 0 else {
      if KernelGate.isRequired { Issue.record("needs gcc and readelf") }
      return
    }
    let directory = try ELFFixture.temporaryDirectory()
    defer { ELFFixture.removeTree(directory) }
    let sourcePath = directory + "/sdt.c"
    let file = try #require(fopen(sourcePath, "w"))
    fputs(Self.source, file)
    fclose(file)
    let binary = directory + "/sdt"
    let built = ELFFixture.run("/usr/bin/gcc", ["-O2", "-o", binary, sourcePath])
    guard built.status == 0 else {
      // <sys/sdt.h> comes with systemtap-sdt-dev (APT_PACKAGES in the Makefile).
      Issue.record("could not build a <sys/sdt.h> program: \(built.text)")
      return
    }
    let elf = try ELFFile(path: binary)
    let probes = elf.staticProbes()
    #expect(probes.map(\.name) == ["guarded", "plain"])
    #expect(probes.allSatisfy { $0.provider == "p" })
    // readelf gives virtual addresses: the reader's file offsets map back to them.
    let lines = ELFFixture.run("/usr/bin/readelf", ["-n", binary]).text.split(separator: "\n").map {
      $0.drop { $0 == " " }
    }
    for probe in probes {
      // The lines after `Name: NAME`: `Location: 0x…, Base: 0x…, Semaphore: 0x…`, `Arguments: …`.
      let at = try #require(lines.firstIndex { $0 == "Name: \(probe.name)" })
      let location = lines[at + 1].split(separator: ",").map { $0.split(separator: " ").last.map { UInt64($0.dropFirst(2), radix: 16) } }
      try #require(location.count == 3, "\(lines[at + 1])")
      #expect(elf.address(ofFileOffset: probe.fileOffset) == location[0]!)
      #expect(probe.semaphoreOffset != 0 && elf.address(ofFileOffset: probe.semaphoreOffset) == location[2]!)
      let arguments = at + 2 < lines.count && lines[at + 2].hasPrefix("Arguments: ") ? String(lines[at + 2].dropFirst(11)) : ""
      #expect(probe.arguments == arguments, "\(lines[at + 2])")
    }
    #expect(probes.first?.arguments.split(separator: " ").count == 2)
  }

  @Test func fileWithoutNotesHasNoProbes() throws {
    guard let fixture = ELFFixture.shared.orSkip() else { return }
    #expect(try ELFFile(path: fixture.pie).staticProbes().isEmpty)
  }
}
