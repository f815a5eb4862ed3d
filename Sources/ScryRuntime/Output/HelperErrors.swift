import Glibc
import ScryLanguage
import ScryPlan

/// bpftrace's `-kk` helper errors for reads that failed at an event, in its words and at its
/// places: text (a warning with the source line and a `~` under the expression) or a json record.
enum HelperErrors {
  /// Says each read of `sites` whose failure code (one Int8 per read, at `codes`) is not 0.
  static func report(
    codes: UnsafeRawPointer, sites: [ReadSite], source: SourceFile?, to output: OutputBuffer
  ) {
    for (index, site) in sites.enumerated() {
      let code = Int32(codes.load(fromByteOffset: index, as: Int8.self))
      if code != 0 { output.append(text(helper: site.helper, code: code, span: site.span, source: source, format: output.format)) }
    }
  }

  static func text(helper: String, code: Int32, span: SourceSpan, source: SourceFile?, format: OutputFormat) -> String {
    let (line, column) = source?.location(of: span.start) ?? (0, 0)
    switch format {
    case .json:
      return "{\"type\": \"helper_error\", \"helper\": \"\(helper)\", \"retcode\": \(code), \"line\": \(line), \"col\": \(column)}\n"
    case .text:
      let reason = code < 0 ? String(cString: strerror(-code)) + " (\(code))" : "\(code)"
      guard let source else { return "WARNING: Failed to \(helper): \(reason)\n" }
      let (endLine, endColumn) = source.location(of: span.end)
      let lineText = source.line(line)
      let end = endLine == line ? endColumn : lineText.utf8.count + 1
      // bpftrace names a program given with -e "stdin".
      let name = source.name == "-e" ? "stdin" : source.name
      return "\(name):\(line):\(column)-\(end): WARNING: Failed to \(helper): \(reason)\n\(lineText)\n"
        + String(repeating: " ", count: column - 1) + String(repeating: "~", count: max(1, end - column)) + "\n"
    }
  }
}

/// The failed reads an attachment's records can say (`-kk`): where the capture program's failure
/// codes sit in RAW, and where each read is written. Kept alive by the session, routed unretained.
final class FailedReadReport {
  let codesOffset: Int
  let sites: [ReadSite]
  let source: SourceFile?

  init(codesOffset: Int, sites: [ReadSite], source: SourceFile?) {
    self.codesOffset = codesOffset
    self.sites = sites
    self.source = source
  }

  /// Says the reads of the event in `machine` that failed, before its action runs.
  func say(in machine: Machine) {
    guard let raw = machine.raw, codesOffset + sites.count <= machine.rawSize else { return }
    HelperErrors.report(codes: raw + codesOffset, sites: sites, source: source, to: machine.output)
  }
}
