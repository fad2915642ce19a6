package fsm

// Code identifies one rule of the RFCs the engine applied. Codes appear in
// explanations and as the cause of state transitions; their names are
// stable API (graders match on them).
type Code uint16

type codeSpec struct {
	name, section, text string
}

func (c Code) spec() codeSpec {
	if int(c) < len(codeSpecs) {
		return codeSpecs[c]
	}
	if c >= codeRecoveryBase && int(c-codeRecoveryBase) < len(recoveryCodeSpecs) {
		return recoveryCodeSpecs[c-codeRecoveryBase]
	}
	if c >= codeMD5Base && int(c-codeMD5Base) < len(md5CodeSpecs) {
		return md5CodeSpecs[c-codeMD5Base]
	}
	if c >= codeICMPBase && int(c-codeICMPBase) < len(icmpCodeSpecs) {
		return icmpCodeSpecs[c-codeICMPBase]
	}
	if c >= codeLinuxBase && int(c-codeLinuxBase) < len(linuxCodeSpecs) {
		return linuxCodeSpecs[c-codeLinuxBase]
	}
	if c >= codeFastOpenBase && int(c-codeFastOpenBase) < len(fastOpenCodeSpecs) {
		return fastOpenCodeSpecs[c-codeFastOpenBase]
	}
	return codeSpec{"UNKNOWN", "", "unknown code"}
}

func (c Code) String() string { return c.spec().name }

// Section returns the RFC section the code's rule comes from.
func (c Code) Section() string { return c.spec().section }

const (
	CodeNone Code = iota
	// Intake.
	CodeBadChecksum
	// CLOSED (§3.10.7.1).
	CodeClosedRstDropped
	CodeClosedSentRst
	// LISTEN (§3.10.7.2).
	CodeListenRstIgnored
	CodeListenAckSentRst
	CodeListenSynAccepted
	CodeListenOtherDropped
	CodeSynQueueFull
	CodeSynCookieSent
	CodeSynCookieAccepted
	CodeAcceptQueueFull
	CodeSynDataQueued
	// SYN-SENT (§3.10.7.3).
	CodeSynSentBadAckSentRst
	CodeSynSentBadAckRstDropped
	CodeSynSentRstRefused
	CodeSynSentRstNoAckDropped
	CodeSynSentSynAckEstablished
	CodeSynSentSimultaneousOpen
	CodeSynSentOtherDropped
	// Synchronized states (§3.10.7.4).
	CodeNoTimestampDropped
	CodePAWSRejected
	CodeUnacceptableSentAck
	CodeUnacceptableRstDropped
	CodeDuplicateSynResentSynAck
	CodeRstReset
	CodeRstChallengeAck
	CodeRstReturnToListen
	CodeRstClosed
	CodeSynChallengeAck
	CodeSynReturnToListen
	CodeTimeWaitReopened
	CodeNoAckDropped
	CodeAckOutsideRangeChallenge
	CodeSynReceivedAckEstablished
	CodeSynReceivedBadAckSentRst
	CodeAckTooHighSentAck
	CodeAckNew
	CodeAckDuplicate
	CodeAckOld
	CodeFastRetransmit
	CodeWindowUpdated
	CodeFinAcked
	CodeDataInOrder
	CodeDataOutOfOrder
	CodeDataDuplicate
	CodeDataTrimmed
	CodeDataAfterFinIgnored
	CodeDataAfterCloseReset
	CodeZeroWindowTextDropped
	CodeFinReceived
	CodeFinOutOfOrder
	CodeFinTimeWaitReAck
	CodeUrgentIgnored
	CodeSegmentNoChange
	// Timeouts (§3.10.8) and sending.
	CodeRetransmitTimeout
	CodeSynRetransmit
	CodeSynAckRetransmit
	CodeGiveUp
	CodeSynReceivedGiveUp
	CodePersistProbe
	CodeTimeWaitExpired
	CodeFinWait2Timeout
	CodeDelayedAckSent
	// Application calls (§3.10.1–§3.10.6).
	CodeAppListen
	CodeAppConnect
	CodeAppAccept
	CodeAppShutdown
	CodeAppClose
	CodeAppAbort
	CodeAppCloseUnreadReset
	CodeFinSent
	CodeListenerClosed
	CodeFastRetransmitSkipped
	CodeChallengeAckThrottled
	// Issue 10: engine conformance (FIN again, keep-alive, D-SACK, urgent
	// data, behaviour profiles).
	CodeFinAgainAcked
	CodeSynGiveUp
	CodeKeepAliveProbe
	CodeKeepAliveGiveUp
	CodeKeepInitTimeout
	CodeUrgentData
	// Behaviour switches (profile.go): each explanation names its switch.
	CodeSynRetransmitSlop
	CodeRstInsecureAccepted
	CodeSynInsecureReset
	CodeSynFinDropped
	CodeTimeWaitBSDDropped
	CodeTimeWaitBSDReopened
	CodeTimeWaitBSDDupAck
	CodeTimeWaitBSDAck
	CodeClosingFinAck
	CodeRstClosedReset
	CodeListenSynAckDropped
	CodeSynFinDataFinDropped
	CodeAckEverySecond
	CodeRcvBufRounded
	CodeKeepAliveProbeAlways
	CodeWindowUpdateBSD
	// Switches of the linux profile (profile_linux.go).
	CodeQuickAck
	CodeFinAckDelayed
	CodeRstWithAck
	CodeSendWaitConnect
	CodeRstErrnoLinux
	CodeNagleMinshall
	// RFC 9293 Appendix B (docs/CONFORMANCE.md).
	CodeBadAddress
	// Issue 10: urgent data out of band (oob.go).
	CodeUrgentOutOfBand
	// A held FIN left out of the SACK blocks (sack_fin=0).
	CodeFinNotSACKed
	// A duplicate's TSval recorded (ts_recent_dup=1).
	CodeTSRecentFromDuplicate
	numCodes
)

