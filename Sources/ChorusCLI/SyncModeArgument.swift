import ChorusWAL

/// Parses `--fsync` and `--sync`: `always`, `never`, `batch` or `batch:MS`.
public enum SyncModeArgument {
    public static func parse(_ text: String) throws(ConfigParsing.Failure) -> SyncMode {
        switch text {
        case "always": return .always
        case "never": return .never
        default:
            if text.hasPrefix("batch:"), let ms = Int(text.dropFirst(6)), ms > 0 { return .batch(intervalMs: ms) }
            if text == "batch" { return .batch(intervalMs: 10) }
            throw ConfigParsing.Failure("expected always, batch[:MS] or never, not '\(text)'")
        }
    }
}
