// Package pgtest starts a real, throw-away PostgreSQL server for tests:
// initdb in a temporary directory, pg_ctl on a free loopback port, stopped
// and removed when the test ends. It uses Debian's postgresql package
// (/usr/lib/postgresql/N/bin, or PGBIN). initdb refuses to run as root, so
// under root the cluster belongs to the postgres system user and the
// binaries run through runuser.
//
// Without the binaries Start skips the test and says why, except under
// CI=true, where a missing PostgreSQL fails the test: CI never skips.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one PostgreSQL cluster of a test.
type Server struct {
	bin  string // directory of initdb, pg_ctl, psql
	dir  string // the cluster's temporary directory (socket, log)
	data string // the data directory
	port int
	as   string // system user to run the binaries as; "" means the current one

	mu      sync.Mutex
	running bool
}

// User is the database superuser initdb creates.
const User = "tcpstated"

// findBin returns the directory holding initdb and pg_ctl: PGBIN if set,
// else the newest /usr/lib/postgresql/*/bin, else the directory of an
// initdb on PATH.
func findBin() (string, error) {
	if d := os.Getenv("PGBIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PGBIN=%s has no initdb: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; install Debian's postgresql package or set PGBIN")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Available reports whether a server can be started here, and if not why.
func Available() (bool, string) {
	if _, err := findBin(); err != nil {
		return false, err.Error()
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return false, "running as root and there is no postgres user to run initdb as (initdb refuses root)"
		}
	}
	return true, ""
}

// Start initialises and starts a new cluster for tb, or skips tb (fails it
// under CI=true) when PostgreSQL is not installed. The cluster is stopped
// and removed in tb.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	skipUnavailable(tb)
	s, err := start()
	if s != nil {
		tb.Cleanup(s.remove)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func skipUnavailable(tb testing.TB) {
	tb.Helper()
	if ok, why := Available(); !ok {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required under CI=true: %s", why)
		}
		tb.Skipf("skipping: PostgreSQL is not available: %s", why)
	}
}

var shared struct {
	sync.Mutex
	s   *Server
	err error
}

// Shared returns one cluster shared by the tests of the package (each
// should use its own database: NewDB), started on first use; Main removes
// it when the tests end. Tests that stop or crash the server need their
// own (Start).
func Shared(tb testing.TB) *Server {
	tb.Helper()
	skipUnavailable(tb)
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = start()
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.s
}

// Main runs a package's tests (call it from TestMain) and then removes
// the shared cluster, if one was started.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.s != nil {
		shared.s.remove()
	}
	shared.Unlock()
	os.Exit(code)
}

func (s *Server) remove() {
	s.stop("immediate")
	os.RemoveAll(s.dir)
}

func start() (*Server, error) {
	bin, _ := findBin()
	dir, err := os.MkdirTemp("", "tcpstated-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		s.as = "postgres"
		if err := chownTo(dir, "postgres"); err != nil {
			return s, err
		}
	}
	if out, err := s.run("initdb", "-D", s.data, "-A", "trust", "-U", User, "-E", "UTF8", "--no-sync"); err != nil {
		return s, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// The port is free when asked for but another process may bind it
	// before the server does: try a few.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err != nil {
			return s, err
		}
		if err = s.Restart(); err == nil || try == 3 {
			return s, err
		}
	}
}

// Stop stops the server fast (clients disconnected, a clean shutdown).
func (s *Server) Stop() error { return s.stop("fast") }

// Crash stops the server with pg_ctl -m immediate: no checkpoint, as if
// the machine lost power (committed transactions survive in the WAL).
func (s *Server) Crash() error { return s.stop("immediate") }

func (s *Server) stop(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", mode, "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	s.running = false
	return nil
}

// Restart starts the server again on the same port (after Stop or Crash;
// a crashed cluster recovers from its WAL).
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	opts := fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c max_connections=200", s.dir, s.port)
	if out, err := s.run("pg_ctl", "-D", s.data, "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		lg, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, lg)
	}
	s.running = true
	return nil
}

// Port is the TCP port the server listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// URL returns a connection URL for database db (created by CreateDB, or
// "postgres").
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.port, db)
}

var dbSeq struct {
	sync.Mutex
	n int
}

// NewDB creates a fresh database on the server and returns its name (URL
// gives its connection URL), so tests sharing one server do not see each
// other's tables.
func (s *Server) NewDB(tb testing.TB) string {
	tb.Helper()
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("t%d", dbSeq.n)
	dbSeq.Unlock()
	if out, err := s.Psql("postgres", "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v\n%s", err, out)
	}
	return name
}

// Psql runs one SQL command through psql against database db and returns
// its unaligned output.
func (s *Server) Psql(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", User, "-d", db, "-c", sql)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// ServerLog returns what the server wrote to its log file so far.
func (s *Server) ServerLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	return string(b)
}

func (s *Server) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.as != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.as, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func chownTo(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; Start then fails with pg_ctl's log.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// New starts a cluster outside a test (the crash harness); Remove stops
// and deletes it.
func New() (*Server, error) {
	if ok, why := Available(); !ok {
		return nil, fmt.Errorf("PostgreSQL is not available: %s", why)
	}
	s, err := start()
	if err != nil && s != nil {
		s.remove()
	}
	return s, err
}

// Remove stops the cluster (immediately) and deletes its directory.
func (s *Server) Remove() { s.remove() }

// CreateDB creates database name.
func (s *Server) CreateDB(name string) error {
	if out, err := s.Psql("postgres", "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database %s: %v: %s", name, err, out)
	}
	return nil
}
