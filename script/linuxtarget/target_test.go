//go:build linux

package linuxtarget_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/linuxtarget"
)

var conformance = flag.String("conformance", "", "write the table of the project's scripts on the kernel and both targets to this file")

// late is TestProjectScripts' Options.LateTolerance: on this shared VM the
// kernel's packets leave up to tens of ms after their line while it waits
// for a CPU. 20 ms is under Linux's 40 ms delayed-ACK minimum, the
// shortest timer difference between the profiles, and a timer that is
// early is judged with the script's own tolerance.
var late = flag.Duration("late", 20*time.Millisecond, "lateness beyond the script's tolerance allowed to the kernel in TestProjectScripts (never earliness)")
var profile = flag.String("profile", "", "the engine's behaviour profile for TestProjectScripts' both-target runs (rfc, freebsd, linux)")

// needKernel skips without root or TUN, or fails under CI=true, where the
// kernel is there to be used.
func needKernel(t *testing.T) {
	t.Helper()
	if why := linuxtarget.Available(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot run under CI=true: %s", why)
		}
		t.Skip(why)
	}
}

// runRetried runs a script written for Linux against the kernel, up to
// three times: a busy machine can make a wall-clock run late.
func runRetried(t *testing.T, name string) *script.Report {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var rep *script.Report
	for range 3 {
		if rep, err = script.RunLinux(src, script.Options{Name: name}); err != nil {
			t.Fatal(err)
		}
		if rep.Passed {
			break
		}
	}
	return rep
}

// TestKernelScripts: the scripts written for Linux in testdata pass on
// the kernel, and the backquoted sysctl changed the namespace only.
func TestKernelScripts(t *testing.T) {
	needKernel(t)
	before, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_timestamps")
	for _, name := range []string{"linux-passive.pkt", "linux-sysctl.pkt", "linux-connect-refused.pkt"} {
		t.Run(name, func(t *testing.T) {
			if rep := runRetried(t, filepath.Join("testdata", name)); !rep.Passed {
				t.Errorf("%s", rep.Text())
			}
		})
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_timestamps"); string(after) != string(before) {
		t.Errorf("the host's net.ipv4.tcp_timestamps changed from %q to %q", before, after)
	}
}

// TestCommandRefusesHost: only per-namespace sysctl writes run.
func TestCommandRefusesHost(t *testing.T) {
	needKernel(t)
	tg := newTarget(t)
	defer tg.Close()
	for _, cmd := range []string{"ip link set lo down", "sysctl -w kernel.panic=1", "sysctl net.ipv4.tcp_sack", "echo 1 > /proc/sys/net/ipv4/tcp_sack"} {
		if skip, err := tg.Command(cmd); skip == "" || err != nil {
			t.Errorf("Command(%q) = %q, %v; want it skipped", cmd, skip, err)
		}
	}
	if skip, err := tg.Command("sysctl -q net.ipv4.tcp_sack=0"); skip != "" || err != nil {
		t.Errorf("sysctl net.ipv4.tcp_sack=0: %q, %v", skip, err)
	}
}

