package issue4

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

// explainedRecord is what the web view's tests read of a log record.
type explainedRecord struct {
	Kind    string
	Segment *struct{ Summary string }
	Output  *struct {
		Segments     []struct{ Summary string }
		Explanations []struct{ Code, Section, Text string }
	}
}

// explainedRecords reads a session's whole log with explanations.
func explainedRecords(t *testing.T, s *server, session string) []explainedRecord {
	t.Helper()
	var out struct{ Records []explainedRecord }
	s.json(t, "GET", "/v1/sessions/"+session+"/records?explain=true&pageSize=1000", "", &out)
	return out.Records
}

// segmentsOf numbers the segments of a log as the ladder does: an input's
// inbound segment, then its output's segments. It returns, per segment,
// the record it appears at in time travel and its explanations.
func segmentsOf(recs []explainedRecord) (at []int, explanations [][]string) {
	for i, r := range recs {
		if r.Kind == "RECORD_KIND_INPUT" && r.Segment != nil {
			var xs []string
			if i+1 < len(recs) && recs[i+1].Output != nil {
				for _, x := range recs[i+1].Output.Explanations {
					xs = append(xs, x.Text)
				}
			}
			at, explanations = append(at, i), append(explanations, xs)
		}
		if r.Kind == "RECORD_KIND_OUTPUT" && r.Output != nil {
			for range r.Output.Segments {
				var xs []string
				for _, x := range r.Output.Explanations {
					xs = append(xs, x.Text)
				}
				at, explanations = append(at, i), append(explanations, xs)
			}
		}
	}
	return at, explanations
}

