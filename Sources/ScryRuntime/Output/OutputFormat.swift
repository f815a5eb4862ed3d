/// How the runtime writes results: bpftrace's human text, or one JSON object a line (`-f json`).
public enum OutputFormat: Sendable {
  case text
  case json
}
