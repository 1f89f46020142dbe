/// Checks of the harnesses: a broken invariant stops the run like a crash, so libFuzzer saves the input.
///
/// An invariant that is known to be broken on main and being fixed elsewhere names its ``KnownDefect``; it is
/// checked all the same unless the defect is listed in `ALGATE_FUZZ_KNOWN_DEFECTS` (comma-separated), which
/// Scripts/fuzz sets to the defects still open, so that a run finds what is new instead of the same old thing.
public enum Invariant {
    /// Stops the run with `message` when `condition` is false.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        guard !condition else { return }
        fail(message(), file: file, line: line)
    }

    /// Like ``check(_:_:file:line:)``, for an invariant that `defect` breaks on main: skipped while that defect is
    /// listed as known. A nil defect checks always.
    public static func check(_ condition: Bool, knownDefect defect: KnownDefect?, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        guard !condition else { return }
        guard let defect else { fail(message(), file: file, line: line) }
        guard !KnownDefect.skipped.contains(defect) else { return }
        fail("[\(defect.rawValue)] \(message())", file: file, line: line)
    }

    /// Stops the run: libFuzzer reports a crash and writes the input to its artifact.
    public static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        fatalError("invariant broken: \(message)", file: file, line: line)
    }
}

/// Defects the harnesses find on main that are being fixed in other branches (see Scripts/fuzz).
public enum KnownDefect: String, CaseIterable, Sendable {
    /// FTP: a 227/228/229 nobody asked for is forwarded untouched, with the server's address in it.
    case ftpUnsolicitedReply = "ftp-unsolicited-reply"
    /// FTP: the text of a passive reply around its address is forwarded as the server wrote it, so an inside address
    /// written there in words (dotted, or as a number list that is no address) reaches the client.
    case ftpReplyText = "ftp-reply-text"
    /// FTP: a rewritten line can be longer than the line limit the peer's lines are held to.
    case ftpLongLine = "ftp-long-line"
    /// SIP: an SDP body that does not parse is forwarded unchanged, inside addresses and all.
    case sdpUnparsed = "sdp-unparsed"
    /// SIP: the c= of a disabled stream (port 0) keeps its inside address.
    case sdpDisabledStream = "sdp-disabled-stream"
    /// SIP: ICE a=candidate lines keep their addresses.
    case iceCandidates = "ice-candidates"
    /// SIP: an address in an SDP line the gateway does not read (other than o=, c=, a=rtcp:, a=candidate) goes
    /// through as it was: a limitation, not a defect being fixed.
    case sdpUnreadLines = "sdp-unread-lines"
    /// SIP: the gateway's own answer to a request it cannot parse is not SIP: SIPResponseBuilder answers when there
    /// is a Via, whether or not From, To, Call-ID and CSeq are there, and copies lines with a bare CR in them.
    case sipAnswerNotSIP = "sip-answer-not-sip"
    /// SIP: a message that came over UDP without Content-Length leaves over TCP without one (a request from the
    /// PBX to a phone registered over TCP), where the phone cannot frame it; SIPMessageEditor.ensureContentLength
    /// is there for this and not called.
    case sipTCPWithoutContentLength = "sip-tcp-without-content-length"
    /// SDP: a body whose last line ends in a CR without its LF is read as if the CR ended the line, but a line the
    /// rewrite adds after it goes after the CR, which then belongs to the line before (`m=audio 4000 RTP/AVP 0\r`
    /// becomes a transport `0\r`).
    case sdpTrailingCR = "sdp-trailing-cr"

    /// The defects listed in `ALGATE_FUZZ_KNOWN_DEFECTS`.
    static let skipped: Set<KnownDefect> = {
        guard let list = Environment.value("ALGATE_FUZZ_KNOWN_DEFECTS") else { return [] }
        return Set(list.split(separator: ",").compactMap { KnownDefect(rawValue: $0.trimmingSpaces) })
    }()
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
