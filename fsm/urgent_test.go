package fsm

import (
	"bytes"
	"testing"
)

func hasEvent(r Ready, id EndpointID, k EventKind) bool {
	for _, ev := range r.Events {
		if ev.Endpoint == id && ev.Kind == k {
			return true
		}
	}
	return false
}

// TestUrgentMarkOnReceive: the urgent pointer is kept as RCV.UP, the
// application is told, and the mark moves closer as it reads; the data
// itself stays in line.
//
//	< .U seq=101 up=2 "!!rest"     RCV.UP = 103, EVENT URGENT
//	  Urgent: 2 bytes before the mark, last urgent octet '!'
//	  read 1: 1 before; read 1 more: not pending
//
// Reference: RFC 9293 §3.8.5 (MUST-30), §3.10.7.4 sixth step; RFC 6093 §2, §5.
func TestUrgentMarkOnReceive(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagURG, Seq: 101, Ack: 301, Window: 65535, Urgent: 2, Payload: []byte("!!rest")})
	r := srv.collect()
	wantExplanation(t, r, CodeUrgentData)
	if !hasEvent(r, s, EventUrgent) {
		t.Fatalf("no URGENT event in %v", r.Events)
	}
	u, err := srv.e.Urgent(s)
	if err != nil || !u.Pending || u.Pointer != 103 || u.Before != 2 || !u.LastOK || u.Last != '!' {
		t.Fatalf("Urgent = %+v, %v; want pending, pointer 103, 2 before, last '!'", u, err)
	}
	buf := make([]byte, 1)
	srv.e.Receive(s, buf)
	if u, _ := srv.e.Urgent(s); !u.Pending || u.Before != 1 {
		t.Fatalf("after reading 1 byte: %+v, want 1 before the mark", u)
	}
	srv.e.Receive(s, buf)
	if u, _ := srv.e.Urgent(s); u.Pending {
		t.Fatalf("after reading the urgent data: %+v, want nothing pending", u)
	}
	mustRead(t, srv, s, "rest")
}

// TestUrgentDataOfAnyLength: urgent data longer than a segment: the
// pointer runs ahead of what has arrived, a later segment repeating the
// same pointer does not signal again, and the last urgent octet is known
// once it arrives. Reference: RFC 9293 §3.8.5 (MUST-31), RFC 6093 §4.
func TestUrgentDataOfAnyLength(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	data := bytes.Repeat([]byte("u"), 400)
	data[299] = '$'
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagURG, Seq: 101, Ack: 301, Window: 65535, Urgent: 300, Payload: data[:100]})
	if !hasEvent(srv.collect(), s, EventUrgent) {
		t.Fatal("no URGENT event")
	}
	if u, _ := srv.e.Urgent(s); !u.Pending || u.Before != 300 || u.LastOK {
		t.Fatalf("Urgent = %+v, want 300 before the mark, last octet not yet here", u)
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagURG, Seq: 201, Ack: 301, Window: 65535, Urgent: 200, Payload: data[100:]})
	r := srv.collect()
	wantExplanation(t, r, CodeUrgentIgnored)
	if hasEvent(r, s, EventUrgent) {
		t.Fatal("the same pointer signalled twice")
	}
	if u, _ := srv.e.Urgent(s); u.Before != 300 || !u.LastOK || u.Last != '$' {
		t.Fatalf("Urgent = %+v, want last urgent octet '$'", u)
	}
}

// TestSendUrgent: SEND with the urgent flag: the segment carries URG and
// the pointer to the octet after the urgent data; once that is
// acknowledged, later segments carry none.
//
//	send "ab", urgent "x"   > P.U seq=101 len=3 up=3
//	< . ack=104
//	send "z"                > P. seq=104 len=1
//
// Reference: RFC 9293 §3.8.5, §3.10.2; RFC 6093 §2.
func TestSendUrgent(t *testing.T) {
	cfg := fixedConfig(100)
	cfg.NoNagle = true
	cli, srv, c, _ := established(t, cfg, fixedConfig(300))
	if n, err := cli.e.SendUrgent(c, []byte("abx")); n != 3 || err != nil {
		t.Fatalf("SendUrgent = %d, %v", n, err)
	}
	p := cli.expect("P. seq=101 ack=301 len=3")
	if p.Segment.Flags&FlagURG == 0 || p.Segment.Urgent != 3 {
		t.Fatalf("flags %v urgent %d, want URG with pointer 3", p.Segment.Flags, p.Segment.Urgent)
	}
	srv.deliver(p)
	relay(srv, cli, ". seq=301 ack=104")
	mustSend(t, cli, c, "z")
	if p := cli.expect("P. seq=104 ack=301 len=1"); p.Segment.Flags&FlagURG != 0 {
		t.Fatal("URG still set after the urgent data was acknowledged")
	}
}
