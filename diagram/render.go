package diagram

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// Layout constants, in SVG user units (pixels). Text is monospace, so its
// width is estimated as 0.6 em per character (DejaVu Sans Mono, Menlo and
// Consolas are all 0.60-0.62 em).
const (
	fontFamily = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
	charEm     = 0.61

	labelSize  = 12.0 // arrow labels
	noteSize   = 11.0 // notes and TCP options under arrows
	stateSize  = 11.0 // state boxes
	headerSize = 13.0 // column addresses
	titleSize  = 15.0
	timeSize   = 11.0

	margin      = 16.0 // around the picture
	minGap      = 240.0
	labelPad    = 36.0 // between a label and the columns it spans
	stateBoxH   = 18.0
	stateBoxPad = 8.0
	headH       = 9.0 // arrowhead length
	headW       = 4.5 // arrowhead half width

	stepArrow = 36.0               // above a row whose arrow is labelled above its line
	stepState = 28.0               // above a row of state boxes
	stepRecv  = 30.0               // above the row where a sloped arrow arrives
	stepBreak = 46.0               // extra room for a pause marker
	extraLine = 13.0               // per extra text line under an arrow
	maxTilt   = 28 * math.Pi / 180 // steeper arrows get level labels

	// A pause between two rows at least this long is drawn as a break in
	// the lifelines.
	breakAfter = time.Second
)

var palette = []string{"#1f5fbf", "#2e7d32", "#7b1fa2", "#00838f", "#ad5a00", "#5d4037"}

const (
	dropColor     = "#c62828"
	answeredColor = "#a64b00"
	heldColor     = "#6a1b9a"
	lifeColor     = "#9e9e9e"
	timeColor     = "#555555"
	faintColor    = "#ececec"
)

type stateStyle struct{ fill, stroke string }

func styleOf(state string) stateStyle {
	switch state {
	case "SYN-SENT", "SYN-RECEIVED":
		return stateStyle{"#e3eefc", "#5b8fd6"}
	case "ESTABLISHED":
		return stateStyle{"#e2f4e1", "#4c9a4a"}
	case "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT":
		return stateStyle{"#fdefd9", "#cf8a2e"}
	case "CLOSED", "LISTEN":
		return stateStyle{"#eeeeee", "#8a8a8a"}
	}
	return stateStyle{"#fff8c4", "#b59f00"}
}

func textWidth(s string, size float64) float64 {
	return float64(len([]rune(s))) * size * charEm
}

// row kinds
const (
	rowSend  = iota // an arrow leaves (and, if horizontal, arrives)
	rowRecv         // a sloped arrow arrives
	rowState        // state boxes
)

type row struct {
	kind   int
	time   time.Duration
	arrow  int   // rowSend, rowRecv: index into arrows
	states []int // rowState: indexes into marks
	y      float64
	pause  bool    // a break precedes this row ...
	pauseY float64 // ... centred here
}

// arrowInfo is an Arrow with its layout.
type arrowInfo struct {
	Arrow
	from, to   int // column indexes
	label      string
	lines      []string // text under the arrow: TCP options, note
	sendRow    int
	recvRow    int // -1: horizontal (or lost)
	color      string
	x1, y1     float64
	x2, y2     float64 // where the line ends (the tip, or the cross)
	labelX     float64
	labelY     float64
	labelAngle float64
}

// What became of a segment, in the order the drawing prefers them when
// more than one is set.
const (
	fateAccepted = iota
	fateLost
	fateDropped
	fateAnswered
	fateHeld
)

var fateClass = [...]string{"accepted", "lost", "dropped", "answered", "held"}

func (a *arrowInfo) fate() int {
	switch {
	case a.Lost:
		return fateLost
	case a.Dropped:
		return fateDropped
	case a.Answered:
		return fateAnswered
	case a.Held:
		return fateHeld
	}
	return fateAccepted
}

type markInfo struct {
	StateMark
	col int
}

// Render writes d as a standalone SVG document (no external fonts, style
// sheets or scripts). It fails on an event with an empty column name or an
// arrow from a column to itself, and on errors writing to w (the document
// goes to w in one Write).
func Render(w io.Writer, d Diagram, opts Options) error {
	l, err := layout(d, opts)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	l.draw(&b)
	_, err = w.Write(b.Bytes())
	return err
}

