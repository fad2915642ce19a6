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
// so never in `ip netns list`): it lives as long as that thread is in it
// and the descriptors opened in it are open, and the kernel removes it,
// with its device and routes, when the last goes, even if the process is
// killed.
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
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer unix.Close(home)
		// The thread goes back home when the run ends; if it cannot, it
		// stays locked and Go ends it with this goroutine (or, on the
		// main thread, parks it), so that no other goroutine runs in the
		// namespace.
		defer func() {
			if unix.Setns(home, unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
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
