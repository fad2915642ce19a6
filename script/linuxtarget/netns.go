//go:build linux

package linuxtarget

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netns is a network namespace of the run's own, held by one OS thread.
// The namespace is anonymous (unshare(CLONE_NEWNET), never bind-mounted,
// so never in `ip netns list`): it lives as long as that thread and the
// descriptors opened in it, and the kernel removes it, with its device
// and routes, when the last goes, even if the process is killed.
type netns struct {
	do   chan func()
	done chan struct{}
	tid  int
}

// newNetns starts the thread and moves it into a fresh namespace.
func newNetns() (*netns, error) {
	n := &netns{do: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(n.done)
		// Locked and never unlocked: Go ends the thread with this
		// goroutine, so no other goroutine ever runs in the namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		n.tid = unix.Gettid()
		errc <- nil
		for f := range n.do {
			f()
		}
	}()
	if err := <-errc; err != nil {
		<-n.done
		return nil, err
	}
	return n, nil
}

// run calls f on the namespace's thread: what f creates (sockets, the TUN
// device) belongs to the namespace.
func (n *netns) run(f func()) {
	done := make(chan struct{})
	n.do <- func() { f(); close(done) }
	<-done
}

// path names the namespace for nsenter while its thread lives.
func (n *netns) path() string {
	return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), n.tid)
}

// inode identifies the namespace (the st_ino of its nsfs file), so a test
// can check that nothing holds it any more.
func (n *netns) inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(n.path(), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// exec runs a command inside the namespace (nsenter --net), never on the
// host's.
func (n *netns) exec(name string, args ...string) error {
	out, err := exec.Command("nsenter", append([]string{"--net=" + n.path(), name}, args...)...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return nil
}

// close ends the thread; the namespace goes with the last descriptor.
func (n *netns) close() {
	close(n.do)
	<-n.done
}