func newTarget(t *testing.T) *linuxtarget.Target {
	t.Helper()
	s, err := script.Parse("x.pkt", []byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	setup, err := s.Setup()
	if err != nil {
		t.Fatal(err)
	}
	tg, err := linuxtarget.New(setup)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// holders lists the threads of any process still in the namespace inode.
func holders(ino uint64) []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	var out []string
	for _, p := range paths {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == ino {
			out = append(out, p)
		}
	}
	return out
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// netnsList is `ip netns list` less the labs of another test process
// (interop names them tcpst<pid>-<n>): `go test ./...` runs packages in
// parallel, and only this process's namespaces are this test's business.
func netnsList(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	own := fmt.Sprintf("tcpst%d-", os.Getpid())
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var pid, n int
		if _, err := fmt.Sscanf(l, "tcpst%d-%d", &pid, &n); err == nil && !strings.HasPrefix(l, own) {
			continue
		}
		keep = append(keep, l)
	}
	sort.Strings(keep) // the kernel's order moves as others come and go
	return strings.Join(keep, "\n")
}

// TestFaultCleanup: a run that fails, and a run interrupted in the middle
// of a sleep, leave no namespace, device, descriptor or goroutine behind.
func TestFaultCleanup(t *testing.T) {
	needKernel(t)
	cases := []struct {
		name, src string
		interrupt bool
	}{
		{"failing", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n0.050 < S 0:0(0) win 65535 <mss 1460>\n+0 > R. 0:0(0) ack 1\n", false},
		{"blocked", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n0.050...0.100 accept(3, ..., ...) = 4\n", false},
		{"interrupted", "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n0...60 accept(3, ..., ...) = 4\n", true},
	}
	list := netnsList(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fds, goroutines := openFDs(), runtime.NumGoroutine()
			s, err := script.Parse(c.name, []byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			setup, _ := s.Setup()
			tg, err := linuxtarget.New(setup)
			if err != nil {
				t.Fatal(err)
			}
			ino, err := tg.Namespace()
			if err != nil {
				t.Fatal(err)
			}
			if c.interrupt {
				time.AfterFunc(300*time.Millisecond, tg.Interrupt)
			}
			start := time.Now()
			rep := script.RunTarget(tg, s, script.Options{})
			tg.Close()
			if rep.Passed {
				t.Errorf("the run passed:\n%s", rep.Text())
			}
			if c.interrupt && time.Since(start) > 5*time.Second {
				t.Errorf("the interrupted run took %v", time.Since(start))
			}
			// A thread that entered the namespace ends once its goroutine
			// returns, which may be just after Close: give it a moment.
			h := holders(ino)
			for wait := time.Now().Add(2 * time.Second); len(h) > 0 && time.Now().Before(wait); h = holders(ino) {
				time.Sleep(10 * time.Millisecond)
			}
			if len(h) > 0 {
				t.Errorf("the namespace is still held by %v", h)
			}
			if n := openFDs(); n > fds {
				t.Errorf("%d descriptors open after the run, %d before", n, fds)
			}
			deadline := time.Now().Add(2 * time.Second)
			for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > goroutines {
				t.Errorf("%d goroutines after the run, %d before", n, goroutines)
			}
		})
	}
	if got := netnsList(t); got != list {
		t.Errorf("ip netns list changed: %q, was %q", got, list)
	}
}

// TestSIGINT: "script run --target=linux" interrupted by SIGINT exits 2,
// and neither its namespace nor any process of it is left.
func TestSIGINT(t *testing.T) {
	if os.Getenv("LINUXTARGET_HELPER") == "1" {
		os.Exit(script.Main([]string{"run", "--target=linux", "testdata/linux-long.pkt"}, os.Stdout, os.Stderr))
	}
	needKernel(t)
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSIGINT$")
	cmd.Env = append(os.Environ(), "LINUXTARGET_HELPER=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Find the run's namespace: a thread of the child in another one.
	var ino uint64
	for deadline := time.Now().Add(10 * time.Second); ino == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		paths, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*/ns/net", cmd.Process.Pid))
		for _, p := range paths {
			var st unix.Stat_t
			if unix.Stat(p, &st) == nil && st.Ino != self.Ino {
				ino = st.Ino
			}
		}
	}
	if ino == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child never entered a namespace of its own:\n%s", out.String())
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("exit: %v, want status 2\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("SIGINT did not end the run in 10 s:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("the output does not say the run was interrupted:\n%s", out.String())
	}
	if h := holders(ino); len(h) > 0 {
		t.Errorf("the namespace is still held by %v", h)
	}
}

// TestProjectScripts runs every script of testdata/scripts against the
// kernel and, with --target=both, against the engine too. Most were
// written for the engine's RFC behaviour, so kernel failures are data,
// not bugs: the test checks that every run completes and cleans up, logs
// the results, and with -conformance=FILE writes the table that
// docs/CONFORMANCE.md records.
func TestProjectScripts(t *testing.T) {
	needKernel(t)
	if testing.Short() {
		t.Skip("-short: the project's scripts take a minute on the wall clock")
	}
	files, err := filepath.Glob("../../testdata/scripts/*.pkt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	sort.Strings(files)
	var rows []string
	kernelPass, same, ownPass := 0, 0, 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		own, err := script.RunLinux(src, script.Options{Name: name, LateTolerance: *late})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		ownResult := "FAIL"
		if own.Passed {
			ownResult, ownPass = "PASS", ownPass+1
		}
		// Semantic: flags, seq, ack and length, so that the kernel's own
		// window and options, which scripts written for the engine do
		// not expect, are not the difference reported.
		// A difference is run again, up to twice: a kernel run on a
		// busy machine can be later than any allowance, but a semantic
		// difference is there every time. The table says when a later
		// run was the one kept.
		var rep *script.Report
		runs := 0
		for range 3 {
			r, err := script.RunBoth(src, script.Options{Name: name, Compare: script.CompareSemantic, Profile: *profile, LateTolerance: *late})
			if err != nil {
				t.Errorf("%s: %v", name, err)
				break
			}
			runs++
			if rep == nil || len(r.Differences) < len(rep.Differences) {
				rep = r
			}
			if len(rep.Differences) == 0 {
				break
			}
		}
		if rep == nil {
			continue
		}
		if rep.Engine == nil || rep.Target != script.TargetBoth {
			t.Errorf("%s: not a both-target report", name)
			continue
		}
		kernel := "FAIL"
		if kernelPassed(rep) {
			kernel, kernelPass = "PASS", kernelPass+1
		}
		engine := "FAIL"
		if rep.Engine.Passed {
			engine = "PASS"
		}
		if len(rep.Differences) == 0 {
			same++
		}
		d := describe(rep)
		if runs > 1 {
			d += fmt.Sprintf(" (run %d times)", runs)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s |", name, ownResult, kernel, engine, d))
		t.Logf("%s: kernel %s, engine %s, %d differences", name, kernel, engine, len(rep.Differences))
	}
	t.Logf("kernel passes %d of %d (%d with the script's own compare mode); no difference on %d", kernelPass, len(files), ownPass, same)
	if *conformance != "" {
		profileName := *profile
		if profileName == "" {
			profileName = "rfc"
		}
		table := fmt.Sprintf("With the script's own compare mode the kernel passes %d of %d scripts; with --compare=semantic it passes %d, "+
			"and kernel and engine (profile %s) agree on every line of %d.\n\n"+
			"| script | kernel (own compare) | kernel (semantic) | engine (semantic) | first difference, semantic (line: kernel / engine) |\n|---|---|---|---|---|\n%s\n",
			ownPass, len(files), kernelPass, profileName, same, strings.Join(rows, "\n"))
		if err := os.WriteFile(*conformance, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// kernelPassed: a both-target report's Passed is both; Failure tells the
// kernel's part.
func kernelPassed(rep *script.Report) bool {
	for _, l := range rep.Lines {
		if l.Status == script.StatusFail {
			return false
		}
	}
	return true
}

func describe(rep *script.Report) string {
	if len(rep.Differences) == 0 {
		return "none"
	}
	d := rep.Differences[0]
	side := func(l script.LineResult) string {
		s := l.Status
		if l.Status == script.StatusFail && l.Reason != "" {
			s += ": " + l.Reason
		} else if l.Actual != "" {
			s += " " + l.Actual
		}
		if i := strings.Index(s, " (the engine"); i > 0 {
			s = s[:i]
		}
		if len(s) > 140 {
			s = s[:140] + "…"
		}
		return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
	}
	more := ""
	if len(rep.Differences) > 1 {
		more = fmt.Sprintf(" (+%d more)", len(rep.Differences)-1)
	}
	return fmt.Sprintf("%d: %s / %s%s", d.Line, side(d.Kernel), side(d.Engine), more)
}

// TestLinuxSwitchProbes: a project script that probes a switch of the
// linux profile passes on both targets under --profile=linux, with no
// difference: the engine's Linux choice is the kernel's. A busy machine
// gets three tries (the -late allowance applies).
func TestLinuxSwitchProbes(t *testing.T) {
	needKernel(t)
	if testing.Short() {
		t.Skip("-short: the probes take half a minute on the wall clock")
	}
	probes := []struct {
		sw, script string
		strict     bool // windows are what the probe is about: semantic compare does not judge them
	}{
		{"simopen_dup_ack", "simultaneous-open.pkt", false},
		{"simopen_dup_ack", "syn-received-close.pkt", false},
		{"synsent_badack_rexmit", "syn-sent-segments.pkt", false},
		{"syn_linear_timeouts", "syn-retransmit.pkt", false},
		{"synack_retries", "synack-retransmit.pkt", false},
		{"window_scaling", "window-scale.pkt", false},
		{"sack", "sack-first-block.pkt", false},
		{"sack_fin", "sack-fin.pkt", true},            // the SACK block's right edge is the point
		{"ts_recent_dup", "paws-overtaken.pkt", true}, // the TSecr echoed is the point
		{"zwp_bare_ack", "zero-window-probe.pkt", false},
		{"zwp_bare_ack", "zero-window-fin.pkt", false},
		{"rcv_beyond_window", "window-right-edge.pkt", false},
		{"synrcvd_syn_reset", "syn-received-new-syn.pkt", false},
		{"acceptq_linux", "accept-queue-overflow.pkt", false},
		{"synq_backlog", "syn-queue-overflow.pkt", false},
		{"shutrd_eof", "shutdown-read.pkt", false},
		{"tcp_rmem", "receive-window.pkt", true},
		{"tcp_rmem", "receive-buffer.pkt", true},
	}
	for _, p := range probes {
		t.Run(p.sw+"/"+p.script, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("../../testdata/scripts", p.script))
			if err != nil {
				t.Fatal(err)
			}
			var rep *script.Report
			for range 3 {
				compare := script.CompareSemantic
				if p.strict {
					compare = script.CompareStrict
				}
				if rep, err = script.RunBoth(src, script.Options{Name: p.script, Compare: compare, Profile: "linux", LateTolerance: *late}); err != nil {
					t.Fatal(err)
				}
				if rep.Passed && len(rep.Differences) == 0 {
					return
				}
			}
			t.Errorf("%s (probe of %s): passed %v, %d differences\n%s", p.script, p.sw, rep.Passed, len(rep.Differences), rep.Text())
		})
	}
}
