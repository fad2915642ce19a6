// Package interop holds the end-to-end suite that puts tcpstated in front
// of the Linux kernel's TCP stack: `go test ./interop/` (or `make interop`)
// creates a network namespace with a TUN device in it, runs `tcpstated tun`
// there and has the kernel connect to it, accept its connections, move
// 10 MB each way, close from either side, refuse, reset, and do the
// transfers again through netem loss, delay and reordering;
// TestInteropFastOpen does TCP Fast Open both ways (RFC 7413, with
// net.ipv4.tcp_fastopen set inside the namespace). Every check
// prints a PASS or FAIL line; see docs/CONFORMANCE.md, "Interoperability
// with Linux (issue 5)", for the checks and the figures.
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for namespaces),
// /dev/net/tun and iproute2 (ip, tc, ss). Without them the suite skips and
// says why; with CI=true in the environment it fails instead.
package interop
