package bridge

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/tcpstated/tcpstated/bridge/tun"
)

// TUN is an open TUN device (IFF_TUN|IFF_NO_PI: bare IP packets), a
// Device. The descriptor is non-blocking and served by Go's poller, so
// Close unblocks a pending read.
type TUN struct{ f *os.File }

func (d *TUN) ReadPacket(b []byte) (int, error) { return d.f.Read(b) }
func (d *TUN) WritePacket(b []byte) error {
	_, err := d.f.Write(b)
	return err
}
func (d *TUN) Close() error { return d.f.Close() }

// OpenTUN attaches to the TUN device name (TUNSETIFF on /dev/net/tun),
// creating it if it does not exist. A device it creates is configured as a
// point-to-point link, kernel address peer, remote end local, and brought
// up; an existing one is used as it is.
func OpenTUN(name string, peer, local netip.Addr, logger *slog.Logger) (*TUN, error) {
	_, err := net.InterfaceByName(name)
	existed := err == nil
	f, err := tun.Attach(name)
	if err != nil {
		return nil, err
	}
	d := &TUN{f: f}
	if existed {
		logger.Info("attached to an existing TUN device", "dev", name)
		return d, nil
	}
	if err := configureTun(name, peer, local); err != nil {
		d.Close()
		return nil, err
	}
	logger.Info("created TUN device", "dev", name, "kernel", peer, "tcpstated", local)
	return d, nil
}

// configureTun gives a new device the kernel's address, the point-to-point
// destination (which routes local through it) and IFF_UP.
func configureTun(name string, peer, local netip.Addr) error {
	if !peer.Is4() || !local.Is4() {
		return fmt.Errorf("configuring %s: only IPv4 addresses are configured automatically; create and configure the device with ip(8) first", name)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	set := func(req uint, what string, fill func(*unix.Ifreq) error) error {
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			err = fill(ifr)
		}
		if err == nil {
			err = unix.IoctlIfreq(s, req, ifr)
		}
		if err != nil {
			return fmt.Errorf("configuring %s: %s: %w", name, what, err)
		}
		return nil
	}
	p4, l4 := peer.As4(), local.As4()
	if err := set(unix.SIOCSIFADDR, "address "+peer.String(), func(r *unix.Ifreq) error { return r.SetInet4Addr(p4[:]) }); err != nil {
		return err
	}
	if err := set(unix.SIOCSIFDSTADDR, "destination "+local.String(), func(r *unix.Ifreq) error { return r.SetInet4Addr(l4[:]) }); err != nil {
		return err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("configuring %s: flags: %w", name, err)
	}
	flags := ifr.Uint16() | unix.IFF_UP
	return set(unix.SIOCSIFFLAGS, "up", func(r *unix.Ifreq) error { r.SetUint16(flags); return nil })
}
