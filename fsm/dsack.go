package fsm

// D-SACK (RFC 2883): when SACK is on and a segment brings data the
// receiver already holds, the next ACK's first SACK block reports that
// duplicate range, so the sender learns its retransmission was spurious
// (or the network duplicated the segment). Which range:
//
//   - data below RCV.NXT: the part of the segment below RCV.NXT
//     (RFC 2883 §4.1.1);
//   - data above RCV.NXT already held out of order: the part of the
//     segment that overlaps it; the block holding it then comes second,
//     being the most recently changed (§4.1.2, RFC 2018 §4).
//
// Only the first duplicate range of a segment is reported (§4: one D-SACK
// block per ACK), and only in the ACK that answers it. RFC 5681 §4.2 asks
// for that ACK at once: the duplicate tells of loss or reordering.

// noteDuplicate records [start, end) as the duplicate the next ACK
// reports, unless this segment already recorded one.
func (c *conn) noteDuplicate(start, end Seq) {
	if !c.sackOK || c.dsackSet || !start.LessThan(end) {
		return
	}
	c.dsack, c.dsackSet = SACKBlock{Start: start, End: end}, true
}

// noteHeldDuplicate records the first overlap of [seq, end) with the data
// held for reassembly (before the segment is added to it).
func (c *conn) noteHeldDuplicate(seq, end Seq) {
	if !c.sackOK || c.dsackSet {
		return
	}
	for i := range c.ooo.segs {
		s := &c.ooo.segs[i]
		se := s.seq.Add(Size(len(s.data)))
		if s.seq.LessThan(end) && seq.LessThan(se) {
			c.noteDuplicate(MaxSeq(seq, s.seq), MinSeq(end, se))
			return
		}
	}
}

// sackOption fills the SACK blocks of an ACK: the D-SACK block first, if
// one is due, then the held ranges, most recently changed first, within
// limit blocks (3 beside timestamps, RFC 2018 §3).
func (c *conn) sackOption(o *Options, limit int) {
	n := 0
	if c.dsackSet {
		o.SACK[0] = c.dsack
		c.dsackSet = false
		n = 1
	}
	if len(c.ooo.segs) > 0 && n < limit {
		var held [MaxSACKBlocks]SACKBlock
		k := c.ooo.sackBlocks(&held, limit-n)
		n += copy(o.SACK[n:limit], held[:k])
	}
	o.NumSACK = uint8(n)
}
