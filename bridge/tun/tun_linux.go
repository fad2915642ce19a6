//go:build linux

// Package tun opens TUN devices. It is apart from package bridge so that
// what must not depend on the service (the kernel script target) can use
// it.
package tun

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Attach attaches to the TUN device name (TUNSETIFF on /dev/net/tun, with
// IFF_TUN|IFF_NO_PI: bare IP packets), creating it in the calling thread's
// network namespace if it does not exist, and leaves its configuration to
// the caller. A device it creates is not persistent: it goes when the
// file is closed. No IFF_VNET_HDR, so the device offers no offloads and
// the kernel segments (GSO) before writing: one packet per segment. The
// file is non-blocking and served by Go's poller, so Close unblocks a
// pending read.
func Attach(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN device name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attaching TUN device %s (TUNSETIFF; needs CAP_NET_ADMIN): %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}