// TestWebViewTeachesInChromium uses the page as a student would, in
// headless Chromium: it runs a packetdrill script from the page (out of
// order data, held and then delivered), reads the line-by-line report and
// follows a line to its segment in the ladder; clicks an arrow and finds
// the engine's explanation (the same the API gives), reaches another by
// keyboard; steps the time-travel slider back and sees the ladder and the
// state diagram as they were; takes screenshots at 375, 1024 and 1920 px
// with no horizontal overflow; and switches to Chinese, where the page's
// own words change and the RFC's do not.
func TestWebViewTeachesInChromium(t *testing.T) {
	browser := need(t, "chromium")
	s := shared(t)
	script, err := os.ReadFile(filepath.Join(repo, "testdata", "scripts", "out-of-order.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	tab := newTab(t, browser, 1024, 900)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	// Run the script from the page.
	err = chromedp.Do(tab,
		chromedp.Navigate(s.url("/ui/")),
		chromedp.WaitVisible(css(`#run-form`)),
		chromedp.SetValue(css(`#script-text`), string(script)),
		chromedp.SetValue(css(`#compare`), "SEMANTIC"),
		chromedp.Click(css(`#run`)),
		chromedp.WaitVisible(css(`#report-result .tag.pass`)),
		chromedp.WaitVisible(css(`#diagram svg g.seg[data-ref="8"]`)),
	)
	if err != nil {
		t.Fatalf("running the script from the page: %v", err)
	}
	session := strings.TrimPrefix(eval(`location.hash`), "#/sessions/")
	var report struct {
		Passed bool
		Lines  []struct{ Line int }
	}
	body, _ := json.Marshal(map[string]string{"script": string(script), "compare": "SEMANTIC", "sessionId": "teach-rest"})
	s.json(t, "POST", "/v1/scripts:run", string(body), &report)
	if rows := eval(`String(document.querySelectorAll("#report-lines tbody tr").length)`); rows != fmt.Sprint(len(report.Lines)) {
		t.Errorf("the page's report has %s lines, the API's %d", rows, len(report.Lines))
	}
	if got := text(`#report-result`); !strings.Contains(got, "sessions/"+session) {
		t.Errorf("report result %q does not name the session %s", got, session)
	}
	listed := text(`#sessions li[data-session="` + session + `"]`)
	if !strings.Contains(listed, "pass") || !strings.Contains(listed, "script run") {
		t.Errorf("the session list shows %q for the script's session, without its kind and result", listed)
	}

	// Line 15 (0.300 < P. 101:201(100)) is the fourth segment (#3): the
	// report links it to its arrow and its row, and explains it.
	recs := explainedRecords(t, s, session)
	at, expl := segmentsOf(recs)
	if len(at) != 9 {
		t.Fatalf("the session has %d segments, want 9", len(at))
	}
	err = chromedp.Do(tab,
		chromedp.Click(css(`#report-lines tr[data-line="15"]`)),
		chromedp.WaitVisible(css(`#diagram g.seg.linked[data-ref="3"]`)),
		chromedp.WaitVisible(css(`#segments tr.linked[data-seg="3"]`)),
	)
	if err != nil {
		t.Fatalf("the report line did not lead to its segment: %v", err)
	}
	for _, x := range expl[3] {
		if got := text(`#explain`); !strings.Contains(got, x) {
			t.Errorf("the explanation of segment 3 lacks the API's %q: %q", x, got)
		}
	}

	// Click an arrow: the held segment #5 and the engine's reasons.
	err = chromedp.Do(tab,
		chromedp.Click(css(`#diagram g.seg[data-ref="5"] text`)),
		chromedp.WaitVisible(css(`#segments tr.selected[data-seg="5"]`)),
	)
	if err != nil {
		t.Fatalf("clicking arrow 5: %v", err)
	}
	got := text(`#explain`)
	for _, want := range append([]string{"DATA_OUT_OF_ORDER", "RFC 9293 §3.10.7.4", "held (queued out of order)"}, expl[5]...) {
		if !strings.Contains(got, want) {
			t.Errorf("the explanation of arrow 5 lacks %q: %q", want, got)
		}
	}
	// The held segments look held in the ladder, and the arrow's <title>
	// (the SVG's own tooltip) carries the engine's explanation.
	if got := eval(`[...document.querySelectorAll("#diagram g.seg.held")].map(g => g.dataset.ref).join(" ")`); got != "3 5" {
		t.Errorf("held arrows in the ladder: %q, want \"3 5\"", got)
	}
	if title := eval(`document.querySelector('#diagram g.seg[data-ref="5"] title').textContent`); !strings.Contains(title, "DATA_OUT_OF_ORDER (RFC 9293 §3.10.7.4)") {
		t.Errorf("arrow 5's <title> %q lacks the engine's explanation", title)
	}
	// By keyboard: focus arrow 7 (the segment that fills the hole), Enter.
	err = chromedp.Do(tab,
		chromedp.Focus(css(`#diagram g.seg[data-ref="7"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(css(`#segments tr.selected[data-seg="7"]`)),
	)
	if err != nil {
		t.Fatalf("choosing arrow 7 by keyboard: %v", err)
	}
	for _, x := range expl[7] {
		if got := text(`#explain`); !strings.Contains(got, x) {
			t.Errorf("the explanation of arrow 7 lacks the API's %q", x)
		}
	}

	// Time travel: step back to the record of segment 5 (its input); the
	// segments after it fade, the state diagram shows ESTABLISHED.
	n := at[5]
	steps := []chromedp.Action[chromedp.Void]{chromedp.Click(css(`#travel-first`))}
	for range n {
		steps = append(steps, chromedp.Click(css(`#travel-next`)))
	}
	steps = append(steps, chromedp.WaitVisible(css(fmt.Sprintf(`#travel[data-at="%d"]`, n))))
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("stepping to record %d: %v", n, err)
	}
	future := 0
	for _, a := range at {
		if a > n {
			future++
		}
	}
	if got := eval(`String(document.querySelectorAll("#diagram g.seg.future").length)`); got != fmt.Sprint(future) {
		t.Errorf("at record %d the ladder fades %s segments, want %d", n, got, future)
	}
	// The TCB as the API gives it for that record (re-run from the log),
	// not as it is now.
	if err := chromedp.Do(tab, chromedp.WaitVisible(css(fmt.Sprintf(`#endpoint[data-at="%d"] #tcb tr`, n)))); err != nil {
		t.Fatalf("no TCB at record %d: %v", n, err)
	}
	var then, now struct {
		Endpoint struct {
			Tcb map[string]any
		}
	}
	s.json(t, "GET", fmt.Sprintf("/v1/sessions/%s/endpoints/2?atRecord=%d", session, n), "", &then)
	s.json(t, "GET", fmt.Sprintf("/v1/sessions/%s/endpoints/2", session), "", &now)
	tcb := text(`#tcb`)
	for label, key := range map[string]string{"SND.UNA": "sndUna", "SND.NXT": "sndNxt", "SND.WND": "sndWnd", "RCV.NXT": "rcvNxt", "RCV.WND": "rcvWnd", "cwnd": "cwnd"} {
		if want := fmt.Sprintf("%s\t%v", label, then.Endpoint.Tcb[key]); !strings.Contains(tcb, want) {
			t.Errorf("at record %d the page's TCB lacks the API's %q:\n%s", n, want, tcb)
		}
	}
	if fmt.Sprint(then.Endpoint.Tcb["rcvNxt"]) == fmt.Sprint(now.Endpoint.Tcb["rcvNxt"]) {
		t.Errorf("RCV.NXT at record %d equals RCV.NXT now (%v): the test shows no travel", n, now.Endpoint.Tcb["rcvNxt"])
	}
	if got := eval(`document.getElementById("fsm").dataset.state`); got != "ESTABLISHED" {
		t.Errorf("at record %d the state diagram shows %s, want ESTABLISHED", n, got)
	}
	if got := eval(`(document.querySelector("#fsm svg g.fsm-state.current") || {}).textContent || ""`); got != "ESTABLISHED" {
		t.Errorf("the state diagram's current state box reads %q, want ESTABLISHED", got)
	}
	if err := chromedp.Do(tab, chromedp.Click(css(`#travel-live`)), chromedp.WaitVisible(css(`#travel-live:disabled`))); err != nil {
		t.Fatalf("back to live: %v", err)
	}

	// Screenshots at three widths, with the explanation of arrow 5 shown.
	if err := chromedp.Do(tab, chromedp.Click(css(`#segments tr[data-seg="5"]`))); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("TCPSTATED_UI_SCREENSHOTS") // e.g. docs/ to refresh the README's pictures
	for _, w := range []int64{375, 1024, 1920} {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(w, 900), chromedp.Sleep(300*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		// The page's width against the window's, and against the part a
		// vertical scrollbar leaves (clientWidth).
		sizes := eval(`document.documentElement.scrollWidth + " " + innerWidth + " " + document.documentElement.clientWidth`)
		var scroll, inner, client int
		fmt.Sscan(sizes, &scroll, &inner, &client)
		t.Logf("at %d px: scrollWidth %d, innerWidth %d, clientWidth %d", w, scroll, inner, client)
		if inner != int(w) || scroll > inner || scroll > client {
			t.Errorf("at %d px: scrollWidth %d, innerWidth %d, clientWidth %d: the page overflows sideways", w, scroll, inner, client)
		}
		shot := fullShot(t, tab)
		name := fmt.Sprintf("ui-%d.png", w)
		for _, dir := range []string{artifacts(t), shots} {
			if dir == "" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Chinese: the page's words change; state names, RFC sections and the
	// engine's explanations stay as the RFC writes them.
	eval(`(() => { const s = document.getElementById("lang"); s.value = "zh-CN"; s.dispatchEvent(new Event("change")); return ""; })()`)
	if err := chromedp.Do(tab, chromedp.WaitVisible(css(`html[lang="zh-CN"]`))); err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{`#run-h`: "运行脚本", `#sessions-h`: "会话", `#travel-h`: "时间回溯"} {
		if got := text(sel); got != want {
			t.Errorf("in Chinese %s reads %q, want %q", sel, got, want)
		}
	}
	got = text(`#explain`)
	for _, want := range []string{"DATA_OUT_OF_ORDER", "RFC 9293 §3.10.7.4", "已暂存", "SEG.SEQ"} {
		if !strings.Contains(got, want) {
			t.Errorf("the Chinese explanation lacks %q: %q", want, got)
		}
	}
	if got := text(`#endpoints`); !strings.Contains(got, "ESTABLISHED") || !strings.Contains(got, "连接") {
		t.Errorf("the Chinese endpoint list %q: state names stay, kinds are translated", got)
	}
	if shots != "" {
		shot := fullShot(t, tab)
		if err := os.WriteFile(filepath.Join(shots, "ui-1920-zh.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fullShot takes a PNG of the whole page. The vertical scrollbar is hidden
// meanwhile: a full-page capture lays the page out without one but keeps
// the width it took, which would cut off the right edge.
func fullShot(t *testing.T, tab context.Context) []byte {
	t.Helper()
	const bar = `document.documentElement.style.overflow = %q; ""`
	if _, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(bar, "hidden"))); err != nil {
		t.Fatal(err)
	}
	defer chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(bar, "")))
	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	return shot
}

// TestWebViewSessionListInChromium: on a server of its own with 205
// sessions, the list shows the first 200 and loads the rest on request;
// search narrows it; delete asks once more, then deletes (over the API).
func TestWebViewSessionListInChromium(t *testing.T) {
	browser := need(t, "chromium")
	s := &server{testserver.StartT(t, testserver.Config{Binary: binary(t), DataDir: t.TempDir(), Args: []string{"--fsync", "never"}})}
	defer s.stop()
	for i := range 205 {
		s.json(t, "POST", fmt.Sprintf("/v1/sessions?sessionId=lab-%03d", i), `{}`, nil)
	}
	tab := newTab(t, browser, 1024, 900)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	count := func() string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](`String(document.querySelectorAll("#sessions li").length)`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	err := chromedp.Do(tab,
		chromedp.Navigate(s.url("/ui/")),
		chromedp.WaitVisible(css(`#sessions li[data-session="lab-199"]`)),
		chromedp.WaitVisible(css(`#more-sessions`)),
	)
	if err != nil {
		t.Fatalf("the first page: %v", err)
	}
	if got := count(); got != "200" {
		t.Errorf("the first page lists %s sessions, want 200", got)
	}
	if _, err := chromedp.Run(tab, chromedp.Text(css(`#sessions li[data-session="lab-000"] .tag.kind-interactive`))); err != nil {
		t.Errorf("a session made over the API is not shown as interactive: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.Click(css(`#more-sessions`)), chromedp.WaitVisible(css(`#sessions li[data-session="lab-204"]`))); err != nil {
		t.Fatalf("loading more: %v", err)
	}
	if got := count(); got != "205" {
		t.Errorf("after loading more the list has %s sessions, want 205", got)
	}
	err = chromedp.Do(tab,
		chromedp.SendKeys(css(`#session-search`), "lab-20"),
		chromedp.WaitNotPresent(css(`#sessions li[data-session="lab-199"]`)),
	)
	if err != nil {
		t.Fatalf("searching: %v", err)
	}
	if got := count(); got != "5" { // lab-200 … lab-204
		t.Errorf("searching lab-20 lists %s sessions, want 5", got)
	}
	err = chromedp.Do(tab,
		chromedp.Click(css(`#sessions li[data-session="lab-203"] button.delete`)),
		chromedp.WaitVisible(css(`#sessions li[data-session="lab-203"] button.delete.confirm`)),
		chromedp.Click(css(`#sessions li[data-session="lab-203"] button.delete`)),
		chromedp.WaitNotPresent(css(`#sessions li[data-session="lab-203"]`)),
	)
	if err != nil {
		t.Fatalf("deleting: %v", err)
	}
	if got := count(); got != "4" {
		t.Errorf("after the delete the search lists %s sessions, want 4", got)
	}
	if code, _ := s.call(t, "GET", "/v1/sessions/lab-203", ""); code != 404 {
		t.Errorf("the deleted session answers %d, want 404", code)
	}
}
