package service

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/pcap"
)

// TestSubmitICMPIsLoggedAndExportedAsICMP: an ICMP error submitted as an
// ip_packet reaches the engine (a soft error for the connection whose
// segment it quotes) and the pcap export carries it as the ICMP packet
// it was, between the TCP segments.
func TestSubmitICMPIsLoggedAndExportedAsICMP(t *testing.T) {
	e := newEnv(t, Config{})
	s, conn := walkthroughOpen(t, e, "icmp")
	c := ctx(t)
	must[*pb.SendDataResponse](t)(e.endpoints.SendData(c, &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Text{Text: "hi"}}))

	// Host unreachable from a router, quoting our segment at seq 1001.
	srv, cli := netip.MustParseAddrPort(server), netip.MustParseAddrPort(client)
	quoted := fsm.AppendPacket(nil, srv.Addr(), cli.Addr(), &fsm.Segment{SrcPort: srv.Port(), DstPort: cli.Port(), Seq: 1001, Flags: fsm.FlagACK})
	icmp := append([]byte{3, 1, 0, 0, 0, 0, 0, 0}, quoted[:28]...)
	binary.BigEndian.PutUint16(icmp[2:], fsm.FoldChecksum(fsm.Checksum(icmp, 0)))
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 254, 10, 0, 0, 1}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	binary.BigEndian.PutUint16(ip[10:], fsm.FoldChecksum(fsm.Checksum(ip, 0)))
	pkt := append(ip, icmp...)
	if _, err := e.submitRaw(s, pkt); err != nil {
		t.Fatalf("SubmitSegment(ICMP): %v", err)
	}

	resp := must[*pb.ExportPcapResponse](t)(e.logs.ExportPcap(c, &pb.ExportPcapRequest{Name: s}))
	r, err := pcap.NewReader(bytes.NewReader(resp.Pcap))
	if err != nil {
		t.Fatal(err)
	}
	var last []byte
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = rec.Data
	}
	if !bytes.Equal(last, pkt) {
		t.Fatalf("the last pcap record is %x, want the ICMP packet %x", last, pkt)
	}
}
