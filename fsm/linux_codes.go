package fsm

// Codes of the linux profile's later switches (issue 12). Their own
// numeric range, like the recovery codes; only the names are API.
const codeLinuxBase Code = 1600

const (
	CodeSimOpenDupAck Code = codeLinuxBase + iota
	numLinuxCodes
)

var linuxCodeSpecs = [numLinuxCodes - codeLinuxBase]codeSpec{
	CodeSimOpenDupAck - codeLinuxBase: {"SIMOPEN_DUP_ACK", "RFC 9293 §3.10.7.4", "simopen_dup_ack=1 (as Linux): the SYN,ACK after a simultaneous open repeats the SYN already received (SEG.SEQ {SEG.SEQ} below RCV.NXT {RCV.NXT}); it completes the open and is answered with an ACK, as a duplicate is"},
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