type layoutState struct {
	d       Diagram
	columns []string
	colX    []float64
	arrows  []*arrowInfo
	marks   []*markInfo
	rows    []row
	width   float64
	height  float64
	topY    float64 // lifelines start
	headerY float64
	timeX   float64 // right edge of the time labels
	timeFmt func(time.Duration) string
	notice  string
}

func layout(d Diagram, opts Options) (*layoutState, error) {
	l := &layoutState{d: d}
	colIndex := map[string]int{}
	addColumn := func(c string) (int, error) {
		if c == "" {
			return 0, errEmptyColumn
		}
		if i, ok := colIndex[c]; ok {
			return i, nil
		}
		colIndex[c] = len(l.columns)
		l.columns = append(l.columns, c)
		return len(l.columns) - 1, nil
	}
	for _, c := range d.Columns {
		if _, err := addColumn(c); err != nil {
			return nil, err
		}
	}
	// Events in order, with their columns resolved.
	type ev struct {
		arrow *arrowInfo
		mark  *markInfo
	}
	var evs []ev
	for i, e := range d.Events {
		switch e := e.(type) {
		case Arrow:
			from, err := addColumn(e.From)
			if err != nil {
				return nil, err
			}
			to, err := addColumn(e.To)
			if err != nil {
				return nil, err
			}
			if from == to {
				return nil, fmt.Errorf("diagram: event %d: arrow from column %q to itself", i, e.From)
			}
			a := &arrowInfo{Arrow: e, from: from, to: to, recvRow: -1}
			l.arrows = append(l.arrows, a)
			evs = append(evs, ev{arrow: a})
		case StateMark:
			col, err := addColumn(e.Column)
			if err != nil {
				return nil, err
			}
			m := &markInfo{StateMark: e, col: col}
			l.marks = append(l.marks, m)
			evs = append(evs, ev{mark: m})
		case nil:
			return nil, fmt.Errorf("diagram: event %d is nil", i)
		default:
			return nil, fmt.Errorf("diagram: event %d has unknown type %T", i, e)
		}
	}

	// Labels. A side's ISN is per connection: the seq of the first SYN
	// its column sends to the other column (a server column may hold many
	// connections).
	type pairKey struct{ from, to int }
	isn := map[pairKey]fsm.Seq{}
	if opts.Relative {
		for _, a := range l.arrows {
			k := pairKey{a.from, a.to}
			if _, ok := isn[k]; !ok && a.Segment != nil && a.Segment.Flags&fsm.FlagSYN != 0 {
				isn[k] = a.Segment.Seq
			}
		}
		l.notice = "seq and ack are relative to each side's initial sequence number"
	}
	absolute := false
	isnOf := func(from, to int) *fsm.Seq {
		if !opts.Relative {
			return nil
		}
		if s, ok := isn[pairKey{from, to}]; ok {
			return &s
		}
		absolute = true
		return nil
	}
	for _, a := range l.arrows {
		a.label = a.Label
		if a.label == "" && a.Segment != nil {
			a.label = segmentLabel(a.Segment, isnOf(a.from, a.to), isnOf(a.to, a.from))
		}
		if opts.TCPOptions && a.Segment != nil {
			if o := tcpOptionsText(a.Segment); o != "" {
				a.lines = append(a.lines, o)
			}
		}
		note := a.Note
		if note == "" {
			switch a.fate() {
			case fateLost:
				note = "lost"
			case fateDropped:
				note = "dropped"
			case fateAnswered:
				note = "answered"
			case fateHeld:
				note = "held (out of order)"
			default:
				if a.Retransmission {
					note = "retransmission"
				}
			}
		}
		if note != "" {
			a.lines = append(a.lines, note)
		}
		a.color = palette[a.from%len(palette)]
		switch a.fate() {
		case fateLost, fateDropped:
			a.color = dropColor
		case fateAnswered:
			a.color = answeredColor
		case fateHeld:
			a.color = heldColor
		}
	}
	if absolute {
		l.notice += " (absolute where that side's SYN is not shown)"
	}

	// Rows: events in order; a sloped arrow's arrival is inserted before
	// the first later event at or after its arrival time.
	type pending struct {
		t time.Duration
		a int
	}
	var waiting []pending
	flush := func(upTo time.Duration, all bool) {
		sort.SliceStable(waiting, func(i, j int) bool { return waiting[i].t < waiting[j].t })
		n := 0
		for _, p := range waiting {
			if !all && p.t > upTo {
				break
			}
			l.arrows[p.a].recvRow = len(l.rows)
			l.rows = append(l.rows, row{kind: rowRecv, time: p.t, arrow: p.a})
			n++
		}
		waiting = waiting[n:]
	}
	ai, mi := 0, 0
	for _, e := range evs {
		if e.arrow != nil {
			a := e.arrow
			flush(a.SendTime, false)
			a.sendRow = len(l.rows)
			l.rows = append(l.rows, row{kind: rowSend, time: a.SendTime, arrow: ai})
			if a.RecvTime > a.SendTime && !a.Lost {
				waiting = append(waiting, pending{a.RecvTime, ai})
			}
			ai++
			continue
		}
		m := e.mark
		flush(m.Time, false)
		// State changes of different columns at one instant share a row.
		if n := len(l.rows); n > 0 && l.rows[n-1].kind == rowState && l.rows[n-1].time == m.Time && !l.rowHasColumn(n-1, m.col) {
			l.rows[n-1].states = append(l.rows[n-1].states, mi)
		} else {
			l.rows = append(l.rows, row{kind: rowState, time: m.Time, states: []int{mi}})
		}
		mi++
	}
	flush(0, true)

	l.placeColumns()
	// Place rows, then labels; where a label still covers another label
	// or a state box, open up the rows around its arrow and try again.
	// Stop when a round is no better than the one before; keep the best.
	extra := make([]float64, len(l.rows)+1)
	best, bestScore := []float64(nil), math.Inf(1)
	for range 12 {
		l.placeRows(extra)
		crowded, score := l.placeArrows()
		if score >= bestScore {
			// No better than the round before: go back to that one.
			l.placeRows(best)
			l.placeArrows()
			break
		}
		best, bestScore = slices.Clone(extra), score
		if len(crowded) == 0 {
			break
		}
		for _, r := range crowded {
			extra[r] += 12
		}
	}
	return l, nil
}

