package fsm

import (
	"bytes"
	"testing"
)

// Receiver reassembly (issue 11): what the window offered is held, and
// every out-of-order segment not held is explained as discarded, with its
// numbers. Client ISS 100, server ISS 300; segments are injected from the
// client's address.

// explained returns the explanations of one batch with the given code.
func explained(r Ready, code Code) []Explanation {
	var out []Explanation
	for _, x := range r.Explanations {
		if x.Code == code {
			out = append(out, x)
		}
	}
	return out
}

func wantField(t *testing.T, x Explanation, name string, want uint64) {
	t.Helper()
	if v, ok := x.Field(name); !ok || v != want {
		t.Fatalf("%s: %s = %d (present %v), want %d; %s", x.Code, name, v, ok, want, x.String())
	}
}

// TestOutOfOrderHoldsWhatTheWindowOffered: one segment is lost, then 600
// full segments arrive beyond the hole; with a 1 MiB receive buffer the
// window offered them all, so all are held (one island, not 600 entries),
// and the retransmitted hole delivers the lot in one ACK. The old limit of
// 256 segments discarded everything past it while advertising 1 MiB.
// Reference: RFC 9293 §3.10.7.4 seventh; RFC 5681 §4.2.
func TestOutOfOrderHoldsWhatTheWindowOffered(t *testing.T) {
	srvCfg := fixedConfig(300)
	srvCfg.RecvBuffer = 1 << 20
	_, srv, _, s := established(t, fixedConfig(100), srvCfg)
	const mss, n = 1000, 600
	payload := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, mss) }
	for i := 1; i <= n; i++ {
		seq := Seq(101 + i*mss)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: seq, Ack: 301, Window: 65535, Payload: payload(i)})
		r := srv.collect()
		xs := explained(r, CodeDataOutOfOrder)
		if len(xs) != 1 || hasExplanation(r, CodeSegmentNoChange) || hasExplanation(r, CodeOutOfOrderQueueFull) {
			t.Fatalf("segment %d: explanations %v", i, r.Explanations)
		}
		wantField(t, xs[0], "QUEUED", mss)
		wantField(t, xs[0], "OOO.BYTES", uint64(i*mss))
		wantField(t, xs[0], "OOO.BLOCKS", 1)
		srv.expect(". seq=301 ack=101") // a duplicate ACK at once, with a SACK block
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535, Payload: payload(0)})
	srv.expect(". seq=301 ack=601101") // 101 + 601·1000
	var want []byte
	for i := 0; i <= n; i++ {
		want = append(want, payload(i)...)
	}
	got := make([]byte, len(want)+1)
	k, err := srv.e.Receive(s, got)
	if err != nil || !bytes.Equal(got[:k], want) {
		t.Fatalf("Receive = %d bytes, %v; want the %d bytes sent", k, err, len(want))
	}
}

// TestOutOfOrderDuplicateExplained: a segment the queue already holds is
// discarded and says so; one overlapping held data is kept for its new
// bytes only; either way the duplicate ACK goes out.
// Reference: RFC 9293 §3.10.7.4 seventh; RFC 5681 §4.2.
func TestOutOfOrderDuplicateExplained(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	seg := Segment{Flags: FlagACK, Seq: 111, Ack: 301, Window: 1000, Payload: []byte("0123456789")}
	srv.inject(clientAddr, serverAddr, seg)
	wantExplanation(t, srv.collect(), CodeDataOutOfOrder)
	srv.expect(". seq=301 ack=101")

	srv.inject(clientAddr, serverAddr, seg) // the same again
	r := srv.collect()
	xs := explained(r, CodeDataOutOfOrderDuplicate)
	if len(xs) != 1 || xs[0].Action != ActionDropped || hasExplanation(r, CodeSegmentNoChange) {
		t.Fatalf("explanations %v", r.Explanations)
	}
	wantField(t, xs[0], "SEG.SEQ", 111)
	wantField(t, xs[0], "SEG.LEN", 10)
	wantField(t, xs[0], "RCV.NXT", 101)
	wantField(t, xs[0], "OOO.BYTES", 10)
	srv.expect(". seq=301 ack=101")

	// 116..126 overlaps the held 111..121: five new bytes.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 116, Ack: 301, Window: 1000, Payload: []byte("56789ABCDE")})
	xs = explained(srv.collect(), CodeDataOutOfOrder)
	if len(xs) != 1 {
		t.Fatal("no DATA_OUT_OF_ORDER for the overlapping segment")
	}
	wantField(t, xs[0], "QUEUED", 5)
	wantField(t, xs[0], "OOO.BYTES", 15)
	wantField(t, xs[0], "OOO.BLOCKS", 1)
	srv.expect(". seq=301 ack=101")

	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("abcdefghij")})
	srv.expect(". seq=301 ack=126")
	mustRead(t, srv, s, "abcdefghij0123456789ABCDE")
}