const (
	secChecksum    = "RFC 9293 §3.1"
	secClosed      = "RFC 9293 §3.10.7.1"
	secListen      = "RFC 9293 §3.10.7.2"
	secSynSent     = "RFC 9293 §3.10.7.3"
	secOtherwise   = "RFC 9293 §3.10.7.4"
	secTimeouts    = "RFC 9293 §3.10.8"
	secCookies     = "RFC 4987 §3.6"
	secRFC5961RST  = "RFC 5961 §3.2"
	secRFC5961SYN  = "RFC 5961 §4.2"
	secRFC5961ACK  = "RFC 5961 §5.2"
	secPAWS        = "RFC 7323 §5.3"
	secTSRequired  = "RFC 7323 §3.2"
	secFastRetx    = "RFC 5681 §3.2"
	secRTO         = "RFC 6298 §5"
	secZeroWindow  = "RFC 9293 §3.8.6.1"
	secDelayedAck  = "RFC 9293 §3.8.6.3"
	secTimeWaitSyn = "RFC 9293 §3.6.1, RFC 6191"
	secOpen        = "RFC 9293 §3.10.1"
	secClose       = "RFC 9293 §3.10.4"
	secAbort       = "RFC 9293 §3.10.5"
	secKeepAlive   = "RFC 9293 §3.8.4, RFC 1122 §4.2.3.6"
)

