//go:build !linux

package main

import (
	"errors"
	"log/slog"
	"net/netip"
)

type tunDevice struct{}

func (*tunDevice) ReadPacket([]byte) (int, error) { return 0, errors.ErrUnsupported }
func (*tunDevice) WritePacket([]byte) error       { return errors.ErrUnsupported }
func (*tunDevice) Close() error                   { return nil }

func openTun(name string, peer, local netip.Addr, logger *slog.Logger) (*tunDevice, error) {
	return nil, errors.New("TUN devices are supported on Linux only")
}