// TestOutOfOrderIslandLimitExplained: bytes are bounded by the window, but
// each separate island of held data costs memory of its own, so their
// number is bounded (RCV.BUFF/MSS, at least 64); a segment that would start
// one more is discarded with the count and the limit, never silently.
// Reference: RFC 9293 §3.10.7.4 seventh.
func TestOutOfOrderIslandLimitExplained(t *testing.T) {
	_, srv, _, _ := defaultPair(t) // RCV.BUFF 65535, MSS 1460: 64 islands
	for i := 0; i < 64; i++ {
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: Seq(103 + 2*i), Ack: 301, Window: 1000, Payload: []byte("x")})
		wantExplanation(t, srv.collect(), CodeDataOutOfOrder)
		srv.expect(". seq=301 ack=101")
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 103 + 2*64, Ack: 301, Window: 1000, Payload: []byte("y")})
	r := srv.collect()
	xs := explained(r, CodeOutOfOrderQueueFull)
	if len(xs) != 1 || xs[0].Action != ActionDropped {
		t.Fatalf("explanations %v", r.Explanations)
	}
	wantField(t, xs[0], "OOO.BLOCKS", 64)
	wantField(t, xs[0], "SEG.SEQ", 103+2*64)
	srv.expect(". seq=301 ack=101")
	// Filling a gap between two islands merges them and frees a slot.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 104, Ack: 301, Window: 1000, Payload: []byte("z")})
	xs = explained(srv.collect(), CodeDataOutOfOrder)
	if len(xs) != 1 {
		t.Fatal("the gap filler was not held")
	}
	wantField(t, xs[0], "OOO.BLOCKS", 63)
	srv.expect(". seq=301 ack=101")
}

// TestReassemblyInsert checks the island arithmetic directly: merges on
// overlap and on touching, new-byte counts, FIN placement, and the bytes
// of the merged island.
func TestReassemblyInsert(t *testing.T) {
	type in struct {
		seq  Seq
		data string
		fin  bool
	}
	for _, tc := range []struct {
		name    string
		ins     []in
		added   []int
		islands []string // seq:data[F]
	}{
		{"disjoint", []in{{10, "ab", false}, {20, "cd", false}}, []int{2, 2}, []string{"10:ab", "20:cd"}},
		{"touching right", []in{{10, "ab", false}, {12, "cd", false}}, []int{2, 2}, []string{"10:abcd"}},
		{"touching left", []in{{12, "cd", false}, {10, "ab", false}}, []int{2, 2}, []string{"10:abcd"}},
		{"bridge", []in{{10, "ab", false}, {14, "ef", false}, {12, "cd", false}}, []int{2, 2, 2}, []string{"10:abcdef"}},
		{"cover several", []in{{12, "c", false}, {15, "f", false}, {10, "abcdefgh", false}}, []int{1, 1, 6}, []string{"10:abcdefgh"}},
		{"inside", []in{{10, "abcd", false}, {11, "bc", false}}, []int{4, 0}, []string{"10:abcd"}},
		{"fin later", []in{{10, "ab", false}, {10, "ab", true}}, []int{2, 0}, []string{"10:abF"}},
		{"fin alone touching", []in{{10, "ab", false}, {12, "", true}}, []int{2, 0}, []string{"10:abF"}},
		{"fin kept on extension", []in{{12, "cd", true}, {10, "abc", false}}, []int{2, 2}, []string{"10:abcdF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q reassembly
			for i, x := range tc.ins {
				_, added := q.insert(x.seq, []byte(x.data), x.fin, 64)
				if added != tc.added[i] {
					t.Fatalf("insert %d added %d, want %d", i, added, tc.added[i])
				}
			}
			var got []string
			total := 0
			for _, s := range q.segs {
				v := string(rune('0'+s.seq/10)) + string(rune('0'+s.seq%10)) + ":" + string(s.data)
				if s.fin {
					v += "F"
				}
				got = append(got, v)
				total += len(s.data)
			}
			if len(got) != len(tc.islands) {
				t.Fatalf("islands %v, want %v", got, tc.islands)
			}
			for i := range got {
				if got[i] != tc.islands[i] {
					t.Fatalf("islands %v, want %v", got, tc.islands)
				}
			}
			if total != q.bytes {
				t.Fatalf("bytes %d, islands hold %d", q.bytes, total)
			}
		})
	}
}
