package fsm

import (
	"strconv"
	"strings"
)

// Action says what the engine did with an input.
type Action uint8

const (
	ActionAccepted Action = iota + 1 // the input was processed and changed the connection
	ActionAnswered                   // the engine replied (ACK, RST, SYN,ACK) and dropped the rest
	ActionDropped                    // the segment was discarded without a reply
	ActionQueued                     // held for later (out-of-order data, data before ESTABLISHED)
	ActionInfo                       // a note on processing that continued
)

var actionNames = [...]string{"", "ACCEPTED", "ANSWERED", "DROPPED", "QUEUED", "INFO"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "UNKNOWN"
}

// Field is one number an explanation refers to, named as in the RFC
// (SEG.SEQ, RCV.NXT, ...).
type Field struct {
	Name  string
	Value uint64
}

const maxFields = 6

// Explanation records why the engine did what it did with an input: which
// step of RFC 9293 §3.10 (or of the RFC named in Section) applied, and the
// numbers involved. It is plain data so graders can match on Code and Fields;
// Text renders it for people. Creating one does not allocate.
type Explanation struct {
	Endpoint EndpointID // 0 when no endpoint matched
	Code     Code
	Action   Action
	Fields   [maxFields]Field
	NFields  uint8
}

// Section is the RFC section the rule comes from, e.g. "RFC 9293 §3.10.7.4".
func (x *Explanation) Section() string { return x.Code.spec().section }

// Field returns the value of the named field.
func (x *Explanation) Field(name string) (uint64, bool) {
	for _, f := range x.Fields[:x.NFields] {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// Text renders the explanation as a sentence with its numbers filled in.
func (x *Explanation) Text() string {
	tmpl := x.Code.spec().text
	if strings.IndexByte(tmpl, '{') < 0 {
		return tmpl // nothing to fill in: no copy
	}
	var b strings.Builder
	b.Grow(len(tmpl) + 16*int(x.NFields)) // one allocation for most sentences
	var num [20]byte
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		name := tmpl[i+1 : i+j]
		if v, ok := x.Field(name); ok {
			b.WriteString(name)
			b.WriteByte('=')
			b.Write(strconv.AppendUint(num[:0], v, 10))
		} else {
			b.WriteString(name)
		}
		tmpl = tmpl[i+j+1:]
	}
	return b.String()
}

func (x *Explanation) String() string {
	return x.Code.String() + " (" + x.Section() + "): " + x.Text()
}
