package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
)

// Options configure a Store. The zero value is the safe default
// (synchronous commit, a 3 s lease renewed every second).
type Options struct {
	// Fsync: FsyncAlways commits with synchronous_commit=on (a call
	// returns once its records' transaction is on the database's disk);
	// FsyncBatch and FsyncNever commit with synchronous_commit=off (the
	// database flushes its WAL within wal_writer_delay; a database crash
	// can lose that much, never tear a record).
	Fsync store.FsyncMode
	// MaxLogSize caps a log's size (header and frames, as the file
	// store counts it); an append that would pass it fails with
	// store.ErrLogFull and writes nothing. 0 means no cap.
	MaxLogSize int64
	// Replica names this server in the replicas table and in the leases it
	// holds. Two live servers must never share one. Default: the host name
	// and process id.
	Replica string
	// Addr is where other replicas reach this one (its gRPC address); it
	// is stored with the heartbeat so they can forward calls.
	Addr string
	// LeaseTTL is how long this replica's leases live without a renewal
	// (default 3 s); Renew how often it renews them (default TTL/3).
	LeaseTTL, Renew time.Duration
	// MaxConns bounds the connection pool (default 10).
	MaxConns int32
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// NewSeed returns the CRC chain seed of a new log; nil means random.
	// Tests set it to compare a log with a file store's byte for byte.
	NewSeed func() uint32
}

// Defaults for Options' zero values.
const (
	DefaultLeaseTTL = 3 * time.Second
	DefaultMaxConns = 10
	opTimeout       = 30 * time.Second
)

// Errors of the PostgreSQL store besides the store package's.
var (
	// ErrFenced: an append presented an epoch that is no longer the log's
	// (another replica took the log over) or the log moved under it. The
	// log is poisoned: every later call fails with it.
	ErrFenced = errors.New("pgstore: fenced: the log's lease was taken over")
)

// OwnedError: the log is leased to another live replica.
type OwnedError struct {
	Log, Owner, Addr string
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("pgstore: log %q is owned by replica %s at %s", e.Log, e.Owner, e.Addr)
}

// Is makes errors.Is(err, store.ErrBusy) hold: the log is open elsewhere.
func (e *OwnedError) Is(target error) bool { return target == store.ErrBusy }

