package fsm

import "time"

// Codes of the linux profile's later switches (issue 12). Their own
// numeric range, like the recovery codes; only the names are API.
const codeLinuxBase Code = 1600

const (
	CodeSimOpenDupAck Code = codeLinuxBase + iota
	CodeSynSentBadAckRexmit
	numLinuxCodes
)

var linuxCodeSpecs = [numLinuxCodes - codeLinuxBase]codeSpec{
	CodeSimOpenDupAck - codeLinuxBase:       {"SIMOPEN_DUP_ACK", "RFC 9293 §3.10.7.4", "simopen_dup_ack=1 (as Linux): the SYN,ACK after a simultaneous open repeats the SYN already received (SEG.SEQ {SEG.SEQ} below RCV.NXT {RCV.NXT}); it completes the open and is answered with an ACK, as a duplicate is"},
	CodeSynSentBadAckRexmit - codeLinuxBase: {"SYNSENT_BADACK_REXMIT", "RFC 9293 §3.10.7.3", "synsent_badack_rexmit (as Linux): the unacceptable ACK {SEG.ACK} in SYN-SENT re-arms the retransmission timer to {RTO.MS} ms, so the SYN not yet retransmitted is sent again soon"},
}

// synSentBadAckRexmit, under synsent_badack_rexmit, re-arms the
// retransmission timer of a SYN not yet retransmitted to the switch's
// short delay (Linux's TCP_TIMEOUT_MIN).
func (e *Engine) synSentBadAckRexmit(c *conn, ack Seq) {
	ms := e.cfg.SynSentBadAckRtx
	if ms <= 0 || c.retries != 0 {
		return
	}
	c.rtxAt = e.deadlineAfter(time.Duration(ms) * time.Millisecond)
	e.schedule(c)
	e.explain(c.id, CodeSynSentBadAckRexmit, ActionInfo, Field{"SEG.ACK", uint64(ack)}, Field{"RTO.MS", uint64(ms)})
}

// simOpenDupAck, under simopen_dup_ack, has segmentArrives answer the
// SYN,ACK that completes a simultaneous open with an ACK once the
// segment is processed (and a queued FIN is sent).
func (e *Engine) simOpenDupAck(c *conn) {
	if !e.cfg.SimOpenDupAck {
		return
	}
	e.simOpenAck = true
	e.explain(c.id, CodeSimOpenDupAck, ActionAnswered, Field{"SEG.SEQ", uint64(c.irs)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
}
