package filestore

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/store"
)

// Defaults for Options' zero values.
const (
	DefaultBatchInterval = 10 * time.Millisecond
	// DefaultSyncfsThreshold: a group-commit round with at least this many
	// dirty logs may make them durable with one syncfs(2) instead of one
	// fdatasync(2) each (see committer.chooseSyncfs). Measured on the
	// development machine (ext4 on a virtio disk, BenchmarkSyncRound): an
	// fdatasync of a small append costs about 190 µs, N of them 190·N µs in
	// sequence or about half that in parallel (64 files: 10.5 ms, 5.4 ms);
	// one syncfs costs 200-300 µs for 1-16 dirty files and 580 µs for 64.
	// One file: equal, so fdatasync (it touches nothing else); from two on
	// syncfs wins.
	DefaultSyncfsThreshold = 2
	slowSync               = time.Second
)

// Options configure a FileStore. The zero value is the safe default.
type Options struct {
	Fsync store.FsyncMode
	// BatchInterval is the store.FsyncBatch period (default 10 ms).
	BatchInterval time.Duration
	// SyncfsThreshold is the number of dirty logs from which a round may use
	// one syncfs(2) of the data directory's file system instead of an
	// fdatasync(2) per log, when the observed costs favour it (Linux ≥ 5.8
	// only, where syncfs reports write-back errors). 0 means
	// DefaultSyncfsThreshold; negative disables syncfs.
	SyncfsThreshold int
	// MaxLogSize caps a log's file size; an Append that would pass it fails
	// with store.ErrLogFull and writes nothing. 0 means no cap.
	MaxLogSize int64
	// MaxOpenLogs bounds the log files kept open (the --max-open-logs
	// flag): past it the least recently used idle log's fd is closed
	// (after an fdatasync if it has undurable records) and reopened on its
	// next use. 0 means DefaultMaxOpenLogs; negative means no bound (one
	// fd per open log).
	MaxOpenLogs int
	// Logger receives warnings (slow fsync, recovery, sync failures);
	// nil means slog.Default().
	Logger *slog.Logger
}

// ErrLocked: another store (another server) holds the data directory.
var ErrLocked = errors.New("filestore: data directory is in use by another store")

const (
	logSuffix = ".log"
	tmpSuffix = ".log.tmp"
)

// FileStore keeps one file NAME.log per log in a directory, which it locks
// (flock) against a second store.
type FileStore struct {
	dir  string
	opts Options
	log  *slog.Logger
	dirf *os.File // the directory: flock, fsync after create/remove, syncfs
	gc   *committer
	fds  fdCache

	open store.Registry[*FileLog] // logs open, created or opened (names reserved)

	stats storeStats

	// Injection points for tests.
	fdatasync func(*os.File) error
	syncfs    func(*os.File) error // nil when syncfs is not usable
	writeback func(f *os.File, off, n int64) error
}

var _ store.Store = (*FileStore)(nil)

// Open opens (creating it if needed) the data directory dir,
// removes temporary files an interrupted Create left, and starts the
// group-commit syncer.
func Open(dir string, opts Options) (*FileStore, error) {
	if opts.BatchInterval <= 0 {
		opts.BatchInterval = DefaultBatchInterval
	}
	if opts.SyncfsThreshold == 0 {
		opts.SyncfsThreshold = DefaultSyncfsThreshold
	}
	if opts.MaxOpenLogs == 0 {
		opts.MaxOpenLogs = DefaultMaxOpenLogs
	}
	if opts.Fsync < store.FsyncAlways || opts.Fsync > store.FsyncNever {
		return nil, fmt.Errorf("filestore: invalid fsync mode %d", int(opts.Fsync))
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("filestore: %w", err)
		}
		if err := syncDirPath(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, err
		}
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := lockDir(dirf); err != nil {
		dirf.Close()
		return nil, err
	}
	s := &FileStore{
		dir:       dir,
		opts:      opts,
		log:       lg.With("component", "filestore", "dir", dir),
		dirf:      dirf,
		fdatasync: fdatasync,
		writeback: startWriteback,
		fds:       fdCache{limit: opts.MaxOpenLogs},
	}
	if opts.SyncfsThreshold > 0 && syncfsUsable() {
		s.syncfs = syncfs
	}
	if err := s.removeTemps(); err != nil {
		dirf.Close()
		return nil, err
	}
	s.gc = newCommitter(s)
	return s, nil
}

func (s *FileStore) removeTemps() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	removed := false
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), tmpSuffix) && store.ValidName(strings.TrimSuffix(e.Name(), tmpSuffix)) {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				return fmt.Errorf("filestore: %w", err)
			}
			s.log.Warn("removed the temporary file of an interrupted create", "file", e.Name())
			removed = true
		}
	}
	if removed {
		return s.syncDir()
	}
	return nil
}

// Dir returns the data directory.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) path(name string) string { return filepath.Join(s.dir, name+logSuffix) }

func (s *FileStore) reserve(name string) error { return s.open.Reserve(name) }

// settle ends a reservation: l == nil releases the name, otherwise l is
// registered as open. A log opened while the store was closing is closed
// again (it has nothing unsynced).
func (s *FileStore) settle(name string, l *FileLog) error {
	err := s.open.Settle(name, l)
	if err != nil && l != nil {
		l.fdMu.Lock()
		if l.f != nil {
			l.f.Close()
			l.f = nil
			s.fds.remove(l)
		}
		l.fdMu.Unlock()
	}
	return err
}

