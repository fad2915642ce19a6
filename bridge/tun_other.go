//go:build !linux

package bridge

import (
	"errors"
	"log/slog"
	"net/netip"
)

// TUN is a TUN device; there are none off Linux.
type TUN struct{}

func (*TUN) ReadPacket([]byte) (int, error) { return 0, errors.ErrUnsupported }
func (*TUN) WritePacket([]byte) error       { return errors.ErrUnsupported }
func (*TUN) Close() error                   { return nil }

// OpenTUN fails: TUN devices are supported on Linux only.
func OpenTUN(name string, peer, local netip.Addr, logger *slog.Logger) (*TUN, error) {
	return nil, errors.New("TUN devices are supported on Linux only")
}
