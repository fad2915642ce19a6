package filestore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync flushes a file's data and the metadata needed to read it back
// (its size), which is all an append needs.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// syncfs flushes the whole file system holding f (syncfs(2)).
func syncfs(f *os.File) error {
	for {
		err := unix.Syncfs(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// syncfsUsable reports whether syncfs reports write-back errors, which it
// does from Linux 5.8 on; before that it returned 0 even when write-back
// failed, so it cannot vouch for durability.
func syncfsUsable() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 8)
}

// lockDir takes an exclusive flock on the data directory, so two stores
// (two servers) never write the same logs. The lock goes with the fd.
func lockDir(d *os.File) error {
	for {
		err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return fmt.Errorf("%w: %s", ErrLocked, d.Name())
		default:
			return fmt.Errorf("filestore: locking %s: %w", d.Name(), err)
		}
	}
}

// startWriteback starts writing [off, off+n) of f back to its disk and
// returns (sync_file_range(2) with SYNC_FILE_RANGE_WRITE alone: the
// waiting flags would consume a write-back error a later fdatasync must
// see).
func startWriteback(f *os.File, off, n int64) error {
	for {
		err := unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
		if err != unix.EINTR {
			return err
		}
	}
}

// dropCached drops the clean pages of [off, off+n) of f from the page
// cache (POSIX_FADV_DONTNEED); dirty ones stay.
func dropCached(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