// Store keeps logs in a PostgreSQL database shared by any number of
// replicas. See doc.go.
type Store struct {
	pool *pgxpool.Pool
	opts Options
	log  *slog.Logger
	gc   *committer

	open store.Registry[*Log] // logs open, created, opened or removed (names reserved)
	// kept is the epoch of each log closed here whose lease this replica
	// still holds (a closed log keeps its lease): Remove deletes the log
	// only under that epoch, so a replica never deletes a log another one
	// took over since (see Remove).
	keptMu sync.Mutex
	kept   map[string]int64
	// checks counts lease checks after a lapse (checkLost); an Open that
	// overlapped one re-checks its own lease (see Open).
	checks atomic.Uint64

	hbStop    chan struct{}
	hbDone    chan struct{}
	hb        heartbeat
	lastReset atomic.Int64 // unix ns of the last pool reset (resetPool)
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// DSN), creates or migrates the schema, registers this replica and starts
// the group-commit writer and the lease renewal.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Fsync < store.FsyncAlways || opts.Fsync > store.FsyncNever {
		return nil, fmt.Errorf("pgstore: invalid fsync mode %d", int(opts.Fsync))
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.Renew <= 0 {
		opts.Renew = opts.LeaseTTL / 3
	}
	if opts.Renew >= opts.LeaseTTL {
		return nil, fmt.Errorf("pgstore: lease renewal every %v is not shorter than the lease (%v)", opts.Renew, opts.LeaseTTL)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Replica == "" {
		h, _ := os.Hostname()
		opts.Replica = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	cfg.MaxConns = opts.MaxConns
	sc := "on"
	if opts.Fsync != store.FsyncAlways {
		sc = "off"
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = sc
	cfg.ConnConfig.RuntimeParams["application_name"] = "tcpstated " + opts.Replica
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := &Store{
		pool:   pool,
		opts:   opts,
		log:    lg.With("component", "pgstore", "replica", opts.Replica),
		kept:   make(map[string]int64),
		hbStop: make(chan struct{}),
		hbDone: make(chan struct{}),
	}
	applied, err := migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if len(applied) > 0 {
		s.log.Info("database schema migrated", "versions", applied, "now", SchemaVersion())
	}
	if err := s.renew(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.gc = newCommitter(s)
	go s.heartbeatLoop()
	return s, nil
}

// Replica returns this replica's name.
func (s *Store) Replica() string { return s.opts.Replica }

// Pool returns the connection pool (for tests and diagnostics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) newSeed() uint32 {
	if s.opts.NewSeed != nil {
		return s.opts.NewSeed()
	}
	var b [4]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func (s *Store) reserve(name string) error { return s.open.Reserve(name) }

func (s *Store) settle(name string, l *Log) error { return s.open.Settle(name, l) }

// forget releases a closed log's name; the lease stays with this replica,
// under the epoch noted for Remove.
func (s *Store) forget(l *Log) {
	s.keptMu.Lock()
	s.kept[l.name] = l.epoch
	s.keptMu.Unlock()
	s.open.Forget(l.name, l)
}

// unkeep drops what Remove knew of a log name reserved by the caller.
func (s *Store) unkeep(name string) {
	s.keptMu.Lock()
	delete(s.kept, name)
	s.keptMu.Unlock()
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Create makes a new empty log leased to this replica (epoch 1). The row
// is committed before it returns, so the log exists or not.
func (s *Store) Create(name string) (store.Log, error) {
	if err := s.reserve(name); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	seed := s.newSeed()
	header := filestore.EncodeHeader(seed)
	tag, err := s.pool.Exec(ctx, `INSERT INTO logs (name, header, records, size, crc, owner, epoch)
		VALUES ($1, $2, 0, $3, $4, $5, 1) ON CONFLICT (name) DO NOTHING`,
		name, header, int64(filestore.HeaderSize), int64(seed), s.opts.Replica)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: %q", store.ErrExists, name)
	} else if err != nil {
		err = dbErr("create", name, err)
	}
	if err != nil {
		s.settle(name, nil)
		return nil, err
	}
	l := newLog(s, name, header, seed, 1, filestore.HeaderSize, 0, seed)
	s.unkeep(name)
	if err := s.settle(name, l); err != nil {
		return nil, err
	}
	return l, nil
}

// Open takes the log's lease (a new epoch: any append still in flight
// under the old one is refused) and verifies every record. It fails with
// an *OwnedError if another live replica holds the lease. Damage (a frame
// that fails its CRC, a missing record, a count that disagrees) is
// reported in the RecoveryReport and the log is cut back to the last good
// record, as the file store truncates a damaged file.
func (s *Store) Open(name string) (store.Log, store.RecoveryReport, error) {
	if err := s.reserve(name); err != nil {
		return nil, store.RecoveryReport{}, err
	}
	checks := s.checks.Load()
	l, rep, err := s.openLog(name)
	if err == nil && (s.checks.Load() != checks || !s.LeaseValid()) {
		// This replica's lease lapsed while the log was being opened: a
		// lease check (checkLost) that ran meanwhile did not see this log,
		// and another replica may have taken it over or removed it after
		// the takeover above. Make sure it is still ours.
		err = s.stillOwned(l)
	}
	if err != nil {
		s.settle(name, nil)
		return nil, rep, err
	}
	s.unkeep(name)
	if err := s.settle(name, l); err != nil {
		return nil, rep, err
	}
	return l, rep, nil
}

// takeoverSQL takes the lease if this replica holds it already, nobody
// does, or its holder's heartbeat has expired. Its row lock waits for any
// append in flight on the log (those lock the row too), so every append
// that committed before is visible to the reads that follow and none with
// the old epoch can commit after.
const takeoverSQL = `UPDATE logs SET epoch = epoch + 1, owner = $2
	WHERE name = $1 AND (owner = $2 OR owner = '' OR NOT EXISTS (
		SELECT 1 FROM replicas r WHERE r.id = logs.owner AND r.expires > now()))
	RETURNING epoch, header, records, size, crc`

func (s *Store) openLog(name string) (*Log, store.RecoveryReport, error) {
	var rep store.RecoveryReport
	ctx, cancel := opCtx()
	defer cancel()
	var (
		epoch, records, size, crc int64
		header                    []byte
	)
	err := s.pool.QueryRow(ctx, takeoverSQL, name, s.opts.Replica).Scan(&epoch, &header, &records, &size, &crc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rep, s.whyNotOpen(ctx, name)
	}
	if err != nil {
		return nil, rep, dbErr("open", name, err)
	}
	seed, err := filestore.HeaderSeed(header)
	if err != nil {
		s.log.Error("log header is damaged; log left as is", "log", name, "err", err)
		return nil, rep, err
	}
	v := verifier{crc: seed, off: filestore.HeaderSize}
	if err := s.scan(ctx, name, 0, -1, v.check); err != nil {
		return nil, rep, err
	}
	rep.Records = int(v.good)
	switch {
	case v.damage == nil && v.good != uint64(records):
		v.damage = &store.DamageError{Kind: store.ErrCorrupt, Offset: v.off, Index: v.good,
			Reason: fmt.Sprintf("the log says it has %d records, %d are stored", records, v.good)}
	case v.damage == nil && (v.off != size || v.crc != uint32(crc)):
		v.damage = &store.DamageError{Kind: store.ErrCorrupt, Offset: v.off, Index: v.good,
			Reason: fmt.Sprintf("the log's end (size %d, crc %08x) disagrees with its records (size %d, crc %08x)", size, uint32(crc), v.off, v.crc)}
	}
	if d := v.damage; d != nil {
		rep.Truncated, rep.TruncatedAt, rep.DroppedBytes, rep.Reason, rep.Damage = true, d.Offset, v.stored-d.Offset, d.Error(), d
		if err := s.truncate(ctx, name, epoch, v.good, v.off, v.crc); err != nil {
			return nil, rep, err
		}
		s.log.Warn("log recovered: cut back to the last good record", "log", name,
			"records", rep.Records, "truncated_at", d.Offset, "dropped_bytes", rep.DroppedBytes, "reason", d.Reason)
	}
	return newLog(s, name, header, seed, epoch, v.off, v.good, v.crc), rep, nil
}

// stillOwned checks that log l is still leased to this replica under its
// epoch.
func (s *Store) stillOwned(l *Log) error {
	ctx, cancel := opCtx()
	defer cancel()
	var one int
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM logs WHERE name = $1 AND owner = $2 AND epoch = $3`,
		l.name, s.opts.Replica, l.epoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.whyNotOpen(ctx, l.name)
	}
	if err != nil {
		return dbErr("open", l.name, err)
	}
	return nil
}

// whyNotOpen explains a takeover that matched no row.
func (s *Store) whyNotOpen(ctx context.Context, name string) error {
	var owner, addr string
	err := s.pool.QueryRow(ctx, `SELECT l.owner, coalesce(r.addr, '') FROM logs l
		LEFT JOIN replicas r ON r.id = l.owner WHERE l.name = $1`, name).Scan(&owner, &addr)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %q", store.ErrNotFound, name)
	}
	if err != nil {
		return dbErr("open", name, err)
	}
	return &OwnedError{Log: name, Owner: owner, Addr: addr}
}

// truncate deletes the records from index good on and sets the log's end,
// under the epoch just taken.
func (s *Store) truncate(ctx context.Context, name string, epoch int64, good uint64, size int64, crc uint32) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: truncating %q: %w", name, err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE logs SET records = $3, size = $4, crc = $5 WHERE name = $1 AND epoch = $2`,
		name, epoch, int64(good), size, int64(crc))
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrFenced
	}
	if err == nil {
		_, err = tx.Exec(ctx, `DELETE FROM records WHERE log = $1 AND idx >= $2`, name, int64(good))
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		return dbErr("truncating", name, err)
	}
	return nil
}

// scan calls fn with each stored frame of log name from index lo up to
// (not including) hi, in index order; hi < 0 means to the end.
func (s *Store) scan(ctx context.Context, name string, lo, hi int64, fn func(idx int64, frame []byte) error) error {
	if hi < 0 {
		hi = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT idx, frame FROM records WHERE log = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`, name, lo, hi)
	if err != nil {
		return dbErr("reading", name, err)
	}
	defer rows.Close()
	var idx int64
	var frame []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &frame}, func() error { return fn(idx, frame) })
	if err != nil {
		if _, ok := err.(*pgconn.PgError); ok || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
			return dbErr("reading", name, err)
		}
		return err
	}
	return nil
}

// verifier checks a log's frames in order, as the file store's reader
// checks a file: it stops at the first bad one (a gap in the indexes
// counts as one) and notes where.
type verifier struct {
	crc    uint32
	off    int64  // end of the last good frame (header included)
	good   uint64 // good records
	stored int64  // bytes of everything stored (header included)
	damage *store.DamageError
}

func (v *verifier) check(idx int64, frame []byte) error {
	if v.stored == 0 {
		v.stored = filestore.HeaderSize
	}
	v.stored += int64(len(frame))
	if v.damage != nil {
		return nil
	}
	if idx != int64(v.good) {
		v.damage = &store.DamageError{Kind: store.ErrCorrupt, Offset: v.off, Index: v.good,
			Reason: fmt.Sprintf("record %d is missing (the next stored is %d)", v.good, idx)}
		return nil
	}
	_, crc, reason := filestore.CheckFrame(v.crc, frame)
	if reason != "" {
		v.damage = &store.DamageError{Kind: store.ErrCorrupt, Offset: v.off, Index: v.good, Reason: reason}
		return nil
	}
	v.crc, v.off, v.good = crc, v.off+int64(len(frame)), v.good+1
	return nil
}

// List returns the names of all logs, sorted.
func (s *Store) List() ([]string, error) {
	ctx, cancel := opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT name FROM logs ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, dbErr("list", "", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	return names, nil
}

// Remove deletes a log that is not open here, only if this replica holds
// its lease: under the epoch it last held the log with, when it closed it
// here, or else as its owner. A log another replica took over since is
// refused (an *OwnedError, or ErrNotFound once that one removed it), even
// when that replica's heartbeat has expired meanwhile: it may be serving
// the session from memory, and a deletion acknowledged here would leave it
// there (the crash harness's "present although its deletion was
// acknowledged", docs/SCALE.md).
func (s *Store) Remove(name string) error {
	if err := s.reserve(name); err != nil {
		return err
	}
	defer s.settle(name, nil)
	s.keptMu.Lock()
	epoch, known := s.kept[name]
	s.keptMu.Unlock()
	ctx, cancel := opCtx()
	defer cancel()
	var (
		tag pgconn.CommandTag
		err error
	)
	if known {
		tag, err = s.pool.Exec(ctx, `DELETE FROM logs WHERE name = $1 AND owner = $2 AND epoch = $3`, name, s.opts.Replica, epoch)
	} else {
		tag, err = s.pool.Exec(ctx, `DELETE FROM logs WHERE name = $1 AND (owner = $2 OR owner = '')`, name, s.opts.Replica)
	}
	if err != nil {
		return dbErr("remove", name, err)
	}
	if tag.RowsAffected() == 0 {
		return s.whyNotOpen(ctx, name)
	}
	s.unkeep(name)
	return nil
}

// Image returns log name as the file store would hold it (header and
// frames), read without taking its lease: what `log dump` and `log verify`
// read. It reports what is stored, damage included.
func (s *Store) Image(ctx context.Context, name string) ([]byte, error) {
	return image(ctx, s.pool, name)
}

// querier is a pool or a single connection.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func image(ctx context.Context, q querier, name string) ([]byte, error) {
	var header []byte
	err := q.QueryRow(ctx, `SELECT header FROM logs WHERE name = $1`, name).Scan(&header)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", store.ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading %q: %w", name, err)
	}
	img := append([]byte(nil), header...)
	rows, err := q.Query(ctx, `SELECT frame FROM records WHERE log = $1 ORDER BY idx`, name)
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading %q: %w", name, err)
	}
	var frame []byte
	if _, err := pgx.ForEachRow(rows, []any{&frame}, func() error {
		img = append(img, frame...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("pgstore: reading %q: %w", name, err)
	}
	return img, nil
}

// ReadImage connects to the database at url and returns the image of log
// name (see Store.Image) without registering a replica, taking a lease or
// changing anything: for offline tools, also while servers run. A schema
// newer than this binary is refused; an absent one means no logs.
func ReadImage(ctx context.Context, url, name string) ([]byte, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: never migrated
			return nil, fmt.Errorf("%w: %q (the database has no tcpstated schema)", store.ErrNotFound, name)
		}
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if v > SchemaVersion() {
		return nil, fmt.Errorf("%w: the database is at version %d, this binary reads up to %d", ErrSchemaTooNew, v, SchemaVersion())
	}
	return image(ctx, conn, name)
}

// Close closes every open log (waiting for its commits), ends this
// replica's heartbeat so others may take its logs over at once, and closes
// the pool.
func (s *Store) Close() error {
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
	close(s.hbStop)
	<-s.hbDone
	ctx, cancel := opCtx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, `UPDATE replicas SET expires = now() WHERE id = $1`, s.opts.Replica); err != nil && first == nil {
		first = fmt.Errorf("pgstore: ending the lease: %w", err)
	}
	s.pool.Close()
	return first
}

// dbErr wraps a database failure of op on log name; one that says the
// database cannot be reached now (no connection, a server starting up or
// shutting down, out of connections) also wraps store.ErrUnavailable.
func dbErr(op, name string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57") || strings.HasPrefix(pe.Code, "53") {
		return fmt.Errorf("pgstore: %s %q: %w: %w", op, name, store.ErrUnavailable, err)
	}
	return fmt.Errorf("pgstore: %s %q: %w", op, name, err)
}
