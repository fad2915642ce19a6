package fsm_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// Example drives a server engine by hand: a SYN arrives, the engine answers
// with a SYN,ACK; the ACK carries data; every step is explained.
func Example() {
	e := fsm.New(fsm.Config{ISNMode: fsm.ISNFixed, FixedISN: 300, NoTimestamps: true, NoDelayedAck: true})
	server := netip.MustParseAddrPort("10.0.0.1:80")
	client := netip.MustParseAddrPort("10.0.0.2:40000")
	l, _ := e.Listen(server, 0)
	e.Ready() // the listener's CLOSED -> LISTEN

	send := func(seg fsm.Segment) {
		seg.SrcPort, seg.DstPort = client.Port(), server.Port()
		if err := e.Deliver(fsm.AppendPacket(nil, client.Addr(), server.Addr(), &seg)); err != nil {
			fmt.Println("error:", err)
		}
		r := e.Ready()
		for _, t := range r.Transitions {
			fmt.Printf("  endpoint %d: %s -> %s (%s)\n", t.Endpoint, t.From, t.To, t.Cause)
		}
		for _, p := range r.Packets {
			fmt.Println("  sent:", p.Segment.String())
		}
	}
	fmt.Println("SYN:")
	send(fsm.Segment{Flags: fsm.FlagSYN, Seq: 100, Window: 65535})
	fmt.Println("ACK with data:")
	send(fsm.Segment{Flags: fsm.FlagACK | fsm.FlagPSH, Seq: 101, Ack: 301, Window: 65535, Payload: []byte("hello")})

	conn, _ := e.Accept(l)
	buf := make([]byte, 16)
	n, _ := e.Receive(conn, buf)
	info, _ := e.Endpoint(conn)
	fmt.Printf("read %q; state %s, RCV.NXT=%d\n", buf[:n], info.State, info.RcvNxt)

	e.AdvanceTo(time.Second)
	// Output:
	// SYN:
	//   endpoint 2: LISTEN -> SYN-RECEIVED (LISTEN_SYN_ACCEPTED)
	//   sent: 80 > 40000 S. 300:300(0) ack 101 win 65535 <mss 1460>
	// ACK with data:
	//   endpoint 2: SYN-RECEIVED -> ESTABLISHED (SYN_RECEIVED_ACK_ESTABLISHED)
	//   sent: 80 > 40000 . 301:301(0) ack 106 win 65530
	// read "hello"; state ESTABLISHED, RCV.NXT=106
}
