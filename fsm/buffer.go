package fsm

import "sort"

// ring is a byte FIFO with a fixed upper bound, allocated lazily so idle
// connections hold no buffer memory.
type ring struct {
	buf  []byte
	head int // index of the first byte
	n    int // bytes held
}

func (r *ring) Len() int { return r.n }

// grow makes room for at least want bytes, never beyond limit. An empty
// ring takes a spare buffer first, if there is one.
func (r *ring) grow(want, limit int, spare *spareBufs) {
	c := len(r.buf)
	if c >= want || c >= limit {
		return
	}
	if c == 0 {
		if b := spare.get(); b != nil {
			r.buf, r.head = b, 0
			if c = len(b); c >= want || c >= limit {
				return
			}
		}
	}
	nc := c * 2
	if nc < 4096 {
		nc = 4096
	}
	for nc < want {
		nc *= 2
	}
	if nc > limit {
		nc = limit
	}
	nb := make([]byte, nc)
	r.peek(0, nb[:r.n])
	r.buf, r.head = nb, 0
}

// write appends as much of p as fits under limit and returns the count.
func (r *ring) write(p []byte, limit int, spare *spareBufs) int {
	if room := limit - r.n; len(p) > room {
		p = p[:max(room, 0)]
	}
	if len(p) == 0 {
		return 0
	}
	r.grow(r.n+len(p), limit, spare)
	if room := len(r.buf) - r.n; len(p) > room {
		p = p[:room]
	}
	// head < len(r.buf) and n <= len(r.buf): a subtraction, not a division.
	tail := r.head + r.n
	if tail >= len(r.buf) {
		tail -= len(r.buf)
	}
	k := copy(r.buf[tail:], p)
	copy(r.buf, p[k:])
	r.n += len(p)
	return len(p)
}

// peek copies the bytes at offsets [off, off+len(p)) into p without
// consuming them and returns the count.
func (r *ring) peek(off int, p []byte) int {
	if off >= r.n {
		return 0
	}
	if len(p) > r.n-off {
		p = p[:r.n-off]
	}
	start := (r.head + off) % max(len(r.buf), 1)
	k := copy(p, r.buf[start:])
	copy(p[k:], r.buf)
	return len(p)
}

// read consumes up to len(p) bytes into p.
func (r *ring) read(p []byte) int {
	k := r.peek(0, p)
	r.discard(k)
	return k
}

// discard drops the first n bytes.
func (r *ring) discard(n int) {
	if n > r.n {
		n = r.n
	}
	r.n -= n
	if r.n == 0 {
		r.head = 0
		return
	}
	r.head = (r.head + n) % len(r.buf)
}

// release gives the buffer of an empty ring to spare.
func (r *ring) release(spare *spareBufs) {
	if r.n == 0 {
		r.drop(spare)
	}
}

// compact is for a ring that will take no more bytes: a CLOSED
// connection's unread data, which stays readable (as in Linux and
// FreeBSD) until RetainClosed forgets the endpoint. It moves the bytes
// into a buffer of their own size and gives the ring's to spare, so data
// an application may never read holds no room it will not use, and the
// next connection takes a buffer of the size this one grew to instead of
// growing one again from 4 KiB (allocating, zeroing and copying at each
// doubling). The copy moves no more bytes than that growth would have.
func (r *ring) compact(spare *spareBufs) {
	switch {
	case r.n == 0:
		r.drop(spare)
	case len(r.buf) > r.n:
		nb := make([]byte, r.n)
		r.peek(0, nb)
		r.drop(spare)
		r.buf, r.n = nb, len(nb)
	}
}

// drop empties the ring and gives its buffer to spare.
func (r *ring) drop(spare *spareBufs) {
	spare.put(r.buf)
	*r = ring{}
}

// spareBufs keeps the buffers of rings that emptied for the next ring that
// needs one, so a connection that keeps draining its buffers does not
// allocate them again while an idle connection still holds none. It keeps
// at most maxSpareBytes; the engine has one for receive buffers and one for
// send buffers, whose sizes differ.
type spareBufs struct {
	bufs  [][]byte
	bytes int
}

const maxSpareBytes = 1 << 20

func (s *spareBufs) put(b []byte) {
	if len(b) == 0 || s.bytes+len(b) > maxSpareBytes {
		return
	}
	s.bufs = append(s.bufs, b)
	s.bytes += len(b)
}

// get returns the most recently put buffer, or nil.
func (s *spareBufs) get() []byte {
	n := len(s.bufs)
	if n == 0 {
		return nil
	}
	b := s.bufs[n-1]
	s.bufs[n-1] = nil
	s.bufs = s.bufs[:n-1]
	s.bytes -= len(b)
	return b
}

// oooSeg is a segment held for reassembly: text beyond RCV.NXT, and
// possibly a FIN after it.
type oooSeg struct {
	seq   Seq
	data  []byte
	fin   bool
	stamp uint32 // arrival order, for SACK block order
}

// dataEnd is the sequence number after the island's text.
func (s *oooSeg) dataEnd() Seq { return s.seq.Add(Size(len(s.data))) }

func (s *oooSeg) end() Seq {
	e := s.seq.Add(Size(len(s.data)))
	if s.fin {
		e++
	}
	return e
}

// reassembly holds out-of-order data as disjoint, non-adjacent islands
// sorted by sequence number: overlapping or touching arrivals are merged,
// so the bytes held never exceed the window that was offered (every byte
// arrives already trimmed to it, RFC 9293 §3.10.7.4) and a peer with many
// segments in flight after one hole costs one island, not one entry per
// segment. Only the number of islands is bounded (insert's maxIslands),
// because each costs memory beyond its bytes.
type reassembly struct {
	segs  []oooSeg
	bytes int
	clock uint32 // stamps arrivals
	// sackFin: the SACK blocks cover a held FIN's sequence number
	// (sack_fin, set with the connection).
	sackFin bool
}

