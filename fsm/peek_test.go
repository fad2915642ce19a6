package fsm

import "testing"

// recv(MSG_PEEK): the data stays until Receive takes it; a peek sends
// nothing (no window update) and reports end of file as Receive does.
func TestPeekLeavesData(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	mustSend(t, cli, c, "hello")
	relay(cli, srv, "P. seq=101 ack=301 len=5")
	srv.collect()
	buf := make([]byte, 3)
	for range 2 {
		if n, err := srv.e.Peek(s, buf); n != 3 || err != nil || string(buf) != "hel" {
			t.Fatalf("Peek = %d %v %q", n, err, buf[:n])
		}
	}
	if rd := srv.e.Ready(); len(rd.Packets) != 0 {
		t.Fatalf("Peek emitted %d packets", len(rd.Packets))
	}
	mustRead(t, srv, s, "hello")
	if n, err := srv.e.Peek(s, buf); n != 0 || err != nil {
		t.Fatalf("Peek after Receive = %d %v, want 0 nil", n, err)
	}
	if _, err := srv.e.Peek(s+100, buf); err == nil {
		t.Fatal("Peek of an unknown endpoint succeeded")
	}
}
