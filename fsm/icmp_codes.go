package fsm

import "errors"

// Codes of ICMP input (icmp.go). Their own numeric range, like the
// recovery codes; only the names are API.
const codeICMPBase Code = 1400

const (
	CodeICMPNotError Code = codeICMPBase + iota
	CodeICMPNoConnection
	CodeICMPIgnored
	CodeICMPOutOfWindow
	CodeICMPHardAbort
	CodeICMPHardAbortBSD
	CodeICMPHardNoReset
	CodeICMPHardAsSoft
	CodeICMPSoftError
	CodePMTULowered
	CodePMTUNotSmaller
	CodePMTUSynSent
	CodePMTUSynMSS
	CodeICMPSynRcvdDrop    // icmp_synrcvd.go
	CodeICMPSynRcvdAbort   // icmp_synrcvd.go
	CodeICMPSynRcvdKept    // icmp_synrcvd.go
	CodeICMPSynRcvdBSDDrop // icmp_synrcvd.go
	numICMPCodes
)

// Errors ICMP messages report.
var (
	ErrHostUnreachable = errors.New("host unreachable")
	ErrNetUnreachable  = errors.New("network unreachable")
)

const (
	secICMP    = "RFC 9293 §3.9.2.2, RFC 1122 §4.2.3.9"
	secICMPSeq = "RFC 5927 §4.1"
	secPMTU    = "RFC 1191 §6.5, RFC 8201 §5.4"
)