// oooResult is what insert did with a segment.
type oooResult uint8

const (
	oooQueued    oooResult = iota // new bytes (or the FIN) are held
	oooDuplicate                  // everything in it is already held
	oooFull                       // it would start a new island beyond maxIslands
)

// insert holds data at seq (with fin if set), keeping only the bytes not
// already held. It returns what it did and how many bytes were new.
func (q *reassembly) insert(seq Seq, data []byte, fin bool, maxIslands int) (oooResult, int) {
	end := seq.Add(Size(len(data)))
	// i: the first island that ends at or after seq (touches or overlaps
	// from the left); j: the first island after i that starts beyond end.
	i := sort.Search(len(q.segs), func(k int) bool { return q.segs[k].dataEnd().GreaterEq(seq) })
	j := i
	for j < len(q.segs) && q.segs[j].seq.LessEq(end) {
		j++
	}
	q.clock++
	if i == j {
		if len(q.segs) >= maxIslands {
			return oooFull, 0
		}
		q.segs = append(q.segs, oooSeg{})
		copy(q.segs[i+1:], q.segs[i:])
		q.segs[i] = oooSeg{seq: seq, data: append([]byte(nil), data...), fin: fin, stamp: q.clock}
		q.bytes += len(data)
		return oooQueued, len(data)
	}
	lo, hi := MinSeq(seq, q.segs[i].seq), MaxSeq(end, q.segs[j-1].dataEnd())
	old := 0
	for _, s := range q.segs[i:j] {
		old += len(s.data)
	}
	added := int(hi.Sub(lo)) - old
	last := &q.segs[j-1]
	finNew := fin && end == hi && !(last.fin && last.dataEnd() == hi)
	if added == 0 && !finNew {
		q.segs[i].stamp = q.clock // it still triggers the next ACK's first SACK block
		return oooDuplicate, 0
	}
	keepFin := (fin && end == hi) || (last.fin && last.dataEnd() == hi)
	first := &q.segs[i]
	if j == i+1 && first.seq.LessEq(seq) {
		// The common case after a hole: the segment extends one island at
		// its right end; append, amortised.
		first.data = append(first.data, data[int(first.dataEnd().Sub(seq)):]...)
	} else {
		buf := make([]byte, int(hi.Sub(lo)))
		copy(buf[int(seq.Sub(lo)):], data)
		for _, s := range q.segs[i:j] {
			copy(buf[int(s.seq.Sub(lo)):], s.data)
		}
		*first = oooSeg{seq: lo, data: buf}
		n := len(q.segs)
		copy(q.segs[i+1:], q.segs[j:])
		k := n - (j - i - 1)
		clear(q.segs[k:n]) // release the buffers of the merged islands
		q.segs = q.segs[:k]
		first = &q.segs[i]
	}
	first.fin, first.stamp = keepFin, q.clock
	q.bytes += added
	return oooQueued, added
}

// pop removes and returns the first segment if it starts at or before next.
func (q *reassembly) pop(next Seq) (oooSeg, bool) {
	if len(q.segs) == 0 || q.segs[0].seq.GreaterThan(next) {
		return oooSeg{}, false
	}
	s := q.segs[0]
	q.segs[0] = oooSeg{}
	q.segs = q.segs[1:]
	if len(q.segs) == 0 {
		q.segs = nil
	}
	q.bytes -= len(s.data)
	return s, true
}

// sackBlocks fills b with up to limit of the held ranges, merged, most
// recently updated first: RFC 2018 §4 says the first block MUST contain
// the segment that triggered the ACK and the rest SHOULD follow by recency.
// It does not allocate: each pass over the queue picks the next block.
func (q *reassembly) sackBlocks(b *[MaxSACKBlocks]SACKBlock, limit int) int {
	n := 0
	for n < limit {
		var best SACKBlock
		var bestStamp uint32
		found := false
		q.blocks(func(blk SACKBlock, stamp uint32) {
			for _, chosen := range b[:n] {
				if chosen.Start == blk.Start {
					return
				}
			}
			if !found || stamp > bestStamp {
				best, bestStamp, found = blk, stamp, true
			}
		})
		if !found {
			break
		}
		b[n] = best
		n++
	}
	return n
}

// blocks calls fn for each merged range of held data with its latest stamp.
func (q *reassembly) blocks(fn func(SACKBlock, uint32)) {
	var cur SACKBlock
	var stamp uint32
	open := false
	for i := range q.segs {
		s := &q.segs[i]
		e, ok := q.sackEnd(s)
		if open && s.seq.LessEq(cur.End) {
			cur.End = MaxSeq(cur.End, e)
			stamp = max(stamp, s.stamp)
			continue
		}
		if open {
			fn(cur, stamp)
		}
		if !ok {
			open = false
			continue
		}
		cur, stamp, open = SACKBlock{s.seq, e}, s.stamp, true
	}
	if open {
		fn(cur, stamp)
	}
}

// sackEnd is where a SACK block holding s ends: after its FIN under
// sack_fin, else after its text; ok is false for an island with nothing
// to report (a FIN alone with sack_fin=0).
func (q *reassembly) sackEnd(s *oooSeg) (end Seq, ok bool) {
	if q.sackFin {
		return s.end(), true
	}
	return s.dataEnd(), len(s.data) > 0
}

// numBlocks is the number of merged ranges blocks reports.
func (q *reassembly) numBlocks() int {
	n := 0
	q.blocks(func(SACKBlock, uint32) { n++ })
	return n
}

func (q *reassembly) clear() { q.segs, q.bytes = nil, 0 }
