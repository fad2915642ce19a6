// Command peer is a model answer to the grader's assignment (and, with
// --bug, three wrong ones): a TCP client built by hand on the tcpstated
// API. It opens a connection to TCPSTATED_SERVER from TCPSTATED_CLIENT,
// sends TCPSTATED_MESSAGE, closes, and acknowledges the server's FIN. It
// submits its segments with SubmitSegment and reads the server's from the
// session's outbound queue (DrainSegments), the way a student's program
// would; see examples/grader.
//
//	peer [--bug=ack|window|fin] [--wait=3s]
//
// The bugs: ack acknowledges the SYN-ACK with the wrong number (ISS, not
// ISS+1); window sends the data far outside the receive window; fin never
// acknowledges the server's FIN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

const isn = 7000 // our initial sequence number

func main() {
	bug := flag.String("bug", "", "behave wrongly: ack, window or fin")
	wait := flag.Duration("wait", 3*time.Second, "how long to wait for each segment from the server")
	flag.Parse()
	if err := run(*bug, *wait); err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n", err)
		os.Exit(1)
	}
}

type peer struct {
	segs    pb.SegmentServiceClient
	session string
	local   string
	remote  string
	wire    []*pb.Segment // received, not yet consumed
	wait    time.Duration
}

func run(bug string, wait time.Duration) error {
	switch bug {
	case "", "ack", "window", "fin":
	default:
		return fmt.Errorf("unknown bug %q", bug)
	}
	conn, err := grpc.NewClient(os.Getenv("TCPSTATED_GRPC"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := &peer{
		segs:    pb.NewSegmentServiceClient(conn),
		session: os.Getenv("TCPSTATED_SESSION"),
		local:   os.Getenv("TCPSTATED_CLIENT"),
		remote:  os.Getenv("TCPSTATED_SERVER"),
		wait:    wait,
	}
	msg := os.Getenv("TCPSTATED_MESSAGE")

	// The handshake: SYN, then the ACK of the SYN-ACK.
	if err := p.send(ctx, isn, 0, []string{"SYN"}, ""); err != nil {
		return err
	}
	synAck, err := p.await(ctx, "the SYN-ACK", func(s *pb.Segment) bool { return has(s, "SYN") && has(s, "ACK") })
	if err != nil {
		return err
	}
	irs := synAck.Seq
	rcvNxt := irs + 1
	ack := rcvNxt
	if bug == "ack" {
		ack = irs // wrong: the SYN takes one sequence number
	}
	if err := p.send(ctx, isn+1, ack, []string{"ACK"}, ""); err != nil {
		return err
	}

	// The data.
	seq := uint32(isn + 1)
	dataSeq := seq
	if bug == "window" {
		dataSeq += 1_000_000 // wrong: far beyond RCV.NXT + RCV.WND
	}
	if err := p.send(ctx, dataSeq, ack, []string{"PSH", "ACK"}, msg); err != nil {
		return err
	}
	seq += uint32(len(msg))
	// Wait (briefly) for the ACK of the data; a wrong peer may never get it.
	p.await(ctx, "the ACK of the data", func(s *pb.Segment) bool { return has(s, "ACK") && s.Ack == seq })

	// The close: our FIN, then the server's FIN, which we acknowledge.
	if err := p.send(ctx, seq, ack, []string{"FIN", "ACK"}, ""); err != nil {
		return err
	}
	fin, err := p.await(ctx, "the server's FIN", func(s *pb.Segment) bool { return has(s, "FIN") })
	if err != nil {
		return err
	}
	if bug == "fin" {
		return nil // wrong: the server's FIN is never acknowledged
	}
	return p.send(ctx, seq+1, fin.Seq+1, []string{"ACK"}, "")
}

// send submits one segment the server will see from our address.
func (p *peer) send(ctx context.Context, seq, ack uint32, flags []string, payload string) error {
	f := &pb.SegmentFields{SourceAddress: p.local, DestinationAddress: p.remote, Seq: seq, Ack: ack, Flags: flags, Window: 65535}
	if payload != "" {
		f.Data = &pb.SegmentFields_PayloadText{PayloadText: payload}
	}
	_, err := p.segs.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: p.session, Segment: &pb.SubmitSegmentRequest_Fields{Fields: f}})
	return err
}

// await reads the wire until a segment to us matches, for up to p.wait.
func (p *peer) await(ctx context.Context, what string, match func(*pb.Segment) bool) (*pb.Segment, error) {
	deadline := time.Now().Add(p.wait)
	for time.Now().Before(deadline) {
		for len(p.wire) > 0 {
			s := p.wire[0]
			p.wire = p.wire[1:]
			if s.DestinationAddress == p.local && match(s) {
				return s, nil
			}
		}
		r, err := p.segs.DrainSegments(ctx, &pb.DrainSegmentsRequest{Parent: p.session})
		if err != nil {
			return nil, err
		}
		p.wire = append(p.wire, r.Segments...)
		if len(r.Segments) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil, errors.New("timed out waiting for " + what)
}

func has(s *pb.Segment, flag string) bool {
	for _, f := range s.Flags {
		if f == flag {
			return true
		}
	}
	return false
}
