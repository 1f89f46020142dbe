/// Checks of the harnesses: a broken invariant stops the run like a crash, so libFuzzer saves the input. Every
/// invariant is always checked.
public enum Invariant {
    /// Stops the run with `message` when `condition` is false.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        guard !condition else { return }
        fail(message(), file: file, line: line)
    }

    /// Stops the run: libFuzzer reports a crash and writes the input to its artifact.
    public static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        fatalError("invariant broken: \(message)", file: file, line: line)
    }
}
