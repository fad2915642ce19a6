package diagram

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tcpstated/tcpstated/fsm"
)

// TestRelativePerConnection: a server column serving two clients has an
// ISN per connection, and a side whose SYN is not shown stays absolute.
func TestRelativePerConnection(t *testing.T) {
	c1 := netip.MustParseAddrPort("[2001:db8::2]:40000")
	srv := netip.MustParseAddrPort("[2001:db8::1]:80")
	c2 := netip.MustParseAddrPort("[2001:db8::3]:50000")
	seg := func(src, dst netip.AddrPort, f fsm.Flags, seq, ack fsm.Seq) Packet {
		return Packet{Src: src, Dst: dst, Segment: fsm.Segment{SrcPort: src.Port(), DstPort: dst.Port(), Flags: f, Seq: seq, Ack: ack, Window: 100}}
	}
	d := FromPackets("", []Record{
		StateChange{Endpoint: netip.MustParseAddrPort("[::]:80"), State: fsm.Listen},
		seg(c1, srv, fsm.FlagSYN, 100, 0),
		seg(srv, c1, fsm.FlagSYN|fsm.FlagACK, 300, 101),
		seg(c2, srv, fsm.FlagSYN, 7, 0),
		seg(srv, c2, fsm.FlagRST|fsm.FlagACK, 0, 8),
	})
	if got := d.Columns; len(got) != 3 || got[0] != c1.String() || got[1] != srv.String() {
		t.Errorf("columns %q", got)
	}
	svg := render(t, "relative", d, Options{Relative: true})
	for _, want := range []string{">S. seq=0 ack=1 win=100<", ">R. seq=0 ack=1 win=100<", "absolute where that side"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("diagram lacks %q", want)
		}
	}
	svg = render(t, "absolute", d, Options{})
	if !bytes.Contains(svg, []byte(">S. seq=300 ack=101 win=100<")) || bytes.Contains(svg, []byte("relative")) {
		t.Error("absolute diagram wrong")
	}
}
