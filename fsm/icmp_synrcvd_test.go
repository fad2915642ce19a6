package fsm

import (
	"errors"
	"testing"
)

// ---- SYN-RECEIVED: ICMP errors quoting our SYN,ACK (icmp_synrcvd.go) ----

// synReceivedServer is a listener on serverAddr (ISS 300) that has
// answered the client's SYN (seq 100) with its SYN,ACK: a half-open
// connection in SYN-RECEIVED.
func synReceivedServer(t *testing.T, profile string) (*side, EndpointID, EndpointID) {
	t.Helper()
	cfg := fixedConfig(300)
	p, _ := ProfileByName(profile)
	if err := p.Apply(&cfg); err != nil {
		t.Fatal(err)
	}
	srv := newSide(t, "server", cfg)
	l, err := srv.e.Listen(serverAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.deliver(synWith(nil, false, ""))
	srv.expect("S. seq=300 ack=101")
	c := srv.e.connFor(Tuple{serverAddr, clientAddr})
	if c == nil {
		t.Fatal("no half-open connection")
	}
	srv.wantState(c.id, SynReceived)
	return srv, l, c.id
}

// serverTuple is the connection as the server sees it: an ICMP error about
// its SYN,ACK quotes serverAddr > clientAddr.
var serverTuple = Tuple{Local: serverAddr, Remote: clientAddr}

// icmpToServer delivers an ICMP error from the router quoting a segment the
// server sent with sequence number seq.
func icmpToServer(s *side, typ, code uint8, seq Seq) Ready {
	s.t.Helper()
	if err := s.e.DeliverICMP(routerAddr, serverAddr.Addr(), icmpMessage(routerAddr, typ, code, 0, serverTuple, seq, 0)); err != nil {
		s.t.Fatal(err)
	}
	return s.collect()
}

// TestICMPErrorsInSynReceived: an ICMP error quoting the SYN,ACK of a
// half-open connection. RFC 1122 §4.2.3.9: protocol and port unreachable
// are hard errors and TCP SHOULD abort; the connection is not synchronized,
// so RFC 5461 §4's "hard as soft" does not apply: the rfc profile drops it
// from the SYN queue at once, without a RST and without telling anyone (as
// Linux's tcp_req_err). RFC 5927 §4.1: only a quoted SEG.SEQ equal to the
// ISS (the octet in flight) is acted on. Soft errors are recorded. Under
// freebsd (switch icmp_synrcvd_bsd) the first error only marks it, as
// syncache_unreach does.
// Reference: RFC 1122 §4.2.3.9, RFC 5927 §4.1, RFC 5461 §4.
func TestICMPErrorsInSynReceived(t *testing.T) {
	for _, tc := range []struct {
		name      string
		profile   string
		typ, code uint8
		seq       Seq
		wantCode  Code
		dropped   bool  // the half-open connection is gone (CLOSED, not in the SYN queue)
		softErr   error // recorded when kept
	}{
		// Hard errors.
		{"port unreachable drops the half-open connection", "rfc", 3, 3, 300, CodeICMPSynRcvdDrop, true, nil},
		{"protocol unreachable drops it", "rfc", 3, 2, 300, CodeICMPSynRcvdDrop, true, nil},
		{"port unreachable under linux drops it", "linux", 3, 3, 300, CodeICMPSynRcvdDrop, true, nil},
		// RFC 5927 §4.1: a quoted sequence number other than the ISS.
		{"port unreachable quoting ISS+1 is ignored (blind attack)", "rfc", 3, 3, 301, CodeICMPOutOfWindow, false, nil},
		{"port unreachable quoting ISS-1 is ignored", "rfc", 3, 3, 299, CodeICMPOutOfWindow, false, nil},
		// Soft errors.
		{"host unreachable is recorded", "rfc", 3, 1, 300, CodeICMPSoftError, false, ErrHostUnreachable},
		{"host prohibited is soft under rfc", "rfc", 3, 10, 300, CodeICMPSoftError, false, ErrConnectionRefused},
		// FreeBSD's syncache_unreach: the first error only marks the entry.
		{"first port unreachable only marks it under freebsd", "freebsd", 3, 3, 300, CodeICMPSynRcvdKept, false, ErrConnectionRefused},
		{"first host unreachable marks it under freebsd", "freebsd", 3, 1, 300, CodeICMPSynRcvdKept, false, ErrHostUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, l, id := synReceivedServer(t, tc.profile)
			r := icmpToServer(srv, tc.typ, tc.code, tc.seq)
			if got := lastCode(t, r); got != tc.wantCode {
				t.Fatalf("explained %s, want %s", got, tc.wantCode)
			}
			x := r.Explanations[len(r.Explanations)-1]
			if x.Section() == "" {
				t.Error("the explanation names no RFC section")
			}
			srv.expectNothing() // never a RST to a peer that is unreachable
			for _, ev := range r.Events {
				if ev.Endpoint == id && ev.Kind == EventRefused {
					t.Error("an application was told: nobody holds a half-open connection")
				}
			}
			li, _ := srv.e.Endpoint(l)
			if !tc.dropped {
				srv.wantState(id, SynReceived)
				if li.SynQueue != 1 {
					t.Fatalf("SYN queue %d, want 1", li.SynQueue)
				}
				if got := srv.e.SoftError(id); !errors.Is(got, tc.softErr) {
					t.Fatalf("soft error %v, want %v", got, tc.softErr)
				}
				return
			}
			in, _ := srv.e.Endpoint(id)
			if in.State != Closed || !errors.Is(in.Err, ErrConnectionRefused) || li.SynQueue != 0 {
				t.Fatalf("connection %s (%v), SYN queue %d; want CLOSED, connection refused, 0", in.State, in.Err, li.SynQueue)
			}
			if len(r.Transitions) != 1 || r.Transitions[0].From != SynReceived || r.Transitions[0].To != Closed || r.Transitions[0].Cause != tc.wantCode {
				t.Fatalf("transitions %v, want SYN-RECEIVED -> CLOSED (%s)", r.Transitions, tc.wantCode)
			}
			// The client's retransmitted SYN opens afresh.
			srv.deliver(synWith(nil, false, ""))
			srv.expect("S. seq=300 ack=101")
			if li, _ = srv.e.Endpoint(l); li.SynQueue != 1 {
				t.Fatalf("after a new SYN, SYN queue %d, want 1", li.SynQueue)
			}
		})
	}
}

