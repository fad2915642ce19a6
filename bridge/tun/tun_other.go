//go:build !linux

// Package tun opens TUN devices (on Linux only).
package tun

import (
	"errors"
	"os"
)

// Attach fails: TUN devices are supported on Linux only.
func Attach(name string) (*os.File, error) {
	return nil, errors.New("TUN devices are supported on Linux only")
}
