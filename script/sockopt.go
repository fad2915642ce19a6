package script

import (
	"fmt"
	"strings"

	"github.com/tcpstated/tcpstated/script/target"
)

// sockoptResult compares the value getsockopt returned with the script's.
// SO_RCVBUF and SO_SNDBUF are judged in strict mode only.
func (r *runner) sockoptResult(c *target.Call, want *Expr, res target.Result) outcome {
	switch {
	case res.Info != nil:
		return r.tcpInfo(res.Info, want)
	case res.Value == nil:
		return outcome{detail: res.Detail}
	}
	name, got := c.Opt, res.Value.Int
	gotText := res.Value.Text
	if gotText == "" {
		gotText = fmt.Sprint(got)
	}
	judged := r.strict || (name != "SO_RCVBUF" && name != "SO_SNDBUF")
	if want.Kind == ExprEllipsis {
		return outcome{detail: name + " " + gotText}
	}
	w, ok := evalInt(want)
	if !ok {
		return outcome{fail: fmt.Sprintf("cannot read the expected %s value %s", name, want)}
	}
	if w == got {
		return outcome{detail: name + " " + gotText}
	}
	msg := fmt.Sprintf("%s: expected %s, got %s", name, want, gotText)
	if !judged {
		return outcome{detail: "not judged: " + msg}
	}
	return outcome{fail: msg, detail: name + " " + gotText}
}

// tcpInfo compares a TCP_INFO struct literal with what the target shows;
// fields it does not show are noted as not judged.
func (r *runner) tcpInfo(in *target.TCPInfo, want *Expr) outcome {
	var fails, notes []string
	for _, f := range want.Fields {
		if f.Name == "" {
			continue
		}
		w, ok := evalInt(f.Value)
		if !ok {
			fails = append(fails, fmt.Sprintf("%s: cannot evaluate %s", f.Name, f.Value))
			continue
		}
		if f.Name == "tcpi_state" {
			got, text := symbols[in.State], in.State
			if in.StateText != "" {
				text = fmt.Sprintf("%s (%s)", in.State, in.StateText)
			}
			if w != got {
				wn := linuxStateName(w)
				if wn == "" {
					wn = fmt.Sprint(w)
				}
				msg := fmt.Sprintf("tcpi_state: expected %s, got %s", wn, text)
				if tr := r.lastTransition(in.Endpoint); tr != "" {
					msg += "; last transition: " + tr
				}
				fails = append(fails, msg)
			}
			continue
		}
		got, ok := in.Fields[f.Name]
		if !ok {
			notes = append(notes, "not judged: "+f.Name+" is not supported")
			continue
		}
		if w != got {
			fails = append(fails, fmt.Sprintf("%s: expected %d, got %d", f.Name, w, got))
		}
	}
	o := outcome{detail: "tcpi_state=" + in.State}
	if len(notes) > 0 {
		o.detail += "; " + strings.Join(notes, "; ")
	}
	o.fail = strings.Join(fails, "; ")
	return o
}

// lastTransition finds the most recent transition of an endpoint in the
// report so far, for failure messages.
func (r *runner) lastTransition(id uint64) string {
	if id == 0 {
		return ""
	}
	tag := fmt.Sprintf(" endpoint %d: ", id)
	for i := len(r.rep.Lines) - 1; i >= 0; i-- {
		ts := r.rep.Lines[i].Transitions
		for k := len(ts) - 1; k >= 0; k-- {
			if strings.Contains(ts[k], tag) {
				return ts[k] + fmt.Sprintf(" (line %d)", r.rep.Lines[i].Line)
			}
		}
	}
	return ""
}
