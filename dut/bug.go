package dut

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// Bug is a rule an engine stack breaks on purpose, to show that a script
// catches it (the stack's own mistakes), or a way an agent misbehaves, to
// show that a run survives it (an agent's failures).
type Bug uint8

const (
	BugNone Bug = iota
	// BugWrongAck acknowledges one byte more than it received
	// (RFC 9293 §3.4: the ACK number is the next sequence number expected).
	BugWrongAck
	// BugIgnoreWindow reads every peer window as 65535: it sends past
	// the window the peer offers (RFC 9293 §3.8.6.1).
	BugIgnoreWindow
	// BugNoTimeWait leaves TIME-WAIT at once (2·MSL of 2 ms): a
	// retransmitted FIN finds no connection (RFC 9293 §3.6.1, §3.10.7.4).
	BugNoTimeWait

	// BugHang never answers a socket call.
	BugHang
	// BugGarbage answers every socket call with -1 and an errno that
	// does not exist.
	BugGarbage
	// BugCloseStream ends every packet stream at once.
	BugCloseStream
	// BugMalformed truncates every packet it emits to 7 bytes.
	BugMalformed
)

var bugNames = [...]string{
	BugNone: "none", BugWrongAck: "wrong-ack", BugIgnoreWindow: "ignore-window", BugNoTimeWait: "no-time-wait",
	BugHang: "hang", BugGarbage: "garbage", BugCloseStream: "close-stream", BugMalformed: "malformed",
}

func (b Bug) String() string {
	if int(b) < len(bugNames) {
		return bugNames[b]
	}
	return fmt.Sprintf("bug(%d)", b)
}

// ParseBug reads a bug's name.
func ParseBug(s string) (Bug, error) {
	for i, n := range bugNames {
		if s == n {
			return Bug(i), nil
		}
	}
	return 0, fmt.Errorf("unknown bug %q: want one of %s", s, strings.Join(bugNames[:], ", "))
}

// Stack is what Reset says the stack is.
func (b Bug) Stack() string {
	if b == BugNone {
		return "tcpstated engine (wall clock)"
	}
	return "tcpstated engine (wall clock) with bug " + b.String()
}

func (b Bug) config(c fsm.Config) fsm.Config {
	if b == BugNoTimeWait {
		c.MSL = time.Millisecond
	}
	return c
}

// outbound changes or drops (nil) a packet the engine emitted.
func (b Bug) outbound(pkt []byte) []byte {
	switch b {
	case BugWrongAck:
		return rewrite(pkt, func(s *fsm.Segment) {
			if s.Flags&fsm.FlagACK != 0 {
				s.Ack++
			}
		})
	case BugMalformed:
		return pkt[:min(len(pkt), 7)]
	}
	return pkt
}

// inbound changes a packet before the engine reads it.
func (b Bug) inbound(pkt []byte) []byte {
	if b == BugIgnoreWindow {
		return rewrite(pkt, func(s *fsm.Segment) {
			if s.Flags&fsm.FlagSYN == 0 { // the SYN's window is never scaled
				s.Window = 65535
			}
		})
	}
	return pkt
}

// call misbehaves before a call runs.
func (b Bug) call(ctx context.Context) error {
	if b == BugHang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// result misbehaves in a call's answer.
func (b Bug) result(_ *target.Call, r target.Result) target.Result {
	if b == BugGarbage {
		return target.Result{Ret: -1, Errno: "EGARBAGE"}
	}
	return r
}

// rewrite decodes an IP packet, lets f change its segment and encodes it
// again with fresh checksums; a packet that does not decode is kept.
func rewrite(pkt []byte, f func(*fsm.Segment)) []byte {
	src, dst, tcp, err := fsm.ParsePacket(pkt)
	if err != nil {
		return pkt
	}
	seg, err := fsm.ParseSegment(tcp)
	if err != nil {
		return pkt
	}
	f(&seg)
	return fsm.AppendPacket(nil, src, dst, &seg)
}

func (e *Engine) closesStreams() bool { return e.bug == BugCloseStream }
