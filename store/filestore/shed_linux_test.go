package filestore

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tcpstated/tcpstated/store"
)

// resident reports, for each page of the file at path, whether it is in
// the page cache (mincore(2) on a read-only mapping, which faults nothing in).
func resident(t *testing.T, path string) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys/unix has no mincore wrapper.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	in := make([]bool, len(vec))
	for i, v := range vec {
		in[i] = v&1 != 0
	}
	return in
}

// diskDir is a temporary directory on a file system with a disk behind
// its page cache: on tmpfs or ramfs the cached pages are the files, and
// the kernel ignores POSIX_FADV_DONTNEED. It falls back from TMPDIR to
// the package's directory.
func diskDir(t *testing.T) string {
	t.Helper()
	inMemory := func(dir string) bool {
		var fs unix.Statfs_t
		if err := unix.Statfs(dir, &fs); err != nil {
			t.Fatal(err)
		}
		return fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC
	}
	dir := t.TempDir()
	if !inMemory(dir) {
		return dir
	}
	dir, err := os.MkdirTemp(".", "shed-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if inMemory(dir) {
		t.Skip("TMPDIR and the package's directory are both in memory (tmpfs or ramfs): no page cache to shed")
	}
	return dir
}

// TestShedWrittenPages: a log that has written three windows and more has
// dropped every page below the last two windows from the page cache, and
// keeps the newest window cached; what it reads back is what it wrote.
// With store.FsyncAlways each append is on disk before the next, so the
// pages the shed drops are clean and the drop is certain.
func TestShedWrittenPages(t *testing.T) {
	s := openTestStore(t, diskDir(t), Options{Fsync: store.FsyncAlways})
	l, err := s.Create("big")
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 0; int64(len(want))*(256<<10) < 3*shedWindow+shedWindow/2; i++ {
		p := payload(i, 256<<10)
		if _, err := l.Append(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	fl := l.(*FileLog)
	fl.mu.Lock()
	dropped, wbEnd, size := fl.dropped, fl.wbEnd, fl.size
	fl.mu.Unlock()
	if dropped < 2*shedWindow || wbEnd < 3*shedWindow {
		t.Fatalf("after %d bytes: dropped below %d, write-back started below %d", size, dropped, wbEnd)
	}
	in := resident(t, s.dir+"/big.log")
	page := int64(os.Getpagesize())
	var kept int
	for p := int64(0); p < dropped/page; p++ {
		if in[p] {
			kept++
		}
	}
	if kept > 0 {
		t.Errorf("%d of the %d pages below %d are still cached", kept, dropped/page, dropped)
	}
	if !in[len(in)-1] {
		t.Errorf("the last page, just written, is not cached")
	}
	equalPayloads(t, readAll(t, l), want)
}

// TestShedWritebackErrorPoisons: an I/O error starting write-back means
// written pages may never reach the disk; the log is poisoned like a
// failed write, and the append that met it is not reported done.
func TestShedWritebackErrorPoisons(t *testing.T) {
	s := newTestStore(t, Options{Fsync: store.FsyncNever})
	s.writeback = func(*os.File, int64, int64) error { return syscall.EIO }
	l, _ := s.Create("w")
	var err error
	for i := 0; err == nil && i < 2*shedWindow/(64<<10); i++ {
		_, err = l.Append(payload(i, 64<<10))
	}
	if !errors.Is(err, store.ErrPoisoned) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append past a window with write-back failing: %v", err)
	}
	checkPoisoned(t, l, syscall.EIO)
}

// TestShedNotSupported: a file system that takes no write-back hint
// (EINVAL) is no longer given them, and the log goes on.
func TestShedNotSupported(t *testing.T) {
	s := newTestStore(t, Options{Fsync: store.FsyncNever})
	calls := 0
	s.writeback = func(*os.File, int64, int64) error { calls++; return syscall.EINVAL }
	l, _ := s.Create("w")
	var want [][]byte
	for i := 0; i < 3*shedWindow/(64<<10); i++ {
		p := payload(i, 64<<10)
		if _, err := l.Append(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	if calls != 1 {
		t.Errorf("write-back hint given %d times after EINVAL, want once", calls)
	}
	equalPayloads(t, readAll(t, l), want)
}
