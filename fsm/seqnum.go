package fsm

// Seq is a TCP sequence number. All arithmetic is modulo 2^32 (RFC 9293
// §3.4): comparisons are only meaningful between numbers less than 2^31
// apart, which the window sizes TCP allows guarantee.
type Seq uint32

// Size is a distance in sequence space (a length or a window).
type Size uint32

// Add returns s+n modulo 2^32.
func (s Seq) Add(n Size) Seq { return s + Seq(n) }

// Sub returns the distance from o to s (s-o modulo 2^32).
func (s Seq) Sub(o Seq) Size { return Size(s - o) }

// LessThan reports s < o in sequence space.
func (s Seq) LessThan(o Seq) bool { return int32(s-o) < 0 }

// LessEq reports s <= o in sequence space.
func (s Seq) LessEq(o Seq) bool { return int32(s-o) <= 0 }

// GreaterThan reports s > o in sequence space.
func (s Seq) GreaterThan(o Seq) bool { return int32(s-o) > 0 }

// GreaterEq reports s >= o in sequence space.
func (s Seq) GreaterEq(o Seq) bool { return int32(s-o) >= 0 }

// InRange reports start <= s < end in sequence space.
func (s Seq) InRange(start, end Seq) bool { return s-start < end-start }

// InWindow reports start <= s < start+size in sequence space.
func (s Seq) InWindow(start Seq, size Size) bool { return s.InRange(start, start.Add(size)) }

// MaxSeq returns the later of a and b in sequence space.
func MaxSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return b
	}
	return a
}

// MinSeq returns the earlier of a and b in sequence space.
func MinSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return a
	}
	return b
}
