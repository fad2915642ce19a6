package script

import (
	"fmt"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/script/target"
)

// outcome is what a system call did.
type outcome struct {
	ret    int64
	errno  string
	block  bool   // the call would block: the target keeps it in progress
	skip   string // the call cannot be honoured: skipped
	fail   string // a check other than the return value failed
	detail string // extra detail of what happened
}

func errOut(errno string) outcome { return outcome{ret: -1, errno: errno} }

// blocked is a blocking call in progress ("start...end" time).
type blocked struct {
	idx        int // its LineResult
	line       int
	sc         *Syscall
	call       *target.Call
	start, end time.Duration
}

// syscall runs a system call line.
func (r *runner) syscall(idx int, ev *Event) {
	sc := ev.Syscall
	r.cur.Expected = sc.result()
	read := callArgs[sc.Name]
	if read == nil {
		r.skipLine(fmt.Sprintf("skipped: system call %s is not supported by tcpstated", sc.Name))
		return
	}
	mark := len(r.cur.Engine)
	c := &target.Call{Name: sc.Name, Index: idx}
	out, answered := read(r, sc, c)
	if !answered {
		out = r.result(sc, c, r.t.Call(c))
	}
	r.drain()
	if out.skip != "" {
		r.skipLine(out.skip)
		return
	}
	blocking := ev.Time.Kind == TimeBlocking
	if out.block {
		if !blocking {
			r.cur.Actual = "would block"
			r.failf("%s would block: nothing has completed it at %s, and the runner advances only by script time; "+
				"write it as START...END %s(...) to let it block until END", sc.Name, formatSeconds(r.now()), sc.Name)
			return
		}
		if r.pending != nil {
			r.failf("another blocking call (line %d) has not returned yet", r.pending.line)
			return
		}
		end := r.resolveEnd(ev.Time)
		r.pending = &blocked{idx: len(r.rep.Lines) - 1, line: ev.Pos.Line, sc: sc, call: c, start: r.last, end: end}
		r.cur.Actual = "blocked"
		return
	}
	if blocking {
		if end := r.resolveEnd(ev.Time); end-r.now() > r.h.tolerance {
			r.judge(r.cur, sc, out)
			r.failf("%s returned at once at %s; the script expects it to block until %s", sc.Name, formatSeconds(r.now()), formatSeconds(end))
			return
		}
	}
	r.judge(r.cur, sc, out)
	if r.cur.Status == StatusFail && len(r.cur.Engine) > mark {
		r.cur.Reason += " (the engine: " + strings.Join(r.cur.Engine[mark:], "; ") + ")"
	}
}

// resolveEnd is the end of a blocking time: absolute, or relative to the start.
func (r *runner) resolveEnd(t Time) time.Duration {
	if t.Start.Rel || t.End.Rel {
		return r.last + t.End.D
	}
	return t.End.D
}

func (r *runner) skipLine(reason string) {
	r.cur.Status, r.cur.Reason = StatusSkip, reason
	r.rep.Skipped++
}

// judge compares a call's outcome with the script's "= RET [ERRNO]".
func (r *runner) judge(lr *LineResult, sc *Syscall, out outcome) {
	lr.Actual = fmt.Sprintf("= %d", out.ret)
	if out.errno != "" {
		lr.Actual += " " + out.errno
	}
	if out.detail != "" {
		lr.Actual += " (" + out.detail + ")"
	}
	fail := func(msg string) {
		lr.Status = StatusFail
		if lr.Reason != "" {
			lr.Reason += "; "
		}
		lr.Reason += msg
	}
	if out.fail != "" {
		fail(out.fail)
	}
	if sc.Ret.Kind == ExprEllipsis {
		return
	}
	want, ok := evalInt(sc.Ret)
	if !ok {
		fail(fmt.Sprintf("cannot evaluate the expected result %s", sc.Ret))
		return
	}
	if want != out.ret {
		msg := fmt.Sprintf("%s returned %d, expected %d", sc.Name, out.ret, want)
		if out.errno != "" {
			msg = fmt.Sprintf("%s returned %d %s, expected %d", sc.Name, out.ret, out.errno, want)
		}
		fail(msg)
		return
	}
	if sc.Errno != "" && !sameErrno(sc.Errno, out.errno) {
		got := out.errno
		if got == "" {
			got = "no errno"
		}
		fail(fmt.Sprintf("%s errno: expected %s, got %s", sc.Name, sc.Errno, got))
	}
}

// sameErrno compares errno names by value (EAGAIN is EWOULDBLOCK).
func sameErrno(a, b string) bool {
	va, oka := symbols[a]
	vb, okb := symbols[b]
	if oka && okb {
		return va == vb
	}
	return a == b
}

// checkPending completes a blocking call if it can, and fails it if the
// script has moved past its end time without it returning.
func (r *runner) checkPending(next time.Duration) {
	b := r.pending
	if b == nil {
		return
	}
	lr := &r.rep.Lines[b.idx]
	tol, late := r.h.tolerance, r.blockLate(b)
	until := r.t.Now()
	if next > b.end+tol+late {
		until = r.base + b.end + tol + late // its last chance
	}
	res, at, done := r.t.Pending(until)
	at -= r.base
	var out outcome
	if done {
		out = r.result(b.sc, b.call, res)
	}
	r.drain()
	if done {
		r.pending = nil
		r.judge(lr, b.sc, out)
		lr.Actual += " at " + formatSeconds(at)
		if at < b.end-tol || at > b.end+tol+late {
			lr.Status = StatusFail
			if lr.Reason != "" {
				lr.Reason += "; "
			}
			lr.Reason += fmt.Sprintf("%s returned at %s, expected at %s (tolerance %s)", b.sc.Name, formatSeconds(at), formatSeconds(b.end), tol)
		}
	} else if next > b.end+tol+late {
		r.pending = nil
		lr.Status, lr.Actual = StatusFail, "still blocked at "+formatSeconds(r.now())
		lr.Reason = fmt.Sprintf("%s did not return by %s%s", b.sc.Name, formatSeconds(b.end), r.lastInbound())
	}
	if lr.Status == StatusFail {
		r.fail(lr.Line)
		if r.cur != lr && r.cur.Status == StatusPass {
			r.cur.Status, r.cur.Reason = StatusSkip, fmt.Sprintf("not run: line %d failed", lr.Line)
			r.rep.NotRun++
		}
	}
}
