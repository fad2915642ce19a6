// Package memstore is a store.Store in memory, for tests that want the
// service without a disk: every record is "durable" as soon as it is
// appended, and survives a Close of the store for the next Reopen (a server
// restart), not the process. It never finds damage.
package memstore

import (
	"fmt"
	"sort"
	"sync"

	"github.com/tcpstated/tcpstated/store"
)

// Options configure a Store.
type Options struct {
	// MaxLogSize caps a log's Size; an append that would pass it fails with
	// store.ErrLogFull and writes nothing. 0 means no cap.
	MaxLogSize int64
}

// Store keeps its logs in memory.
type Store struct {
	opts Options
	logs *logs // shared with the stores Reopen makes

	mu     sync.Mutex
	open   map[string]*Log
	closed bool
}

// logs are the records of every log, kept across Reopen.
type logs struct {
	mu sync.Mutex
	m  map[string]*records
}

type records struct {
	mu   sync.Mutex // also guards the closed flag of the Log that has it open
	recs [][]byte   // each a copy of the appended payload; never modified
	size int64
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New(opts Options) *Store {
	return &Store{opts: opts, logs: &logs{m: make(map[string]*records)}, open: make(map[string]*Log)}
}

// Reopen returns a new store holding the logs s held, as a restarted server
// finds them. s should be closed first.
func (s *Store) Reopen() *Store {
	return &Store{opts: s.opts, logs: s.logs, open: make(map[string]*Log)}
}

// overhead is what Size counts per record beside the payload: the file
// store's frame header, so size limits bite at about the same place.
const overhead = 12

func (s *Store) reserve(name string) error {
	if !store.ValidName(name) {
		return fmt.Errorf("%w: %q", store.ErrInvalidName, name)
	}
	if s.closed {
		return store.ErrClosed
	}
	if _, ok := s.open[name]; ok {
		return fmt.Errorf("%w: %q", store.ErrBusy, name)
	}
	return nil
}

// Create makes a new, empty log.
func (s *Store) Create(name string) (store.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reserve(name); err != nil {
		return nil, err
	}
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	if _, ok := s.logs.m[name]; ok {
		return nil, fmt.Errorf("%w: %q", store.ErrExists, name)
	}
	r := &records{}
	s.logs.m[name] = r
	l := &Log{s: s, name: name, r: r}
	s.open[name] = l
	return l, nil
}

// Open opens an existing log; there is never anything to recover.
func (s *Store) Open(name string) (store.Log, store.RecoveryReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reserve(name); err != nil {
		return nil, store.RecoveryReport{}, err
	}
	s.logs.mu.Lock()
	r, ok := s.logs.m[name]
	s.logs.mu.Unlock()
	if !ok {
		return nil, store.RecoveryReport{}, fmt.Errorf("%w: %q", store.ErrNotFound, name)
	}
	l := &Log{s: s, name: name, r: r}
	s.open[name] = l
	return l, store.RecoveryReport{Records: len(r.recs)}, nil
}

// List returns the names of all logs, sorted.
func (s *Store) List() ([]string, error) {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	names := make([]string, 0, len(s.logs.m))
	for n := range s.logs.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes a log that is not open.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reserve(name); err != nil {
		return err
	}
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	if _, ok := s.logs.m[name]; !ok {
		return fmt.Errorf("%w: %q", store.ErrNotFound, name)
	}
	delete(s.logs.m, name)
	return nil
}

// Close closes every open log and the store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	s.closed = true
	open := make([]*Log, 0, len(s.open))
	for _, l := range s.open {
		open = append(open, l)
	}
	s.mu.Unlock()
	for _, l := range open {
		l.Close()
	}
	return nil
}

// Log is one log of a Store.
type Log struct {
	s      *Store
	name   string
	r      *records
	closed bool // guarded by r.mu
}

var _ store.Log = (*Log)(nil)

// Name returns the log's name.
func (l *Log) Name() string { return l.name }

// Append appends one record.
func (l *Log) Append(payload []byte) (uint64, error) {
	i, _, err := l.AppendBatch([][]byte{payload})
	return i, err
}

// AppendBatch appends every payload or none.
func (l *Log) AppendBatch(payloads [][]byte) (first, last uint64, err error) {
	if len(payloads) == 0 {
		return 0, 0, store.ErrEmptyBatch
	}
	var add int64
	for _, p := range payloads {
		if len(p) > store.MaxRecordSize {
			return 0, 0, store.ErrTooLarge
		}
		add += int64(len(p)) + overhead
	}
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if l.closed {
		return 0, 0, store.ErrClosed
	}
	if max := l.s.opts.MaxLogSize; max > 0 && l.r.size+add > max {
		return 0, 0, fmt.Errorf("%w: %q has %d bytes, limit %d, the append needs %d", store.ErrLogFull, l.name, l.r.size, max, add)
	}
	first = uint64(len(l.r.recs))
	for _, p := range payloads {
		l.r.recs = append(l.r.recs, append([]byte(nil), p...))
	}
	l.r.size += add
	return first, uint64(len(l.r.recs)) - 1, nil
}

// Durable reports whether index was appended: memory is as durable as
// this store gets.
func (l *Log) Durable(index uint64) error {
	if index >= l.Len() {
		return fmt.Errorf("%w: %d", store.ErrNotAppended, index)
	}
	return nil
}

// Sync does nothing.
func (l *Log) Sync() error { return nil }

// Records calls fn for the records from index from on appended before the
// call. fn may append.
func (l *Log) Records(from uint64, fn func(index uint64, payload []byte) error) error {
	l.r.mu.Lock()
	recs, closed := l.r.recs, l.closed
	l.r.mu.Unlock()
	if closed {
		return store.ErrClosed
	}
	for i := from; i < uint64(len(recs)); i++ {
		if err := fn(i, recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of records.
func (l *Log) Len() uint64 {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return uint64(len(l.r.recs))
}

// Size is the payload bytes plus 12 per record.
func (l *Log) Size() int64 {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return l.r.size
}

// Close closes the log.
func (l *Log) Close() error {
	l.r.mu.Lock()
	if l.closed {
		l.r.mu.Unlock()
		return store.ErrClosed
	}
	l.closed = true
	l.r.mu.Unlock()
	l.s.mu.Lock()
	if l.s.open[l.name] == l {
		delete(l.s.open, l.name)
	}
	l.s.mu.Unlock()
	return nil
}
