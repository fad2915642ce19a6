package replaylog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// fdatasync flushes a file's data and the metadata needed to read it back
// (its size), which is all an append needs.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// syncfs flushes the whole file system holding f (syncfs(2)).
func syncfs(f *os.File) error {
	for {
		_, _, e := syscall.Syscall(sysSYNCFS, f.Fd(), 0, 0)
		if e == 0 {
			return nil
		}
		if e != syscall.EINTR {
			return e
		}
	}
}

// syncfsUsable reports whether syncfs exists on this architecture and
// reports write-back errors, which it does from Linux 5.8 on; before that it
// returned 0 even when write-back failed, so it cannot vouch for durability.
func syncfsUsable() bool {
	if !haveSyncfs {
		return false
	}
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return false
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return kernelAtLeast(b.String(), 5, 8)
}

// lockDir takes an exclusive flock on the data directory, so two stores
// (two servers) never write the same logs. The lock goes with the fd.
func lockDir(d *os.File) error {
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return fmt.Errorf("%w: %s", ErrLocked, d.Name())
		default:
			return fmt.Errorf("replaylog: locking %s: %w", d.Name(), err)
		}
	}
}
