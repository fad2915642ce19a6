//go:build !linux

// Package linuxtarget is the machine's own Linux kernel as a script
// target; off Linux there is none.
package linuxtarget

import (
	"errors"

	"github.com/tcpstated/tcpstated/script/target"
)

// ErrUnavailable is returned by New when the kernel target cannot run.
var ErrUnavailable = errors.New("the Linux kernel target is not available")

// Target is never made off Linux.
type Target struct{ target.Target }

// Available says why the kernel target cannot run here.
func Available() string { return "the kernel target runs on Linux only" }

// New fails off Linux.
func New(target.Setup) (*Target, error) { return nil, ErrUnavailable }

func (*Target) Interrupt()   {}
func (*Target) Close() error { return nil }