func (l *layoutState) rowHasColumn(r, col int) bool {
	for _, m := range l.rows[r].states {
		if l.marks[m].col == col {
			return true
		}
	}
	return false
}

func stateBoxWidth(s string) float64 { return textWidth(s, stateSize) + 2*stateBoxPad }

// placeColumns sets the x of every column and the picture's width.
func (l *layoutState) placeColumns() {
	l.timeFmt = timeFormatter(l.rows)
	timeW := 0.0
	for i, r := range l.rows {
		timeW = max(timeW, textWidth(l.timeFmt(r.time), timeSize))
		if i > 0 && r.time-l.rows[i-1].time >= breakAfter {
			timeW = max(timeW, textWidth(pauseText(r.time-l.rows[i-1].time), timeSize))
		}
	}
	l.timeX = margin + timeW
	n := len(l.columns)
	// Half of what must fit around each column line.
	half := make([]float64, n)
	for i, c := range l.columns {
		half[i] = textWidth(c, headerSize)/2 + 6
	}
	for _, m := range l.marks {
		half[m.col] = max(half[m.col], stateBoxWidth(m.State)/2+4)
	}
	gap := minGap
	for i := 0; i+1 < n; i++ {
		gap = max(gap, half[i]+half[i+1]+24)
	}
	for _, a := range l.arrows {
		span := float64(abs(a.to - a.from))
		w := textWidth(a.label, labelSize)
		for _, s := range a.lines {
			w = max(w, textWidth(s, noteSize))
		}
		gap = max(gap, (w+2*labelPad)/span)
	}
	l.colX = make([]float64, n)
	x := l.timeX + 18
	if n > 0 {
		x += half[0]
	}
	for i := range l.columns {
		l.colX[i] = x
		x += gap
	}
	right := l.timeX + 18
	if n > 0 {
		right = l.colX[n-1] + half[n-1]
	}
	l.width = math.Ceil(max(right+margin, 2*margin+textWidth(l.d.Title, titleSize), 2*margin+textWidth(l.notice, noteSize)))
}