var codeSpecs = [numCodes]codeSpec{
	CodeNone:        {"NONE", "", ""},
	CodeBadChecksum: {"BAD_CHECKSUM", secChecksum, "the checksum {SEG.CHECKSUM} is wrong for this segment and its pseudo-header; the segment was dropped, as a receiver MUST (MUST-3)"},

	CodeClosedRstDropped: {"CLOSED_RST_DROPPED", secClosed, "no connection matches this 4-tuple (CLOSED); an incoming RST is discarded"},
	CodeClosedSentRst:    {"CLOSED_SENT_RST", secClosed, "no connection matches this 4-tuple (CLOSED); sent a RST in reply (<SEQ=SEG.ACK><CTL=RST> if ACK was set, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>) with {RST.SEQ} {RST.ACK}"},

	CodeListenRstIgnored:   {"LISTEN_RST_IGNORED", secListen, "first check for an RST: an incoming RST is ignored in LISTEN"},
	CodeListenAckSentRst:   {"LISTEN_ACK_SENT_RST", secListen, "second check for an ACK: any acknowledgment is bad in LISTEN; sent <SEQ=SEG.ACK><CTL=RST> with {SEG.ACK}"},
	CodeListenSynAccepted:  {"LISTEN_SYN_ACCEPTED", secListen, "third check for a SYN: {IRS} (SEG.SEQ), {RCV.NXT}, chose {ISS}; sent <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>; the new connection waits in SYN-RECEIVED in the SYN queue ({SYNQ.LEN} of {SYNQ.LIMIT})"},
	CodeListenOtherDropped: {"LISTEN_OTHER_DROPPED", secListen, "fourth, other text or control: a segment without SYN, ACK or RST is dropped in LISTEN"},
	CodeSynQueueFull:       {"SYN_QUEUE_FULL", "RFC 4987 §3.1", "the SYN queue is full ({SYNQ.LEN} of {SYNQ.LIMIT}) and SYN cookies are off: the SYN was dropped ({DROPS} so far)"},
	CodeSynCookieSent:      {"SYN_COOKIE_SENT", secCookies, "the SYN queue is full ({SYNQ.LEN} of {SYNQ.LIMIT}): answered with a SYN cookie as {ISS} and kept no state; options other than MSS are not kept"},
	CodeSynCookieAccepted:  {"SYN_COOKIE_ACCEPTED", secCookies, "the ACK carries a valid SYN cookie ({SEG.ACK} - 1): the connection was rebuilt from it and entered ESTABLISHED"},
	CodeAcceptQueueFull:    {"ACCEPT_QUEUE_FULL", "RFC 9293 §3.10.7.4", "the accept queue is full ({ACCEPTQ.LEN} of {ACCEPTQ.LIMIT}): the ACK completing the handshake was dropped and the connection stays in SYN-RECEIVED until the application accepts or the SYN,ACK is retransmitted ({DROPS} so far; Linux does the same)"},
	CodeSynDataQueued:      {"SYN_DATA_QUEUED", secListen, "the SYN carries text or a FIN ({SEG.LEN} bytes, {FIN}): queued for processing later, processed once the connection is ESTABLISHED"},

	CodeSynSentBadAckSentRst:     {"SYN_SENT_BAD_ACK_SENT_RST", secSynSent, "first check the ACK bit: {SEG.ACK} is not in (ISS, SND.NXT] with {ISS} {SND.NXT}; sent <SEQ=SEG.ACK><CTL=RST> and dropped the segment"},
	CodeSynSentBadAckRstDropped:  {"SYN_SENT_BAD_ACK_RST_DROPPED", secSynSent, "first check the ACK bit: {SEG.ACK} is not acceptable and the segment is a RST: dropped"},
	CodeSynSentRstRefused:        {"SYN_SENT_RST_REFUSED", secSynSent, "second check the RST bit: the RST acknowledges our SYN ({SEG.ACK}): connection refused, the TCB is deleted"},
	CodeSynSentRstNoAckDropped:   {"SYN_SENT_RST_NO_ACK_DROPPED", secSynSent, "second check the RST bit: a RST without an ACK is dropped in SYN-SENT"},
	CodeSynSentSynAckEstablished: {"SYN_SENT_SYN_ACK_ESTABLISHED", secSynSent, "fourth check the SYN bit: {IRS}, {RCV.NXT}; the ACK covers our SYN ({SND.UNA} > ISS): ESTABLISHED, sent <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"},
	CodeSynSentSimultaneousOpen:  {"SYN_SENT_SIMULTANEOUS_OPEN", secSynSent, "fourth check the SYN bit: a SYN without ACK (simultaneous open): {IRS}, {RCV.NXT}; entered SYN-RECEIVED and sent <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"},
	CodeSynSentOtherDropped:      {"SYN_SENT_OTHER_DROPPED", secSynSent, "fifth, if neither SYN nor RST is set: the segment is dropped"},

	CodeNoTimestampDropped:        {"NO_TIMESTAMP_DROPPED", secTSRequired, "timestamps were negotiated but this non-RST segment carries none: silently dropped"},
	CodePAWSRejected:              {"PAWS_REJECTED", secPAWS, "PAWS: {SEG.TSVAL} is older than {TS.RECENT}: an old duplicate; sent <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped it"},
	CodeUnacceptableSentAck:       {"UNACCEPTABLE_SENT_ACK", secOtherwise, "first check sequence number: {SEG.SEQ} {SEG.LEN} is outside the receive window [RCV.NXT, RCV.NXT+RCV.WND) with {RCV.NXT} {RCV.WND}; sent <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, dropped the segment"},
	CodeUnacceptableRstDropped:    {"UNACCEPTABLE_RST_DROPPED", secOtherwise, "first check sequence number: the RST's {SEG.SEQ} is outside the receive window [RCV.NXT, RCV.NXT+RCV.WND) with {RCV.NXT} {RCV.WND}: dropped without reply"},
	CodeDuplicateSynResentSynAck:  {"DUPLICATE_SYN_RESENT_SYN_ACK", secOtherwise, "a retransmitted SYN ({SEG.SEQ} = IRS) in SYN-RECEIVED: our SYN,ACK may be lost, so it was sent again (as Linux does) instead of a bare ACK"},
	CodeRstReset:                  {"RST_RESET", secRFC5961RST, "second check the RST bit: {SEG.SEQ} exactly matches RCV.NXT: connection reset, the TCB is deleted"},
	CodeRstChallengeAck:           {"RST_CHALLENGE_ACK", secRFC5961RST, "second check the RST bit: {SEG.SEQ} is in the window but not RCV.NXT ({RCV.NXT}): sent a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, dropped the RST"},
	CodeRstReturnToListen:         {"RST_RETURN_TO_LISTEN", secOtherwise, "second check the RST bit: in SYN-RECEIVED from a passive OPEN the connection returns to LISTEN (the half-open entry is removed)"},
	CodeRstClosed:                 {"RST_CLOSED", secOtherwise, "second check the RST bit: in CLOSING, LAST-ACK or TIME-WAIT a RST closes the connection"},
	CodeSynChallengeAck:           {"SYN_CHALLENGE_ACK", secRFC5961SYN, "fourth check the SYN bit: a SYN in a synchronized state gets a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> with {SND.NXT} {RCV.NXT}; the segment was dropped"},
	CodeSynReturnToListen:         {"SYN_RETURN_TO_LISTEN", secOtherwise, "fourth check the SYN bit: a new SYN in SYN-RECEIVED from a passive OPEN returns the connection to LISTEN"},
	CodeTimeWaitReopened:          {"TIME_WAIT_REOPENED", secTimeWaitSyn, "a new SYN in TIME-WAIT with {SEG.SEQ} above {RCV.NXT} (or a newer timestamp): TIME-WAIT ends early and the listener takes the SYN with an ISS above the old SND.NXT"},
	CodeNoAckDropped:              {"NO_ACK_DROPPED", secOtherwise, "fifth check the ACK field: the ACK bit is off, so the segment is dropped"},
	CodeAckOutsideRangeChallenge:  {"ACK_OUTSIDE_RANGE_CHALLENGE", secRFC5961ACK, "fifth check the ACK field: {SEG.ACK} is outside [SND.UNA-MAX.SND.WND, SND.NXT] with {SND.UNA} {SND.NXT}: sent <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, dropped"},
	CodeSynReceivedAckEstablished: {"SYN_RECEIVED_ACK_ESTABLISHED", secOtherwise, "fifth check the ACK field: SND.UNA < SEG.ACK <= SND.NXT with {SEG.ACK}: the handshake is complete, ESTABLISHED"},
	CodeSynReceivedBadAckSentRst:  {"SYN_RECEIVED_BAD_ACK_SENT_RST", secOtherwise, "fifth check the ACK field: {SEG.ACK} is not in (SND.UNA, SND.NXT] with {SND.UNA} {SND.NXT}; sent <SEQ=SEG.ACK><CTL=RST>"},
	CodeAckTooHighSentAck:         {"ACK_TOO_HIGH_SENT_ACK", secOtherwise, "fifth check the ACK field: {SEG.ACK} > {SND.NXT} acknowledges data not yet sent; sent an ACK, dropped the segment"},
	CodeAckNew:                    {"ACK_NEW", secOtherwise, "fifth check the ACK field: {SEG.ACK} acknowledges new data; SND.UNA advanced from {OLD.SND.UNA}"},
	CodeAckDuplicate:              {"ACK_DUPLICATE", "RFC 5681 §2", "duplicate ACK number {DUPACKS} for {SEG.ACK} with data outstanding"},
	CodeAckOld:                    {"ACK_OLD", secOtherwise, "fifth check the ACK field: {SEG.ACK} < {SND.UNA} is a duplicate and is ignored"},
	CodeFastRetransmit:            {"FAST_RETRANSMIT", secFastRetx, "third duplicate ACK: fast retransmit of {SEG.SEQ}; ssthresh set to {SSTHRESH}, cwnd to {CWND}"},
	CodeWindowUpdated:             {"WINDOW_UPDATED", secOtherwise, "fifth check: the send window is updated to {SND.WND} (SND.WL1={SND.WL1}, SND.WL2={SND.WL2})"},
	CodeFinAcked:                  {"FIN_ACKED", secOtherwise, "fifth check: our FIN is acknowledged ({SEG.ACK})"},
	CodeDataInOrder:               {"DATA_IN_ORDER", secOtherwise, "seventh, process the segment text: {SEG.LEN} bytes delivered; RCV.NXT advanced to {RCV.NXT}"},
	CodeDataOutOfOrder:            {"DATA_OUT_OF_ORDER", secOtherwise, "seventh, process the segment text: {SEG.SEQ} is above {RCV.NXT}; {QUEUED} new bytes of its {SEG.LEN} held for reassembly ({OOO.BYTES} bytes in {OOO.BLOCKS} blocks) and a duplicate ACK sent at once (RFC 5681 §4.2)"},
	CodeDataDuplicate:             {"DATA_DUPLICATE", secOtherwise, "first check: {TRIMMED} bytes before RCV.NXT ({RCV.NXT}) were already received and are trimmed"},
	CodeDataTrimmed:               {"DATA_TRIMMED", secOtherwise, "first check: {SEG.SEQ} {SEG.LEN} reaches beyond the right edge of the window (RCV.NXT+RCV.WND with {RCV.NXT} {RCV.WND}): the {TRIMMED} bytes beyond it were discarded"},
	CodeDataAfterFinIgnored:       {"DATA_AFTER_FIN_IGNORED", secOtherwise, "seventh, process the segment text: a FIN has already been received, so the {SEG.LEN} bytes at {SEG.SEQ} (RCV.NXT {RCV.NXT}) are discarded"},
	CodeDataAfterCloseReset:       {"DATA_AFTER_CLOSE_RESET", "RFC 9293 §3.10.7.4, RFC 2525 §2.17", "new data arrived after the application closed the connection: nothing can read it, so the connection was reset (as Linux does)"},
	CodeZeroWindowTextDropped:     {"ZERO_WINDOW_TEXT_DROPPED", secOtherwise, "RCV.WND is zero: the ACK is processed but the {SEG.LEN} bytes of text are not accepted"},
	CodeFinReceived:               {"FIN_RECEIVED", secOtherwise, "eighth, check the FIN bit: FIN at {SEG.SEQ}; RCV.NXT advanced over it to {RCV.NXT} and an ACK sent; the application will read end-of-file"},
	CodeFinOutOfOrder:             {"FIN_OUT_OF_ORDER", secOtherwise, "eighth: FIN at {SEG.SEQ} is above {RCV.NXT}; held until the data before it arrives"},
	CodeFinTimeWaitReAck:          {"FIN_TIME_WAIT_REACK", secOtherwise, "fifth and eighth steps in TIME-WAIT: the peer retransmitted its FIN ({SEG.SEQ}; our last ACK was lost): sent the ACK for {RCV.NXT} again and restarted the 2·MSL timeout"},
	CodeUrgentIgnored:             {"URGENT_IGNORED", secOtherwise, "sixth, check the URG bit: the urgent pointer ({SEG.UP}) does not move RCV.UP ahead, or the peer's FIN was already received: ignored"},
	CodeSegmentNoChange:           {"SEGMENT_NO_CHANGE", secOtherwise, "the segment ({SEG.SEQ}, {SEG.ACK}) passed every check and acknowledged nothing new: nothing to do"},

	CodeRetransmitTimeout: {"RETRANSMIT_TIMEOUT", secRTO, "retransmission timeout: resent from {SND.UNA}; RTO backed off to {RTO.MS} ms (retry {RETRIES})"},
	CodeSynRetransmit:     {"SYN_RETRANSMIT", secRTO, "no answer to the SYN: resent it; RTO backed off to {RTO.MS} ms (retry {RETRIES})"},
	CodeSynAckRetransmit:  {"SYN_ACK_RETRANSMIT", secRTO, "no ACK for the SYN,ACK: resent it; RTO backed off to {RTO.MS} ms (retry {RETRIES})"},
	CodeGiveUp:            {"GIVE_UP", "RFC 9293 §3.8.3", "retransmitted {RETRIES} times without an acknowledgment: the connection is aborted (user timeout)"},
	CodeSynReceivedGiveUp: {"SYN_RECEIVED_GIVE_UP", "RFC 9293 §3.8.3", "the SYN,ACK was retransmitted {RETRIES} times without an ACK: the half-open connection is dropped"},
	CodePersistProbe:      {"ZERO_WINDOW_PROBE", secZeroWindow, "the peer's window is zero: sent a one-byte probe at {SEG.SEQ}; next probe in {RTO.MS} ms"},
	CodeTimeWaitExpired:   {"TIME_WAIT_EXPIRED", secTimeouts, "the time-wait timeout (2·MSL = {TIMEOUT.MS} ms) expired: the TCB is deleted"},
	CodeFinWait2Timeout:   {"FIN_WAIT_2_TIMEOUT", "RFC 9293 §3.10.8 (Linux tcp_fin_timeout)", "the application closed the connection and the peer sent no FIN for {TIMEOUT.MS} ms: the TCB is deleted"},
	CodeDelayedAckSent:    {"DELAYED_ACK_SENT", secDelayedAck, "the delayed-ACK timer expired: sent ACK {RCV.NXT}"},

	CodeAppListen:           {"APP_LISTEN", secOpen, "passive OPEN: listening, backlog {BACKLOG}"},
	CodeAppConnect:          {"APP_CONNECT", secOpen, "active OPEN: chose {ISS} and sent <SEQ=ISS><CTL=SYN>"},
	CodeAppAccept:           {"APP_ACCEPT", secOpen, "the application accepted a connection from the accept queue"},
	CodeAppShutdown:         {"APP_SHUTDOWN", secClose, "CLOSE of the sending side: a FIN follows the queued data"},
	CodeAppClose:            {"APP_CLOSE", secClose, "CLOSE: a FIN follows the queued data; the application will not read or write again"},
	CodeAppAbort:            {"APP_ABORT", secAbort, "ABORT: sent <SEQ=SND.NXT><CTL=RST> where the state calls for it; the TCB is deleted"},
	CodeAppCloseUnreadReset: {"APP_CLOSE_UNREAD_RESET", "RFC 2525 §2.17", "CLOSE with {UNREAD} bytes unread: the data would be lost silently, so a RST was sent instead of a FIN"},
	CodeFinSent:             {"FIN_SENT", secClose, "all queued data is sent: sent FIN at {SEG.SEQ}"},
	CodeListenerClosed:      {"LISTENER_CLOSED", secClose, "the listener closed: connections not yet accepted are reset"},

	CodeChallengeAckThrottled: {"CHALLENGE_ACK_THROTTLED", "RFC 5961 §7", "the segment calls for a challenge ACK (RFC 5961 §3.2, §4.2 or §5.2), but this connection already sent {LIMIT} in the current second of the engine clock: dropped without reply"},
	CodeFastRetransmitSkipped: {"FAST_RETRANSMIT_SKIPPED", "RFC 6582 §3.2", "third duplicate ACK, but {SEG.ACK} does not cover more than {RECOVER} (SND.NXT at the last fast retransmit or timeout): no fast retransmit, ssthresh unchanged"},

	// Issue 10.
	CodeFinAgainAcked:         {"FIN_AGAIN_ACKED", secOtherwise, "eighth, check the FIN bit: the peer's FIN was already received, so this FIN ({SEG.SEQ}) is a retransmission: sent an ACK for {RCV.NXT} and remained in the state"},
	CodeSynGiveUp:             {"SYN_GIVE_UP", "RFC 9293 §3.8.3", "no answer to the SYN after {RETRIES} retransmissions over {ELAPSED.MS} ms: R2 for a SYN (at least 3 minutes unless configured shorter) has passed, so the open is given up"},
	CodeKeepAliveProbe:        {"KEEPALIVE_PROBE", secKeepAlive, "keep-alive: nothing received for {IDLE.MS} ms: sent probe {PROBE} of {COUNT}, <SEQ=SND.NXT-1><ACK=RCV.NXT><CTL=ACK> with {SEG.SEQ}, which the peer must answer with an ACK"},
	CodeKeepAliveGiveUp:       {"KEEPALIVE_GIVE_UP", secKeepAlive, "keep-alive: {PROBES} probes went unanswered ({IDLE.MS} ms without a segment): the peer is gone, so the connection is aborted with a RST (\"timed out\")"},
	CodeKeepInitTimeout:       {"KEEPINIT_TIMEOUT", "RFC 9293 §3.8.3 (FreeBSD TCP_KEEPINIT)", "the connection was not established within {TIMEOUT.MS} ms (TCP_KEEPINIT): the open is given up"},
	CodeUrgentData:            {"URGENT_DATA", "RFC 9293 §3.8.5, RFC 6093", "sixth, check the URG bit: RCV.UP advanced to {RCV.UP} (SEG.SEQ+{SEG.UP}, the octet after the urgent data) and the application was told; the urgent data stays in line"},
	CodeSynRetransmitSlop:     {"SYN_RETRANSMIT_SLOP", secRTO, "no answer to the SYN (or SYN,ACK): resent it; RTO backed off to {RTO.MS} ms (retry {RETRIES}) and rexmit_slop={SLOP.MS} ms added, so the next retransmission is in {NEXT.MS} ms (FreeBSD pads each backed-off RTO; RFC 6298 §5.5 only doubles it)"},
	CodeRstInsecureAccepted:   {"RST_INSECURE_ACCEPTED", secRFC5961RST, "insecure_rst=1 (RFC 793's rule, as FreeBSD's sysctl allows): the RST's {SEG.SEQ} is in the window but not {RCV.NXT}, and it is accepted; RFC 5961 §3.2 would send a challenge ACK"},
	CodeSynInsecureReset:      {"SYN_INSECURE_RESET", secRFC5961SYN, "insecure_syn=1 (RFC 793's rule, as FreeBSD's sysctl allows): a SYN at {SEG.SEQ} in the window resets the connection and <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK> is sent; RFC 5961 §4.2 would send a challenge ACK"},
	CodeSynFinDropped:         {"SYN_FIN_DROPPED", secOtherwise, "drop_synfin=1 (as FreeBSD's sysctl allows): a segment with both SYN and FIN set is dropped without reply; RFC 9293 would process it, queueing the FIN"},
	CodeTimeWaitBSDDropped:    {"TIME_WAIT_BSD_DROPPED", "RFC 9293 §3.10.7.4, RFC 1337 §3", "tw_bsd=1 (BSD tcp_twcheck): in TIME-WAIT a RST, a segment without ACK (a SYN at or below RCV.NXT too: {SEG.SEQ}, {RCV.NXT}) or one lacking timestamps is dropped without reply; RFC 9293 would answer a SYN with a challenge ACK and take an exact RST"},
	CodeTimeWaitBSDReopened:   {"TIME_WAIT_BSD_REOPENED", secTimeWaitSyn, "tw_bsd=1 (BSD tcp_twcheck): a SYN with {SEG.SEQ} above {RCV.NXT} ends TIME-WAIT and the listener takes it (no timestamp test, unlike RFC 6191)"},
	CodeTimeWaitBSDDupAck:     {"TIME_WAIT_BSD_DUP_ACK", secOtherwise, "tw_bsd=1 (BSD tcp_twcheck): an exact duplicate ACK ({SEG.SEQ}, {SEG.ACK}) in TIME-WAIT is dropped without reply"},
	CodeTimeWaitBSDAck:        {"TIME_WAIT_BSD_ACK", secOtherwise, "tw_bsd=1 (BSD tcp_twcheck): in TIME-WAIT every segment with ACK but an exact duplicate ACK is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, without RFC 9293's acceptability test ({SEG.SEQ}); {RESTARTED}=1 when it repeated the peer's FIN and 2·MSL restarted"},
	CodeClosingFinAck:         {"CLOSING_FIN_ACK", secOtherwise, "closing_fin_ack=1 (as BSD): in CLOSING the ACK for {RCV.NXT} is sent as a retransmission of our FIN at {SEG.SEQ}; RFC 9293 would send a bare ACK"},
	CodeRstClosedReset:        {"RST_CLOSED_RESET", secOtherwise, "rst_closing_econnreset=1 (as FreeBSD): a RST in CLOSING or LAST-ACK closes the connection with \"connection reset\" (ECONNRESET); RFC 9293 §3.10.7.4 closes it without an error"},
	CodeListenSynAckDropped:   {"LISTEN_SYN_ACK_DROPPED", secListen, "listen_synack_drop=1 (as FreeBSD): a SYN,ACK ({SEG.ACK}) at a listener is dropped without reply; RFC 9293 §3.10.7.2 would send <SEQ=SEG.ACK><CTL=RST>"},
	CodeSynFinDataFinDropped:  {"SYN_FIN_DATA_FIN_DROPPED", secSynSent, "synfin_data_drop_fin=1 (as FreeBSD): in SYN-SENT the FIN of a SYN,FIN carrying {SEG.LEN} bytes is dropped and the data kept; RFC 9293 §3.10.7.3 would queue the FIN with the text"},
	CodeAckEverySecond:        {"ACK_EVERY_SECOND", secDelayedAck, "ack_every_2nd=1 (as FreeBSD): the second data segment since our last ACK ({SEG.LEN} bytes, {RCV.NXT}) is acknowledged at once whatever its size; RFC 9293 §3.8.6.3 asks for an ACK every second full-sized segment"},
	CodeRcvBufRounded:         {"RCVBUF_ROUNDED", secOtherwise, "rcvbuf_mss_round=1 (as FreeBSD): the receive buffer is rounded up to {RCVBUF} bytes, a multiple of the MSS ({MSS}), and the acceptance test uses all of it even where the window field says less; RFC 9293 would take RCV.WND as advertised"},
	CodeQuickAck:              {"QUICK_ACK", secDelayedAck, "quickack={QUICKACK} (as Linux): quick-ack mode: data ({SEG.LEN} bytes, {RCV.NXT}) is acknowledged at once, quick ACK {N} of the connection; RFC 9293 §3.8.6.3 allows delaying it up to 0.5 s"},
	CodeFinAckDelayed:         {"FIN_ACK_DELAYED", secDelayedAck, "delack_fin=1 (as Linux, which enters interactive mode on a FIN): the ACK of the FIN ({RCV.NXT}) waits for the delayed-ACK timer ({DELAY.MS} ms), so a close in the meantime carries it with our FIN; RFC 9293 §3.10.7.4 eighth step acknowledges the FIN, and §3.8.6.3 allows delaying an ACK"},
	CodeRstWithAck:            {"RST_WITH_ACK", secAbort, "rst_ack=1 (as Linux's tcp_send_active_reset): the reset sent on abort carries ACK, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK> with {SEG.SEQ} {RCV.NXT}; RFC 9293 §3.10.5 sends <SEQ=SND.NXT><CTL=RST>, and §3.4 lets any segment carry an acknowledgment"},
	CodeSendWaitConnect:       {"SEND_WAIT_CONNECT", "RFC 9293 §3.10.2", "send_wait_connect=1 (as Linux): SEND before the connection is ESTABLISHED takes no data yet (insufficient resources: EAGAIN, or a blocking write waits); RFC 9293 §3.10.2 queues it for after the handshake"},
	CodeRstErrnoLinux:         {"RST_ERRNO_LINUX", secOtherwise, "rst_errno_linux=1 (as Linux's tcp_reset): the reset leaves \"connection reset\" (ECONNRESET) in SYN-RECEIVED and \"connection closing\" (EPIPE) in CLOSE-WAIT, not what RFC 9293 §3.10.7.4 names ({RFC.ERROR}: 1 \"connection refused\", 0 \"connection reset\")"},
	CodeNagleMinshall:         {"NAGLE_MINSHALL", "RFC 9293 §3.7.4", "nagle_minshall=1 (as Linux): the short segment {SEG.SEQ} ({SEG.LEN} bytes) is sent although data from {SND.UNA} is unacknowledged, since no earlier short segment is; RFC 1122 §4.2.3.4's Nagle rule would hold it for the ACK"},
	CodeKeepAliveProbeAlways:  {"KEEPALIVE_PROBE_ALWAYS", secKeepAlive, "always_keepalive=1 (as FreeBSD; RFC 1122 §4.2.3.6 says keep-alive MUST default to off): nothing received for {IDLE.MS} ms: sent probe {PROBE} of {COUNT}, <SEQ=SND.NXT-1><ACK=RCV.NXT><CTL=ACK> with {SEG.SEQ}"},
	CodeWindowUpdateBSD:       {"WINDOW_UPDATE_BSD", "RFC 9293 §3.8.6.2.2", "wnd_update_bsd=1 (as FreeBSD): reading opened the window by ADV={ADV} bytes, at least 2·MSS (MSS={MSS}) and a quarter of the buffer (or half of it): a window update is sent; the rfc rule waits until the window at least doubles"},
	CodeBadAddress:            {"BAD_ADDRESS", "RFC 9293 §3.9.2.3", "the segment is addressed to a broadcast or multicast address, or comes from one: discarded silently, as RFC 1122 §4.2.3.10 requires (MUST-57, MUST-63)"},
	CodeUrgentOutOfBand:       {"URGENT_OUT_OF_BAND", "RFC 9293 §3.8.5, RFC 6093 §5", "oob_inline=0 (as BSD sockets without SO_OOBINLINE): the last urgent octet ({URG.SEQ}, before RCV.UP={RCV.UP}) is held out of the stream for recv(MSG_OOB), and reads stop at the mark; RFC 6093 §5 keeps urgent data in line"},
	CodeTSRecentFromDuplicate: {"TS_RECENT_FROM_DUPLICATE", "RFC 7323 §4.3, §5.3", "ts_recent_dup=1 (as Linux): the duplicate {SEG.SEQ} {SEG.LEN} spans the last ACK sent ({LAST.ACK.SENT}), so its SEG.TSval={SEG.TSVAL} replaces TS.Recent={TS.RECENT}; RFC 7323 §5.3 drops it (R2) before recording (R3), and segments sent before it now fail PAWS"},
	CodeFinNotSACKed:          {"FIN_NOT_SACKED", "RFC 2018 §3, RFC 9293 §3.4", "sack_fin=0 (as FreeBSD): the held FIN at {SEG.SEQ} is left out of the SACK blocks, which cover text only; with sack_fin=1 the block would end one past it, since the FIN occupies a sequence number"},
}
