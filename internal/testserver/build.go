package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Build builds the main package pkg, a path relative to the module root
// such as "./cmd/tcpstated", into dir, with -race when race is set, and
// returns the binary's path.
func Build(dir, pkg string, race bool) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goCmd, append(args, pkg)...)
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// moduleRoot is where this file's module lives (so a build works from any
// package's directory), or the working directory when the source is not
// there (a -trimpath build).
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return ""
	}
	return root
}

// The binaries Binary built, in one temporary directory per process.
var cache struct {
	mu   sync.Mutex
	dir  string
	bins map[string]built
}

type built struct {
	path string
	err  error
}

// Binary builds pkg once per process (per race setting) into a temporary
// directory that RemoveBinaries (or Main) removes, and returns its path.
func Binary(pkg string, race bool) (string, error) {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	key := fmt.Sprint(pkg, race)
	if b, ok := cache.bins[key]; ok {
		return b.path, b.err
	}
	if cache.dir == "" {
		d, err := os.MkdirTemp("", "tcpstated-testbin-")
		if err != nil {
			return "", err
		}
		cache.dir, cache.bins = d, map[string]built{}
	}
	var b built
	dir := filepath.Join(cache.dir, "plain")
	if race {
		dir = filepath.Join(cache.dir, "race")
	}
	if b.err = os.MkdirAll(dir, 0o755); b.err == nil {
		b.path, b.err = Build(dir, pkg, race)
	}
	cache.bins[key] = b
	return b.path, b.err
}

// Tcpstated is Binary for ./cmd/tcpstated, failing t when it does not build.
func Tcpstated(t T, race bool) string {
	t.Helper()
	bin, err := Binary("./cmd/tcpstated", race)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return bin
}

// RemoveBinaries removes what Binary built.
func RemoveBinaries() {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cache.dir != "" {
		os.RemoveAll(cache.dir)
		cache.dir, cache.bins = "", nil
	}
}

// M is what a TestMain runs (*testing.M).
type M interface{ Run() int }

// Main runs the tests, removes the binaries they built and exits with the
// tests' code: a package's whole TestMain.
func Main(m M) {
	code := m.Run()
	RemoveBinaries()
	os.Exit(code)
}
