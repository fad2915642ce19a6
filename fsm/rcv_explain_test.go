package fsm

import (
	"bytes"
	"testing"
)

// TestReceiverExplainsEveryDiscard: every segment the receiver drops,
// trims or discards in part is explained as such, with the reason and
// the numbers, never as SEGMENT_NO_CHANGE. The server's buffer is 1000
// bytes; 101..200 has arrived unread, so RCV.NXT is 201 and RCV.WND 900.
// Reference: RFC 9293 §3.10.7.4 first and seventh checks.
func TestReceiverExplainsEveryDiscard(t *testing.T) {
	data := func(n int) []byte { return bytes.Repeat([]byte{'d'}, n) }
	for _, tc := range []struct {
		name   string
		seq    Seq
		n      int
		code   Code
		fields map[string]uint64
	}{
		{"wholly old", 101, 100, CodeUnacceptableSentAck, map[string]uint64{"SEG.SEQ": 101, "SEG.LEN": 100, "RCV.NXT": 201}},
		{"partly old", 151, 100, CodeDataDuplicate, map[string]uint64{"TRIMMED": 50, "RCV.NXT": 201}},
		{"beyond the right edge", 1001, 200, CodeDataTrimmed, map[string]uint64{"TRIMMED": 100, "SEG.SEQ": 1001, "SEG.LEN": 200, "RCV.NXT": 201, "RCV.WND": 900}},
		{"wholly beyond the window", 1301, 100, CodeUnacceptableSentAck, map[string]uint64{"SEG.SEQ": 1301, "SEG.LEN": 100, "RCV.NXT": 201}},
		{"held already", 401, 100, CodeDataOutOfOrderDuplicate, map[string]uint64{"SEG.SEQ": 401, "SEG.LEN": 100, "RCV.NXT": 201, "OOO.BYTES": 100, "OOO.BLOCKS": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvCfg := fixedConfig(300)
			srvCfg.RecvBuffer, srvCfg.NoWindowScale = 1000, true
			_, srv, _, _ := established(t, fixedConfig(100), srvCfg)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535, Payload: data(100)})
			srv.collect()
			srv.out = nil
			if tc.code == CodeDataOutOfOrderDuplicate {
				srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 401, Ack: 301, Window: 65535, Payload: data(100)})
				srv.collect()
				srv.out = nil
			}
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: tc.seq, Ack: 301, Window: 65535, Payload: data(tc.n)})
			r := srv.collect()
			if hasExplanation(r, CodeSegmentNoChange) {
				t.Fatalf("explained as SEGMENT_NO_CHANGE: %s", codes(r))
			}
			xs := explained(r, tc.code)
			if len(xs) != 1 {
				t.Fatalf("want one %s, got %s", tc.code, codes(r))
			}
			for name, want := range tc.fields {
				wantField(t, xs[0], name, want)
			}
		})
	}
}
