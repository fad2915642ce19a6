package fsm

import "time"

// timerHeap orders connections by their earliest armed timer (ties by ID,
// so firing order is deterministic).
type timerHeap []*conn

func (h timerHeap) less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].id < h[j].id
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// schedule recomputes c's earliest deadline and its place in the heap.
func (e *Engine) schedule(c *conn) {
	d := time.Duration(0)
	for _, t := range [...]time.Duration{c.rtxAt, c.persistAt, c.delackAt, c.timeWaitAt, c.keepAt, c.lossAt} {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	c.deadline = d
	h := &e.timers
	switch {
	case d == 0 && c.heapIdx >= 0:
		i, last := c.heapIdx, len(*h)-1
		h.swap(i, last)
		(*h)[last] = nil
		*h = (*h)[:last]
		c.heapIdx = -1
		if i < last {
			h.down(i)
			h.up(i)
		}
	case d != 0 && c.heapIdx < 0:
		c.heapIdx = len(*h)
		*h = append(*h, c)
		h.up(c.heapIdx)
	case d != 0:
		h.down(c.heapIdx)
		h.up(c.heapIdx)
	}
}

// deadlineAfter returns now+d, never 0 (0 means "not armed").
func (e *Engine) deadlineAfter(d time.Duration) time.Duration {
	t := e.now + d
	if t <= 0 {
		t = 1
	}
	return t
}

// armFinWait2 starts the FIN-WAIT-2 timeout of a connection the
// application has closed (Config.FinWait2Timeout). It shares the TIME-WAIT
// timer slot: a connection is never in both states.
func (e *Engine) armFinWait2(c *conn) {
	if c.state == FinWait2 && c.userClosed && c.timeWaitAt == 0 {
		c.timeWaitAt = e.deadlineAfter(e.cfg.FinWait2Timeout)
		e.schedule(c)
	}
}

func (e *Engine) armRtx(c *conn) {
	c.rtxAt = e.deadlineAfter(c.rto)
	e.schedule(c)
}

func (e *Engine) stopRtx(c *conn) {
	if c.rtxAt != 0 {
		c.rtxAt = 0
		e.schedule(c)
	}
}

// fireTimers runs every timer of c that is due now.
func (e *Engine) fireTimers(c *conn) {
	now := e.now
	if c.timeWaitAt != 0 && c.timeWaitAt <= now && c.state == FinWait2 {
		c.timeWaitAt = 0
		e.explain(c.id, CodeFinWait2Timeout, ActionAccepted, Field{"TIMEOUT.MS", uint64(e.cfg.FinWait2Timeout / time.Millisecond)})
		e.toClosed(c, CodeFinWait2Timeout, nil)
		return
	}
	if c.timeWaitAt != 0 && c.timeWaitAt <= now {
		c.timeWaitAt = 0
		e.explain(c.id, CodeTimeWaitExpired, ActionAccepted, Field{"TIMEOUT.MS", uint64(2 * e.cfg.MSL / time.Millisecond)})
		e.toClosed(c, CodeTimeWaitExpired, nil)
		return
	}
	if c.rtxAt != 0 && c.rtxAt <= now {
		c.rtxAt = 0
		e.schedule(c)
		e.retransmitTimeout(c)
		if c.state == Closed {
			return
		}
	}
	if c.lossAt != 0 && c.lossAt <= now {
		c.lossAt = 0
		e.schedule(c)
		e.lossTimeout(c)
		if c.state == Closed {
			return
		}
	}
	if c.persistAt != 0 && c.persistAt <= now {
		c.persistAt = 0
		e.schedule(c)
		e.persistTimeout(c)
	}
	if c.delackAt != 0 && c.delackAt <= now {
		c.delackAt = 0
		e.schedule(c)
		if c.ackPending {
			e.explain(c.id, CodeDelayedAckSent, ActionAccepted, Field{"RCV.NXT", uint64(c.rcvNxt)})
			e.sendAck(c)
		}
	}
	if c.keepAt != 0 && c.keepAt <= now && c.state != Closed {
		e.keepTimeout(c)
	}
}
