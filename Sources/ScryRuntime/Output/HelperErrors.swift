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
