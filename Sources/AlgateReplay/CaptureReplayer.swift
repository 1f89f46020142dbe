/// Replays a capture file: reads it with ``CaptureReader`` and runs every frame through ``CaptureAnalyzer``.
public enum CaptureReplayer {
    /// Replays the capture at `path` (``CaptureReader/standardInput``, `-`: the one on standard input). Throws
    /// ``CaptureError`` when the file cannot be opened, is not a capture, or its compression is corrupt; a file
    /// that ends inside a record is replayed up to there and reported as truncated (``ReplayReport/truncated``).
    public static func replay(path: String, settings: ReplaySettings) throws(CaptureError) -> ReplayReport {
        let reader = try CaptureReader(path: path)
        var analyzer = CaptureAnalyzer(settings: settings)
        var truncation: String? = nil
        while true {
            do {
                guard let frame = try reader.next() else { break }
                analyzer.receive(frame)
            } catch {
                truncation = error.description
                break
            }
        }
        if let problem = reader.decompressionProblem {
            truncation = [problem, truncation].compactMap { $0 }.joined(separator: "; ")
        }
        return analyzer.finish(file: reader.displayName, compressed: reader.wasCompressed, linkType: reader.linkType,
                               truncation: truncation)
    }
}