// Create makes NAME.log: the header is written to NAME.log.tmp and synced,
// the file is renamed into place and the directory is synced, so the log
// either exists complete or not at all.
func (s *FileStore) Create(name string) (store.Log, error) {
	if err := s.reserve(name); err != nil {
		return nil, err
	}
	l, err := s.create(name)
	if err != nil {
		s.settle(name, nil)
		return nil, err
	}
	if err := s.settle(name, l); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *FileStore) create(name string) (*FileLog, error) {
	path := s.path(name)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %q", store.ErrExists, name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	var sb [4]byte
	rand.Read(sb[:])
	seed := binary.LittleEndian.Uint32(sb[:])
	tmp := filepath.Join(s.dir, name+tmpSuffix)
	os.Remove(tmp)
	s.fds.reserve()
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		s.fds.release()
		return nil, fmt.Errorf("filestore: %w", err)
	}
	fail := func(err error) (*FileLog, error) {
		f.Close()
		s.fds.release()
		os.Remove(tmp)
		return nil, fmt.Errorf("filestore: create %q: %w", name, err)
	}
	if _, err := f.Write(encodeHeader(seed)); err != nil {
		return fail(err)
	}
	if err := s.fdatasync(f); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := s.syncDir(); err != nil {
		// The file is in place but its name may not be durable: refuse to
		// use it rather than pretend.
		f.Close()
		s.fds.release()
		return nil, err
	}
	l := newFileLog(s, name, f, seed, HeaderSize, 0)
	s.fds.insert(l)
	return l, nil
}

// Open opens NAME.log and recovers it: it reads every frame, and at the
// first torn or corrupt one truncates the file there, syncs it, logs a
// warning and says so in the report. A bad file header leaves the file
// untouched and returns a *store.DamageError (ErrBadHeader).
func (s *FileStore) Open(name string) (store.Log, store.RecoveryReport, error) {
	if err := s.reserve(name); err != nil {
		return nil, store.RecoveryReport{}, err
	}
	l, rep, err := s.openLog(name)
	if err != nil {
		s.settle(name, nil)
		return nil, rep, err
	}
	if err := s.settle(name, l); err != nil {
		return nil, rep, err
	}
	return l, rep, nil
}

func (s *FileStore) openLog(name string) (*FileLog, store.RecoveryReport, error) {
	var rep store.RecoveryReport
	s.fds.reserve()
	f, err := os.OpenFile(s.path(name), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		s.fds.release()
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, rep, fmt.Errorf("%w: %q", store.ErrNotFound, name)
	}
	if err != nil {
		return nil, rep, fmt.Errorf("filestore: %w", err)
	}
	fail := func(err error) (*FileLog, store.RecoveryReport, error) {
		f.Close()
		s.fds.release()
		return nil, rep, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("filestore: %w", err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("filestore: %q is not a regular file", name))
	}
	size := fi.Size()
	sc, h, err := newScanner(f, size)
	if err != nil {
		if d, ok := err.(*store.DamageError); ok {
			s.log.Error("log file header is damaged; file left as is", "log", name, "reason", d.Reason)
		}
		return fail(err)
	}
	for {
		_, err := sc.next()
		if err == nil {
			continue
		}
		if err == io.EOF {
			break
		}
		d, ok := err.(*store.DamageError)
		if !ok {
			return fail(err)
		}
		rep.Truncated = true
		rep.TruncatedAt = d.Offset
		rep.DroppedBytes = size - d.Offset
		rep.Reason = d.Error()
		rep.Damage = d
		break
	}
	rep.Records = int(sc.index)
	end := sc.off
	if rep.Truncated {
		if err := f.Truncate(end); err != nil {
			return fail(fmt.Errorf("filestore: truncating %q: %w", name, err))
		}
		s.log.Warn("log recovered: truncated at the last good record", "log", name,
			"records", rep.Records, "truncated_at", end, "dropped_bytes", rep.DroppedBytes, "reason", rep.Reason)
	}
	// Make what was read durable before treating it as such (a crashed
	// process leaves written but unsynced pages behind); cheap when clean.
	if rep.Truncated || s.opts.Fsync != store.FsyncNever {
		if err := s.fdatasync(f); err != nil {
			return fail(fmt.Errorf("filestore: syncing %q: %w", name, err))
		}
	}
	l := newFileLog(s, name, f, h.seed, end, sc.index)
	l.crc = sc.crc
	s.fds.insert(l)
	return l, rep, nil
}

// List returns the names of the logs in the directory, sorted.
func (s *FileStore) List() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	var names []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), logSuffix)
		if ok && store.ValidName(n) && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes NAME.log and syncs the directory. The log must be closed.
func (s *FileStore) Remove(name string) error {
	if err := s.reserve(name); err != nil {
		return err
	}
	defer s.settle(name, nil)
	if err := os.Remove(s.path(name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %q", store.ErrNotFound, name)
		}
		return fmt.Errorf("filestore: %w", err)
	}
	return s.syncDir()
}

// Close closes every open log, stops the syncer and releases the directory.
func (s *FileStore) Close() error {
	logs, err := s.open.Close()
	if err != nil {
		return err
	}
	var first error
	for _, l := range logs {
		if err := l.Close(); err != nil && first == nil && !errors.Is(err, store.ErrClosed) {
			first = err
		}
	}
	s.gc.stop()
	if err := s.dirf.Close(); err != nil && first == nil { // releases the flock
		first = fmt.Errorf("filestore: %w", err)
	}
	return first
}

func (s *FileStore) forget(l *FileLog) { s.open.Forget(l.name, l) }

func (s *FileStore) syncDir() error {
	if err := s.fdatasync(s.dirf); err != nil {
		return fmt.Errorf("filestore: syncing directory: %w", err)
	}
	return nil
}

func syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("filestore: syncing directory: %w", err)
	}
	return nil
}
