package bridge

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpstated/tcpstated/fsm"
)

// TestOpenTUN creates a device in a network namespace of its own (so the
// host's interfaces and routes are untouched) and checks both directions
// through the real kernel: OpenTUN configured it (address, point-to-point
// destination, up), a datagram the kernel routes to the engine's address is
// read, and a packet written is delivered to a kernel socket.
func TestOpenTUN(t *testing.T) {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		skipOrFail(t, "no /dev/net/tun: "+err.Error())
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root (CAP_NET_ADMIN) for a network namespace and a TUN device")
	}
	peer, local := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	errc, unshared := make(chan error, 1), make(chan error, 1)
	go func() {
		// The thread enters a fresh namespace and is never unlocked: Go
		// ends it with the goroutine, so no other goroutine runs there.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			unshared <- err
			return
		}
		unshared <- nil
		errc <- checkTUN(peer, local)
	}()
	if err := <-unshared; err != nil {
		skipOrFail(t, fmt.Sprintf("unshare(CLONE_NEWNET): %v", err))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func checkTUN(peer, local netip.Addr) error {
	dev, err := OpenTUN("tcpst-test0", peer, local, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer dev.Close()
	ifi, err := net.InterfaceByName("tcpst-test0")
	if err != nil {
		return err
	}
	addrs, _ := ifi.Addrs()
	hasPeer := false
	for _, a := range addrs {
		hasPeer = hasPeer || a.(*net.IPNet).IP.String() == peer.String()
	}
	if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagPointToPoint == 0 || !hasPeer {
		return fmt.Errorf("device not configured: flags %v, addresses %v", ifi.Flags, addrs)
	}

	// kernel → device: a UDP datagram to the engine's address.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: peer.AsSlice(), Port: 5000})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WriteToUDP([]byte("to the engine"), &net.UDPAddr{IP: local.AsSlice(), Port: 9}); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	for {
		n, err := readWithin(dev, buf, 5*time.Second)
		if err != nil {
			return fmt.Errorf("reading the device: %w", err)
		}
		p := buf[:n]
		if n >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP && netip.AddrFrom4([4]byte(p[16:20])) == local {
			if string(p[28:]) != "to the engine" {
				return fmt.Errorf("read a datagram with payload %q", p[28:])
			}
			break
		}
		// anything else (IPv6 router solicitations, ...) is skipped
	}

	// device → kernel: a datagram from the engine's address to the socket.
	if err := dev.WritePacket(udp4(local, peer, 9, 5000, []byte("to the kernel"))); err != nil {
		return fmt.Errorf("writing the device: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		return fmt.Errorf("the kernel socket got nothing: %w", err)
	}
	if string(buf[:n]) != "to the kernel" || from.String() != "10.9.0.2:9" {
		return fmt.Errorf("the kernel socket got %q from %v", buf[:n], from)
	}
	return nil
}

func readWithin(dev *TUN, buf []byte, d time.Duration) (int, error) {
	dev.f.SetReadDeadline(time.Now().Add(d))
	return dev.ReadPacket(buf)
}

// udp4 is an IPv4 packet carrying a UDP datagram (UDP checksum 0: none,
// RFC 768).
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], fsm.FoldChecksum(fsm.Checksum(p[:20], 0)))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

// skipOrFail skips the test with why, or fails it when CI=true: in CI the
// kernel is there to be used.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run under CI=true: %s", why)
	}
	t.Skip(why)
}
