import Glibc
import Testing

/// `make install`: the binary, a man page made from the help, and shell completions, under DESTDIR.
@Suite struct InstallTests {
  private static var sourceRoot: String {
    let file = #filePath
    return String(file[..<file.range(of: "/Tests/")!.lowerBound])
  }

  @Test func installsTheBinaryManPageAndCompletionsUnderDestdir() throws {
    let root = Self.sourceRoot
    var template = Array("/tmp/scry-install-XXXXXX".utf8CString)
    let destdir = String(cString: mkdtemp(&template))
    defer { _ = Run.program("/bin/rm", ["-rf", destdir]) }
    // -o build: install what SCRY_BIN names instead of building a release binary first.
    let make = Run.program(
      "/usr/bin/make", ["-C", root, "-o", "build", "install", "SCRY=\(scryBinary())", "DESTDIR=\(destdir)", "PREFIX=/usr"])
    #expect(make.status == 0, "\(make.stderr)")
    let installed = ["bin/scry", "share/man/man1/scry.1", "share/bash-completion/completions/scry",
      "share/zsh/site-functions/_scry", "share/fish/vendor_completions.d/scry.fish"]
    for path in installed {
      #expect(access("\(destdir)/usr/\(path)", R_OK) == 0, "\(path) is missing")
    }
    #expect(Run.program("\(destdir)/usr/bin/scry", ["-V"]).stdout.hasPrefix("scry v"))

    // The man page renders without warnings and documents every option --help shows.
    let page = Run.program("/usr/bin/man", ["--warnings", "-l", "\(destdir)/usr/share/man/man1/scry.1"], environment: ["MANWIDTH": "200"])
    #expect(page.status == 0, "\(page.stderr)")
    #expect(page.stderr.isEmpty, "\(page.stderr)")
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "EXAMPLES", "EXIT STATUS", "ENVIRONMENT", "SEE ALSO"] {
      #expect(page.stdout.contains("\n\(section)\n"), "no \(section) section")
    }
    for option in ["--plan", "--dry-run", "--no-bpf", "--include", "-B", "--lost"] {
      #expect(page.stdout.contains(option), "the man page does not mention \(option)")
    }
    #expect(page.stdout.contains("BPFTRACE_MAP_KEYS_MAX, BPFTRACE_MAX_MAP_KEYS or SCRY_…"))
    #expect(Run.program("/bin/bash", ["-n", "\(destdir)/usr/share/bash-completion/completions/scry"]).status == 0)

    let uninstall = Run.program("/usr/bin/make", ["-C", root, "uninstall", "DESTDIR=\(destdir)", "PREFIX=/usr"])
    #expect(uninstall.status == 0, "\(uninstall.stderr)")
    #expect(access("\(destdir)/usr/bin/scry", F_OK) != 0)
  }
}
