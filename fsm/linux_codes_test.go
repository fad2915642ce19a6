package fsm

import "testing"

// TestSimOpenDupAck: after a simultaneous open the peer's SYN,ACK
// completes the open under both values; under simopen_dup_ack it is also
// answered with an ACK, after the FIN a CLOSE in SYN-RECEIVED queued.
//
//	connect; < S seq=100   > S. seq=300 ack=101
//	[shutdown]; < S. seq=100 ack=301
//	0: [> F. seq=301]           1: [> F. seq=301] > . ack=101
//
// Reference: RFC 9293 §3.5 (Figure 8), §3.10.7.4 (first check).
func TestSimOpenDupAck(t *testing.T) {
	tests := []struct {
		name     string
		on, shut bool
		want     []string
	}{
		{"rfc", false, false, nil},
		{"simopen_dup_ack", true, false, []string{". seq=301 ack=101"}},
		{"rfc, FIN queued", false, true, []string{"F. seq=301 ack=101"}},
		{"simopen_dup_ack, FIN queued", true, true, []string{"F. seq=301 ack=101", ". seq=302 ack=101"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSide(t, "server", withSwitches(t, 300, "simopen_dup_ack", b2s(tt.on)))
			s, _ := srv.e.Connect(serverAddr, clientAddr)
			srv.expect("S seq=300")
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
			srv.expect("S. seq=300 ack=101")
			if tt.shut {
				srv.e.Shutdown(s)
			}
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 100, Ack: 301, Window: 1000})
			out := srv.collect()
			if tt.on {
				wantExplanation(t, out, CodeSimOpenDupAck)
			}
			for _, w := range tt.want {
				srv.expect(w)
			}
			srv.expectNothing()
		})
	}
}
