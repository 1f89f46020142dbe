import Foundation

/// SIPp scenarios whose INVITE and 200 OK carry a WebRTC-style offer and answer (ICE candidates, DTLS
/// fingerprint, rtcp-mux, BUNDLE, several codecs) grown to a given size with more codec and SSRC lines, the way
/// video and simulcast offers grow: the messages real phones and browsers send over UDP that are larger than one
/// 2 KB receive buffer.
///
/// The caller's offer names its media address and port (`[media_ip]`, `[media_port]`) in c= and m=, and in its
/// host candidate (as `[media_base]`, the same port: SIPp expands `[media_port]` on m= lines only), plus a
/// server-reflexive candidate on a public address; the callee's answer does the same on its side.
enum WebRTCScenario {
    /// An SRV-reflexive address both sides claim (documentation range, RFC 5737): no packet is sent to it.
    static let reflexiveAddress = "203.0.113.7"
    static let fingerprint = "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF"

    /// The SDP body, `[media_ip]`/`[media_port]` left for SIPp to fill in, with padding lines until its text is
    /// at least `bytes` long. `ufrag` tells offer from answer.
    static func sdp(bytes: Int, ufrag: String, setup: String) -> String {
        var lines = [
            "v=0",
            "o=- 4611731400430051336 2 IN IP[media_ip_type] [media_ip]",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "a=msid-semantic: WMS stream",
            "m=audio [media_port] UDP/TLS/RTP/SAVPF 111 0 8",
            "c=IN IP[media_ip_type] [media_ip]",
            "a=candidate:1 1 udp 2122260223 [media_ip] [media_base] typ host generation 0",
            "a=candidate:2 1 udp 1686052607 \(reflexiveAddress) 40000 typ srflx raddr [media_ip] rport [media_base] generation 0",
            "a=ice-ufrag:\(ufrag)",
            "a=ice-pwd:x9cml/YzichV2+XlhiMu8gAb",
            "a=fingerprint:\(fingerprint)",
            "a=setup:\(setup)",
            "a=mid:0",
            "a=sendrecv",
            "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
        ]
        var size = lines.reduce(0) { $0 + $1.utf8.count + 2 }
        var ssrc = 1_000_000
        while size < bytes {
            let line = "a=ssrc:\(ssrc) msid:stream track-\(ssrc)-0123456789abcdef0123456789abcdef0123456789"
            lines.append(line)
            size += line.utf8.count + 2
            ssrc += 1
        }
        return lines.joined(separator: "\n")
    }

    /// The number of padding lines in a body of `bytes` (what the far end must receive, line for line).
    static func ssrcLines(in text: String) -> Int {
        text.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("a=ssrc:") }.count
    }

    /// A UAC: INVITE with the offer, 100/180 optional, 200 with the answer, ACK, BYE, 200.
    static func uac(bodyBytes: Int) -> String {
        """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="algate WebRTC-size UAC">
          <send retrans="500">
            <![CDATA[

              INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: [service] <sip:[service]@[remote_ip]:[remote_port]>
              Call-ID: [call_id]
              CSeq: 1 INVITE
              Contact: sip:sipp@[local_ip]:[local_port]
              Max-Forwards: 70
              Subject: WebRTC-size offer
              Content-Type: application/sdp
              Content-Length: [len]

        \(sdp(bytes: bodyBytes, ufrag: "OFFR", setup: "actpass"))

            ]]>
          </send>
          <recv response="100" optional="true"></recv>
          <recv response="180" optional="true"></recv>
          <recv response="200" rtd="true"></recv>
        \(inDialog("ACK", cseq: 1, retrans: false))
        \(inDialog("BYE", cseq: 2, retrans: true))
          <recv response="200" crlf="true"></recv>
        </scenario>
        """
    }

    /// An in-dialog request of the UAC (to the callee's tag), in a `<send>`.
    static func inDialog(_ method: String, cseq: Int, retrans: Bool) -> String {
        """
          <send\(retrans ? " retrans=\"500\"" : "")>
            <![CDATA[

              \(method) sip:[service]@[remote_ip]:[remote_port] SIP/2.0
              Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
              From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
              To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
              Call-ID: [call_id]
              CSeq: \(cseq) \(method)
              Contact: sip:sipp@[local_ip]:[local_port]
              Max-Forwards: 70
              Content-Length: 0

            ]]>
          </send>
        """
    }

    /// A UAS: INVITE, 180, 200 with the answer, ACK, BYE, 200.
    static func uas(bodyBytes: Int) -> String {
        """
        <?xml version="1.0" encoding="ISO-8859-1" ?>
        <scenario name="algate WebRTC-size UAS">
          <recv request="INVITE" crlf="true"></recv>
          <send>
            <![CDATA[

              SIP/2.0 180 Ringing
              [last_Via:]
              [last_From:]
              [last_To:];tag=[pid]SIPpTag01[call_number]
              [last_Call-ID:]
              [last_CSeq:]
              Contact: <sip:[local_ip]:[local_port];transport=[transport]>
              Content-Length: 0

            ]]>
          </send>
          <send retrans="500">
            <![CDATA[

              SIP/2.0 200 OK
              [last_Via:]
              [last_From:]
              [last_To:];tag=[pid]SIPpTag01[call_number]
              [last_Call-ID:]
              [last_CSeq:]
              Contact: <sip:[local_ip]:[local_port];transport=[transport]>
              Content-Type: application/sdp
              Content-Length: [len]

        \(sdp(bytes: bodyBytes, ufrag: "ANSR", setup: "active"))

            ]]>
          </send>
          <recv request="ACK" optional="true" rtd="true" crlf="true"></recv>
          <recv request="BYE"></recv>
          <send>
            <![CDATA[

              SIP/2.0 200 OK
              [last_Via:]
              [last_From:]
              [last_To:]
              [last_Call-ID:]
              [last_CSeq:]
              Contact: <sip:[local_ip]:[local_port];transport=[transport]>
              Content-Length: 0

            ]]>
          </send>
        </scenario>
        """
    }

    /// Writes both scenarios into `directory`; returns (UAC, UAS).
    static func write(bodyBytes: Int, in directory: URL) throws -> (uac: URL, uas: URL) {
        let uac = directory.appendingPathComponent("webrtc_uac_\(bodyBytes).xml")
        let uas = directory.appendingPathComponent("webrtc_uas_\(bodyBytes).xml")
        try self.uac(bodyBytes: bodyBytes).write(to: uac, atomically: true, encoding: .utf8)
        try self.uas(bodyBytes: bodyBytes).write(to: uas, atomically: true, encoding: .utf8)
        return (uac, uas)
    }
}