// placeRows sets the y of every row and the picture's height.
func (l *layoutState) placeRows(extra []float64) {
	y := margin
	if l.d.Title != "" {
		y += titleSize + 10
	}
	l.headerY = y + headerSize
	l.topY = l.headerY + 10
	y = l.topY + 8
	below := 0.0 // text lines hanging under the previous row's arrow
	for i := range l.rows {
		r := &l.rows[i]
		if i > 0 && r.time-l.rows[i-1].time >= breakAfter {
			r.pause = true
			r.pauseY = y + below + stepBreak/2 + 6
			y += stepBreak
		}
		y += extra[i]
		switch r.kind {
		case rowSend:
			y += stepArrow + below
		case rowRecv:
			y += stepRecv + below
		case rowState:
			y += stepState + below*0.8
		}
		below = 0
		if r.kind == rowSend {
			below = float64(len(l.arrows[r.arrow].lines)) * extraLine
		}
		r.y = y
	}
	y += stepState + below + extra[len(l.rows)]
	if l.notice != "" {
		y += 8
	}
	l.height = math.Ceil(y + margin + noteSize)
}

// placeArrows sets the end points of the arrows and places their labels
// along them where they cover no state box, no other label and as few
// other arrows as possible. It returns the send rows of the arrows whose
// labels could not avoid a label or a state box.
func (l *layoutState) placeArrows() (crowded []int, total float64) {
	var solid, lines grid // state boxes and labels; arrow lines
	for _, r := range l.rows {
		if r.kind != rowState {
			continue
		}
		for _, m := range r.states {
			mk := l.marks[m]
			w := stateBoxWidth(mk.State)
			x := l.colX[mk.col]
			solid.add(rect(x-w/2, r.y-stateBoxH/2, x+w/2, r.y+stateBoxH/2))
		}
	}
	for _, a := range l.arrows {
		a.x1, a.y1 = l.colX[a.from], l.rows[a.sendRow].y
		a.x2, a.y2 = l.colX[a.to], a.y1
		if a.recvRow >= 0 {
			a.y2 = l.rows[a.recvRow].y
		}
		if a.Lost {
			a.y2 = a.y1 + 2*stepRecv
		}
		if a.Lost {
			lines.add(nil) // keeps indexes equal to arrow indexes; overlaps nothing
		} else {
			lines.add(poly{{a.x1, a.y1}, {a.x2, a.y2}})
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range l.colX {
		lo, hi = min(lo, x), max(hi, x)
	}
	for i, a := range l.arrows {
		// The label reads left to right along the line (a lost arrow's
		// line as it would have been), the notes under it.
		lx0, ly0, lx1, ly1 := a.x1, a.y1, a.x2, a.y2
		if lx1 < lx0 {
			lx0, ly0, lx1, ly1 = lx1, ly1, lx0, ly0
		}
		angle := math.Atan2(ly1-ly0, lx1-lx0)
		slope := angle
		if math.Abs(angle) > maxTilt {
			angle = 0 // steep: level text reads better, and covers less
		}
		a.labelAngle = angle * 180 / math.Pi
		w := textWidth(a.label, labelSize)
		for _, s := range a.lines {
			w = max(w, textWidth(s, noteSize))
		}
		top, bot := -(labelSize + 5), float64(len(a.lines))*extraLine+3
		if a.label == "" {
			top = -2
		}
		bestScore := math.Inf(1)
		var best poly
		for _, t := range []float64{0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78} {
			cx, cy := lx0+(lx1-lx0)*t, ly0+(ly1-ly0)*t
			if angle != slope { // level text is centred on the line
				cy += (labelSize+5-float64(len(a.lines))*extraLine)/2 - 2
			}
			r := rotatedRect(cx, cy, -w/2, top, w/2, bot, angle)
			score := 0.0
			for _, pt := range r {
				if pt.x < lo-4 || pt.x > hi+4 {
					score += 50 // sticks out past the outer columns
					break
				}
			}
			score += 100 * float64(solid.overlapping(r, -1))
			score += float64(lines.overlapping(r, i))
			if score < bestScore {
				bestScore, best = score, r
				a.labelX, a.labelY = cx, cy
			}
			if score == 0 {
				break
			}
		}
		solid.add(best)
		total += bestScore
		if bestScore >= 100 {
			crowded = append(crowded, a.sendRow)
		}
		if a.Lost { // draw it to a little past halfway
			a.x2, a.y2 = a.x1+(a.x2-a.x1)*0.55, a.y1+(a.y2-a.y1)*0.55
		}
	}
	return crowded, total
}

// grid holds polygons in horizontal bands so that finding the ones that
// may overlap a label looks at its neighbourhood only.
type grid struct {
	polys []poly
	boxes [][4]float64  // bounding boxes: x0, y0, x1, y1
	bands map[int][]int // band -> indexes into polys
	seen  []int         // per poly: the query that last looked at it
	query int
}

const bandHeight = 64.0

func bounds(p poly) [4]float64 {
	b := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, v := range p {
		b[0], b[1], b[2], b[3] = min(b[0], v.x), min(b[1], v.y), max(b[2], v.x), max(b[3], v.y)
	}
	return b
}

func bandsOf(b [4]float64) (lo, hi int) {
	return int(math.Floor(b[1] / bandHeight)), int(math.Floor(b[3] / bandHeight))
}

func (g *grid) add(p poly) {
	if g.bands == nil {
		g.bands = map[int][]int{}
	}
	g.polys = append(g.polys, p)
	g.seen = append(g.seen, 0)
	bb := bounds(p)
	g.boxes = append(g.boxes, bb)
	if len(p) == 0 {
		return
	}
	lo, hi := bandsOf(bb)
	for b := lo; b <= hi; b++ {
		g.bands[b] = append(g.bands[b], len(g.polys)-1)
	}
}

// overlapping counts the polygons overlapping p, skipping index skip.
func (g *grid) overlapping(p poly, skip int) int {
	g.query++
	n := 0
	pb := bounds(p)
	lo, hi := bandsOf(pb)
	for b := lo; b <= hi; b++ {
		for _, i := range g.bands[b] {
			if g.seen[i] == g.query || i == skip {
				continue
			}
			g.seen[i] = g.query
			ob := g.boxes[i]
			if pb[0] >= ob[2] || ob[0] >= pb[2] || pb[1] >= ob[3] || ob[1] >= pb[3] {
				continue
			}
			if p.overlaps(g.polys[i]) {
				n++
			}
		}
	}
	return n
}

// Geometry for label placement: convex polygons (a segment is a polygon of
// two points) tested for overlap with the separating axis theorem.

type pt struct{ x, y float64 }

type poly []pt

func rect(x0, y0, x1, y1 float64) poly { return poly{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}} }

// rotatedRect is the rectangle [x0,x1]×[y0,y1] around (cx, cy), rotated
// by angle about that point.
func rotatedRect(cx, cy, x0, y0, x1, y1, angle float64) poly {
	sin, cos := math.Sincos(angle)
	p := poly{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}
	for i, v := range p {
		p[i] = pt{cx + v.x*cos - v.y*sin, cy + v.x*sin + v.y*cos}
	}
	return p
}

func (a poly) overlaps(b poly) bool {
	for _, p := range []poly{a, b} {
		for i := range p {
			q := p[(i+1)%len(p)]
			nx, ny := -(q.y - p[i].y), q.x-p[i].x // the edge's normal
			amin, amax := project(a, nx, ny)
			bmin, bmax := project(b, nx, ny)
			if amax <= bmin || bmax <= amin {
				return false
			}
			if len(p) == 2 {
				break // a segment has one edge
			}
		}
	}
	return true
}

func project(p poly, nx, ny float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range p {
		d := v.x*nx + v.y*ny
		lo, hi = min(lo, d), max(hi, d)
	}
	return lo, hi
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// timeFormatter prints session times in seconds with as many decimals as
// the times need: 3 when all are whole milliseconds, 6 for microseconds,
// else 9.
func timeFormatter(rows []row) func(time.Duration) string {
	decimals := 3
	for _, r := range rows {
		switch {
		case r.time%time.Microsecond != 0:
			decimals = 9
		case r.time%time.Millisecond != 0:
			decimals = max(decimals, 6)
		}
	}
	return func(d time.Duration) string {
		sign := ""
		if d < 0 {
			sign, d = "-", -d
		}
		frac := int64(d % time.Second)
		for range 9 - decimals {
			frac /= 10
		}
		return fmt.Sprintf("%s%d.%0*d s", sign, int64(d/time.Second), decimals, frac)
	}
}

// SVG output.

func num(v float64) string {
	s := strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	if s == "-0" {
		s = "0"
	}
	return s
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}

func (l *layoutState) draw(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w, h := num(l.width), num(l.height)
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="%s" font-size="%s">`+"\n",
		w, h, w, h, fontFamily, num(labelSize))
	title := l.d.Title
	if title == "" {
		title = "TCP ladder diagram"
	}
	p("<title>%s</title>\n", esc(title))
	p(`<rect x="0" y="0" width="%s" height="%s" fill="#ffffff"/>`+"\n", w, h)
	if l.d.Title != "" {
		p(`<text x="%s" y="%s" font-size="%s" font-weight="bold" fill="#222222">%s</text>`+"\n",
			num(margin), num(margin+titleSize), num(titleSize), esc(l.d.Title))
	}

	// Faint guides from each row's time to the last column.
	last := l.timeX + 18
	if len(l.colX) > 0 {
		last = l.colX[len(l.colX)-1]
	}
	p(`<g stroke="%s" stroke-width="1">`+"\n", faintColor)
	for _, r := range l.rows {
		p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(l.timeX+6), num(r.y), num(last), num(r.y))
	}
	p("</g>\n")

	// Column headers and lifelines, broken at pauses.
	bottom := l.height - margin - noteSize - 6
	if l.notice != "" {
		bottom -= 8
	}
	p(`<g font-size="%s" font-weight="bold" text-anchor="middle" fill="#222222">`+"\n", num(headerSize))
	for i, c := range l.columns {
		p(`<text x="%s" y="%s">%s</text>`+"\n", num(l.colX[i]), num(l.headerY), esc(c))
	}
	p("</g>\n")
	p(`<g stroke="%s" stroke-width="2">`+"\n", lifeColor)
	for _, x := range l.colX {
		y := l.topY
		for _, r := range l.rows {
			if !r.pause {
				continue
			}
			top, bot := r.pauseY-14, r.pauseY+14
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(x), num(y), num(x), num(top))
			p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke-dasharray="2 4"/>`+"\n", num(x), num(top), num(x), num(bot))
			// Two short slashes: the line is cut.
			for _, off := range []float64{-3, 3} {
				my := r.pauseY + off
				p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke-width="1.5"/>`+"\n", num(x-7), num(my+3), num(x+7), num(my-3))
			}
			y = bot
		}
		p(`<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(x), num(y), num(x), num(bottom))
	}
	p("</g>\n")

	// Times at the left; a repeated time is printed lighter.
	p(`<g font-size="%s" text-anchor="end">`+"\n", num(timeSize))
	for i, r := range l.rows {
		fill := timeColor
		if i > 0 && l.rows[i-1].time == r.time {
			fill = "#b0b0b0"
		}
		p(`<text x="%s" y="%s" fill="%s">%s</text>`+"\n", num(l.timeX), num(r.y+4), fill, esc(l.timeFmt(r.time)))
		if r.pause {
			p(`<text x="%s" y="%s" fill="%s" font-style="italic">%s</text>`+"\n",
				num(l.timeX), num(r.pauseY+4), timeColor, esc(pauseText(r.time-l.rows[i-1].time)))
		}
	}
	p("</g>\n")

	// Arrows.
	for _, a := range l.arrows {
		l.drawArrow(b, a)
	}

	// State boxes, on top of the lifelines.
	for _, r := range l.rows {
		if r.kind != rowState {
			continue
		}
		for _, m := range r.states {
			mk := l.marks[m]
			st := styleOf(mk.State)
			bw := stateBoxWidth(mk.State)
			x := l.colX[mk.col]
			p(`<g class="state"%s>`+"\n", refAttr(mk.Ref))
			p(`<rect x="%s" y="%s" width="%s" height="%s" rx="4" fill="%s" stroke="%s" stroke-width="1.2"/>`+"\n",
				num(x-bw/2), num(r.y-stateBoxH/2), num(bw), num(stateBoxH), st.fill, st.stroke)
			p(`<text x="%s" y="%s" font-size="%s" font-weight="bold" text-anchor="middle" fill="#222222">%s</text>`+"\n",
				num(x), num(r.y+stateSize*0.36), num(stateSize), esc(mk.State))
			p("</g>\n")
		}
	}

	// Footer.
	foot := "time flows down; rows follow the order of events, not a time scale"
	if l.notice != "" {
		p(`<text x="%s" y="%s" font-size="%s" fill="%s">%s</text>`+"\n",
			num(margin), num(l.height-margin-noteSize-4), num(noteSize), timeColor, esc(l.notice))
	}
	p(`<text x="%s" y="%s" font-size="%s" fill="%s">%s</text>`+"\n",
		num(margin), num(l.height-margin+2), num(noteSize), timeColor, esc(foot))
	p("</svg>\n")
}