// TestICMPSynReceivedBSDSecondErrorAfterRetransmissions: under
// icmp_synrcvd_bsd an entry marked by an earlier error is dropped by a
// later one only once its SYN,ACK has been retransmitted at least 4 times
// (FreeBSD's syncache_unreach: sc_rxmits >= 3 + 1).
// Reference: RFC 5927 §4.1 (FreeBSD's choice), RFC 1122 §4.2.3.9.
func TestICMPSynReceivedBSDSecondErrorAfterRetransmissions(t *testing.T) {
	srv, l, id := synReceivedServer(t, "freebsd")
	if got := lastCode(t, icmpToServer(srv, 3, 3, 300)); got != CodeICMPSynRcvdKept {
		t.Fatalf("first error: %s", got)
	}
	rtx := 0
	for rtx < 4 {
		at, ok := srv.e.NextDeadline()
		if !ok {
			t.Fatalf("no timer after %d retransmissions", rtx)
		}
		srv.e.AdvanceTo(at)
		srv.collect()
		for len(srv.out) > 0 {
			srv.expect("S. seq=300 ack=101")
			rtx++
		}
		// Below the threshold a second error still only marks it.
		if rtx < 4 {
			if got := lastCode(t, icmpToServer(srv, 3, 3, 300)); got != CodeICMPSynRcvdKept {
				t.Fatalf("error after %d retransmissions: %s, want %s", rtx, got, CodeICMPSynRcvdKept)
			}
			srv.wantState(id, SynReceived)
		}
	}
	r := icmpToServer(srv, 3, 3, 300)
	if got := lastCode(t, r); got != CodeICMPSynRcvdBSDDrop {
		t.Fatalf("error after %d retransmissions: %s, want %s", rtx, got, CodeICMPSynRcvdBSDDrop)
	}
	srv.expectNothing()
	srv.wantState(id, Closed)
	if li, _ := srv.e.Endpoint(l); li.SynQueue != 0 {
		t.Fatalf("SYN queue %d, want 0", li.SynQueue)
	}
}

// TestICMPSynReceivedFastOpenAbort: a Fast Open connection already in the
// accept queue is held by the application (it may have read the SYN's
// data), so a hard error aborts it with the error reported, as Linux
// aborts a full socket in SYN-RECEIVED.
// Reference: RFC 1122 §4.2.3.9, RFC 7413 §4.2.2.
func TestICMPSynReceivedFastOpenAbort(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.FastOpenServer = true
	srv := newSide(t, "server", cfg)
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.e.SetListenerFastOpen(l, true)
	srv.deliver(synWith(srv.e.FastOpenServerCookie(clientAddr.Addr(), serverAddr.Addr()), false, "hello"))
	srv.expect("S. seq=300 ack=106")
	id, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	r := icmpToServer(srv, 3, 3, 300)
	if got := lastCode(t, r); got != CodeICMPSynRcvdAbort {
		t.Fatalf("explained %s, want %s", got, CodeICMPSynRcvdAbort)
	}
	srv.expectNothing()
	in, _ := srv.e.Endpoint(id)
	refused := false
	for _, ev := range r.Events {
		refused = refused || (ev.Endpoint == id && ev.Kind == EventRefused)
	}
	if in.State != Closed || !errors.Is(in.Err, ErrConnectionRefused) || !refused {
		t.Fatalf("connection %s (%v), refused event %v; want CLOSED, connection refused, reported", in.State, in.Err, refused)
	}
}
