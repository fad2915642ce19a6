package fsm

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// TestRingCompact: compact keeps the bytes in order (also when they wrap
// around the end of the buffer) in a buffer of their own size and gives
// the old one to spare; an empty ring gives its buffer away, and a full
// one is left as it is.
func TestRingCompact(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	tests := []struct {
		name             string
		head, held       int // the first byte's index in a 4 KiB buffer, bytes held
		wantBuf, toSpare int // the buffer's length after, bytes given to spare
	}{
		{"empty", 0, 0, 0, 4096},
		{"held at the start", 0, 100, 100, 4096},
		{"wrapping around the end", 4000, 1000, 1000, 4096},
		{"full", 0, 4096, 4096, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ring{buf: make([]byte, 4096), head: tt.head}
			var spare spareBufs
			want := seq(tt.held)
			r.write(want, 4096, &spare)
			r.compact(&spare)
			if len(r.buf) != tt.wantBuf || r.n != tt.held || r.head != 0 {
				t.Fatalf("after compact: buffer of %d bytes, head %d, %d held; want %d, 0, %d", len(r.buf), r.head, r.n, tt.wantBuf, tt.held)
			}
			if spare.bytes != tt.toSpare {
				t.Errorf("spare holds %d bytes, want %d", spare.bytes, tt.toSpare)
			}
			got := make([]byte, r.n)
			r.read(got)
			if !bytes.Equal(got, want) {
				t.Errorf("compact changed the bytes")
			}
		})
	}
}

// TestClosedConnectionKeepsItsDataCompact: the client sends 10 000 bytes
// the server's application never reads, then resets. The reset closes the
// server's connection and its data stays readable (as in Linux and
// FreeBSD: the bytes, then the error), now in a buffer of exactly its
// size; the 16 KiB buffer it grew to serves the next connection's data
// from its first segment, and the closed one's bytes are still all there.
func TestClosedConnectionKeepsItsDataCompact(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if n, err := cli.e.Send(c, data); n != len(data) || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	pump(cli, srv)
	if err := cli.e.Abort(c); err != nil {
		t.Fatal(err)
	}
	pump(cli, srv)
	srv.wantState(s, Closed)
	rb := &srv.e.byID[s].rcvBuf
	if len(rb.buf) != len(data) || rb.n != len(data) {
		t.Errorf("closed connection's buffer: %d bytes holding %d, want exactly %d", len(rb.buf), rb.n, len(data))
	}
	if srv.e.rcvSpare.bytes != 16384 {
		t.Errorf("spare receive buffers hold %d bytes, want the 16384 the connection grew to", srv.e.rcvSpare.bytes)
	}
	const listener = EndpointID(1) // established's first endpoint
	srv.wantState(listener, Listen)
	c2, err := cli.e.Connect(netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+1), serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	pump(cli, srv)
	s2, err := srv.e.Accept(listener)
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, cli, c2, "hello")
	pump(cli, srv)
	if got := len(srv.e.byID[s2].rcvBuf.buf); got != 16384 {
		t.Errorf("next connection's receive buffer: %d bytes, want the spare 16384", got)
	}
	got := make([]byte, 2*len(data))
	n, err := srv.e.Receive(s, got)
	if n != len(data) || err != nil || !bytes.Equal(got[:n], data) {
		t.Fatalf("Receive after the reset = %d bytes, %v; want the %d bytes sent", n, err, len(data))
	}
	if _, err := srv.e.Receive(s, got); !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("second Receive: %v, want ErrConnectionReset", err)
	}
}