func (l *layoutState) drawArrow(b *bytes.Buffer, a *arrowInfo) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	fate := a.fate()
	dash := ""
	switch fate {
	case fateDropped, fateLost:
		dash = ` stroke-dasharray="7 4"`
	case fateAnswered:
		dash = ` stroke-dasharray="4 3"`
	case fateHeld:
		dash = ` stroke-dasharray="1.5 3" stroke-linecap="round"`
	}
	width := "1.6"
	if a.Retransmission {
		width = "3"
	}
	dx, dy := a.x2-a.x1, a.y2-a.y1
	n := math.Hypot(dx, dy)
	ux, uy := dx/n, dy/n
	// The line stops at the base of the head (or at the cross or bar).
	end := headH
	if fate == fateDropped || fate == fateLost || fate == fateAnswered {
		end = 0
	}
	class := "seg " + fateClass[fate]
	if a.Retransmission {
		class += " retransmission"
	}
	p(`<g class="%s"%s>`+"\n", class, refAttr(a.Ref))
	title := a.Title
	if title == "" {
		title = strings.Join(append([]string{a.label}, a.lines...), "; ")
	}
	p("<title>%s</title>\n", esc(title))
	p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>`+"\n",
		num(a.x1), num(a.y1), num(a.x2-ux*end), num(a.y2-uy*end), a.color, width, dash)
	p(`<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", num(a.x1), num(a.y1), a.color)
	bx, by := a.x2-ux*headH, a.y2-uy*headH
	switch fate {
	case fateDropped, fateLost:
		const c = 5.0
		p(`<path d="M%s %sL%s %sM%s %sL%s %s" stroke="%s" stroke-width="2.2"/>`+"\n",
			num(a.x2-c), num(a.y2-c), num(a.x2+c), num(a.y2+c), num(a.x2-c), num(a.y2+c), num(a.x2+c), num(a.y2-c), a.color)
	case fateAnswered: // a bar across the end: it got no further
		const c = 6.0
		p(`<path d="M%s %sL%s %s" stroke="%s" stroke-width="2.4"/>`+"\n",
			num(a.x2-uy*c), num(a.y2+ux*c), num(a.x2+uy*c), num(a.y2-ux*c), a.color)
	case fateHeld: // a hollow head: arrived, not yet used
		p(`<polygon points="%s,%s %s,%s %s,%s" fill="#ffffff" stroke="%s" stroke-width="1.4"/>`+"\n",
			num(a.x2), num(a.y2), num(bx-uy*headW), num(by+ux*headW), num(bx+uy*headW), num(by-ux*headW), a.color)
	default:
		p(`<polygon points="%s,%s %s,%s %s,%s" fill="%s"/>`+"\n",
			num(a.x2), num(a.y2), num(bx-uy*headW), num(by+ux*headW), num(bx+uy*headW), num(by-ux*headW), a.color)
	}
	rot := ""
	if math.Abs(a.labelAngle) >= 0.05 {
		rot = fmt.Sprintf(` transform="rotate(%s %s %s)"`, num(a.labelAngle), num(a.labelX), num(a.labelY))
	}
	p(`<g text-anchor="middle" stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"%s>`+"\n", rot)
	if a.label != "" {
		p(`<text x="%s" y="%s" font-size="%s" fill="%s">%s</text>`+"\n",
			num(a.labelX), num(a.labelY-5), num(labelSize), a.color, esc(a.label))
	}
	for i, s := range a.lines {
		style := ""
		if i == len(a.lines)-1 && (a.Note != "" || fate != fateAccepted || a.Retransmission) {
			style = ` font-style="italic"`
		}
		p(`<text x="%s" y="%s" font-size="%s" fill="%s"%s>%s</text>`+"\n",
			num(a.labelX), num(a.labelY+noteSize+2+float64(i)*extraLine), num(noteSize), a.color, style, esc(s))
	}
	p("</g>\n</g>\n")
}

// refAttr is the data-ref attribute of an element, or nothing.
func refAttr(ref string) string {
	if ref == "" {
		return ""
	}
	return ` data-ref="` + esc(ref) + `"`
}

// pauseText labels a pause: "+60 s", "+1.5 s", "+59.99 s".
func pauseText(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return "+" + s + " s"
}