var icmpCodeSpecs = [numICMPCodes - codeICMPBase]codeSpec{
	CodeICMPNotError - codeICMPBase:       {"ICMP_NOT_ERROR", "RFC 792, RFC 4443 §2.1", "ICMP {ICMP.TYPE} code {ICMP.CODE} is not an error message (echo, router advertisement, ...): nothing for TCP, dropped"},
	CodeICMPNoConnection - codeICMPBase:   {"ICMP_NO_CONNECTION", secICMP, "ICMP {ICMP.TYPE} code {ICMP.CODE} quotes a segment of no connection (or of a listener): nothing to act on, dropped"},
	CodeICMPIgnored - codeICMPBase:        {"ICMP_IGNORED", secICMP, "ICMP {ICMP.TYPE} code {ICMP.CODE} (source quench, redirect, or unknown) is not acted on by TCP: Source Quench MUST be discarded silently (MUST-55, RFC 6633), a redirect is the IP layer's"},
	CodeICMPOutOfWindow - codeICMPBase:    {"ICMP_OUT_OF_WINDOW", secICMPSeq, "the quoted {SEG.SEQ} is not in flight (SND.UNA <= SEG.SEQ < SND.NXT fails for {SND.UNA} {SND.NXT}): the ICMP {ICMP.TYPE} code {ICMP.CODE} is stale or forged (a blind attack) and is ignored"},
	CodeICMPHardAbort - codeICMPBase:      {"ICMP_HARD_ABORT", secICMP, "ICMP {ICMP.TYPE} code {ICMP.CODE} (protocol or port unreachable) is a hard error; for {SEG.SEQ} in flight in SYN-SENT the connection is aborted (SHLD-26) with \"connection refused\""},
	CodeICMPHardAbortBSD - codeICMPBase:   {"ICMP_HARD_ABORT_BSD", "RFC 5927 §4.1, RFC 1122 §4.2.3.9", "ICMP {ICMP.TYPE} code {ICMP.CODE} (administratively prohibited or time exceeded) is soft for RFC 1122 but hard under switch icmp_hard_bsd, as FreeBSD's tcp_ctlinput makes it: for {SEG.SEQ} in flight in SYN-SENT the connection is aborted"},
	CodeICMPHardNoReset - codeICMPBase:    {"ICMP_HARD_NO_RESET", secICMP, "ICMP {ICMP.TYPE} code {ICMP.CODE} is a hard error, but switch icmp_may_rst is 0: recorded as a soft error, the connection stays (RFC 1122 says SHOULD abort; FreeBSD's net.inet.tcp.icmp_may_rst=0)"},
	CodeICMPHardAsSoft - codeICMPBase:     {"ICMP_HARD_AS_SOFT", "RFC 5461 §4", "ICMP {ICMP.TYPE} code {ICMP.CODE} is a hard error, but the connection is synchronized: treated as a soft error (recorded, reported, no abort), so a transient or forged error cannot kill an established connection"},
	CodeICMPSoftError - codeICMPBase:      {"ICMP_SOFT_ERROR", secICMP, "ICMP {ICMP.TYPE} code {ICMP.CODE} for {SEG.SEQ} is a soft error: recorded and reported to the application (SHLD-25), never aborts (MUST-56); a later give-up may name it"},
	CodePMTULowered - codeICMPBase:        {"PMTU_LOWERED", secPMTU, "fragmentation needed / Packet Too Big with {MTU}: the send MSS drops from {SND.MSS} to {MSS} (path MTU less the IP and TCP headers, never below the RFC 1191 / RFC 8201 floor); the segment at {SND.UNA} is sent again at the new size at once, no congestion response"},
	CodePMTUNotSmaller - codeICMPBase:     {"PMTU_NOT_SMALLER", "RFC 1191 §6.3, RFC 8201 §4", "fragmentation needed / Packet Too Big with {MTU} gives an MSS of {MSS}, not below the current {SND.MSS}: a path MTU estimate is never raised by such a message, ignored"},
	CodePMTUSynSent - codeICMPBase:        {"PMTU_SYN_SENT", secPMTU, "fragmentation needed / Packet Too Big with {MTU} in SYN-SENT: no data is in flight; the send MSS will be at most {MSS} once the peer's MSS is known"},
	CodePMTUSynMSS - codeICMPBase:         {"PMTU_SYN_MSS", secPMTU, "Packet Too Big with {MTU} in SYN-SENT: under switch pmtu_syn_mss the MSS option of the retransmitted SYN becomes {MSS}, as FreeBSD's host cache makes it (RFC 9293 §3.7.1 derives the option from the receive side; the rfc profile leaves it)"},
	CodeICMPSynRcvdDrop - codeICMPBase:    {"ICMP_SYN_RECEIVED_DROP", secICMP + ", RFC 5927 §4.1", "ICMP {ICMP.TYPE} code {ICMP.CODE} (a hard error) quotes our SYN,ACK ({SEG.SEQ} = ISS, the one octet in flight) of a half-open connection in SYN-RECEIVED: RFC 1122 says TCP SHOULD abort on a hard error, and the connection is not synchronized yet (RFC 5461 §4 keeps hard errors soft only for synchronized ones), so it is removed from the listener's SYN queue without a RST; no application holds it, so nobody is told (as Linux's tcp_req_err drops the request)"},
	CodeICMPSynRcvdAbort - codeICMPBase:   {"ICMP_SYN_RECEIVED_ABORT", secICMP + ", RFC 5927 §4.1", "ICMP {ICMP.TYPE} code {ICMP.CODE} (a hard error) quotes {SEG.SEQ}, in flight, of a connection in SYN-RECEIVED that an application holds (a simultaneous open, or a Fast Open connection already in the accept queue): not synchronized yet, so it is aborted (RFC 1122: SHOULD abort) and the error is reported"},
	CodeICMPSynRcvdKept - codeICMPBase:    {"ICMP_SYN_RECEIVED_KEPT", "RFC 5927 §4.1, RFC 1122 §4.2.3.9", "ICMP {ICMP.TYPE} code {ICMP.CODE} quotes our SYN,ACK ({SEG.SEQ} = ISS) of a half-open connection in SYN-RECEIVED; under switch icmp_synrcvd_bsd it is only recorded ({RETRIES} SYN,ACK retransmissions so far): FreeBSD's syncache_unreach drops the entry only on a second error after at least 4 retransmissions, so a brief outage does not kill the handshake"},
	CodeICMPSynRcvdBSDDrop - codeICMPBase: {"ICMP_SYN_RECEIVED_DROP_BSD", "RFC 5927 §4.1, RFC 1122 §4.2.3.9", "ICMP {ICMP.TYPE} code {ICMP.CODE} quotes our SYN,ACK ({SEG.SEQ} = ISS) of a half-open connection in SYN-RECEIVED after an earlier error and {RETRIES} SYN,ACK retransmissions (at least 4): under switch icmp_synrcvd_bsd, as FreeBSD's syncache_unreach, it is removed from the SYN queue without a RST"},
}
