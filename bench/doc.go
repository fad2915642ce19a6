// Package bench is the load generator behind `make bench`
// (cmd/tcpstated-bench). It starts the real tcpstated binary on free
// loopback ports (with --fsync=never, then --fsync=always) and, in the
// same run, a bare echo server built from this package (the same
// tcpstate.v1 SegmentService and grpc-gateway wiring, answering every call
// with a canned response of the real shape), and drives both with the
// same load:
//
//   - unary SubmitSegment, raw IP packets, from 64 concurrent callers;
//   - ExchangeSegments, 64 raw packets per message, on concurrent streams;
//   - REST POST /v1/sessions/{session}/segments with structured fields,
//     against the real gateway (dialing gRPC on loopback) and against the
//     bare gateway in both setups (dialing the echo gRPC server on
//     loopback, and calling the echo handlers in-process);
//
// and measures the memory of 10 000 idle sessions. Only ratios from one
// run mean anything: client and server share the machine's cores.
//
// Each load session is one peer (10.0.0.2) talking to one listener
// (10.0.0.1:80) in a session with fixed ISNs, so the peer can write every
// segment without reading the answers: SYN, ACK, data segments of 64
// bytes in sequence, then a RST, then the same from the next port. The
// engine does real work for each (demultiplexing, the acceptability test,
// queueing the text) and the log grows by two records per segment.
package bench
