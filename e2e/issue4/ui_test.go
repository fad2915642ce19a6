package issue4

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebUIFollowsAHandshakeInChromium drives the web view in headless
// Chromium: opened on a session whose connection is in SYN-RECEIVED, it
// shows that state, the TCB and the ladder diagram; when the peer's ACK
// arrives (over the API, not through the page) it shows ESTABLISHED by
// itself, with the diagram redrawn. A screenshot is kept in the test's
// artifacts.
func TestWebUIFollowsAHandshakeInChromium(t *testing.T) {
	browser := need(t, "chromium")
	s := shared(t)
	conn := walkHandshake(t, s, "ui", false)

	tab := newTab(t, browser, 1400, 900)

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	t0 := time.Now()
	err := chromedp.Do(tab,
		chromedp.Navigate(s.url("/ui/#/sessions/ui")),
		chromedp.WaitVisible(css(`#sessions li[data-session="ui"]`)),
		chromedp.WaitVisible(css(`#endpoints span.state.SYN-RECEIVED`)),
		chromedp.WaitVisible(css(`#endpoint-state span.state.SYN-RECEIVED`)),
	)
	if err != nil {
		t.Fatalf("the page did not show SYN-RECEIVED: %v", err)
	}
	t.Logf("the page showed SYN-RECEIVED after %v (with the browser's start)", time.Since(t0).Round(time.Millisecond))
	listed, err := chromedp.Run(tab, chromedp.Text(css(`#endpoints`)))
	if err != nil {
		t.Fatal(err)
	}
	tcb, err := chromedp.Run(tab, chromedp.Text(css(`#tcb`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LISTEN", "SYN-RECEIVED", "10.0.0.1:80", "10.0.0.2:40000"} {
		if !strings.Contains(listed, want) {
			t.Errorf("the endpoint list lacks %q: %q", want, listed)
		}
	}
	for _, want := range []string{"ISS\t1000", "IRS\t100", "RCV.NXT\t101", "SND.NXT\t1001"} {
		if !strings.Contains(tcb, want) {
			t.Errorf("the TCB lacks %q: %q", want, tcb)
		}
	}

	// The peer's ACK completes the handshake; the page follows.
	t0 = time.Now()
	s.json(t, "POST", "/v1/sessions/ui/segments", segmentFields(101, 1001, "ACK", ""), nil)
	var records struct{ Session struct{ RecordCount string } }
	s.json(t, "GET", "/v1/sessions/ui", "", &records)
	err = chromedp.Do(tab,
		chromedp.WaitVisible(css(`#endpoints span.state.ESTABLISHED`)),
		chromedp.WaitVisible(css(`#endpoint-state span.state.ESTABLISHED`)),
		chromedp.WaitVisible(css(`#diagram[data-records="`+records.Session.RecordCount+`"]`)),
	)
	if err != nil {
		t.Fatalf("the page did not follow the handshake to ESTABLISHED: %v", err)
	}
	t.Logf("the page showed ESTABLISHED %v after the ACK", time.Since(t0).Round(time.Millisecond))
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`document.querySelectorAll("#diagram svg g.seg").length === 3`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the diagram did not load: %v", err)
	}
	// The pcap link, fetched the way the page fetches it (with the token,
	// when one is set): the capture of the four segments.
	size, err := chromedp.Run(tab, chromedp.Evaluate[int](
		`tcpstated.api(document.getElementById("pcap").getAttribute("href")).then(r => r.blob()).then(b => b.size)`, chromedp.EvalAwaitPromise))
	if err != nil || size <= 24 {
		t.Errorf("the pcap link: %d bytes, %v", size, err)
	}
	state, err := chromedp.Run(tab, chromedp.Text(css(`#endpoint-state`)))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(state, "ESTABLISHED") {
		t.Errorf("endpoint state %q", state)
	}
	file := filepath.Join(artifacts(t), "ui-established.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of %s: %s (%v after the ACK)", conn, file, time.Since(t0).Round(time.Millisecond))
}

// newTab starts headless Chromium with a fresh profile and a window of
// w×h pixels, and returns a tab in it that lives until the test ends (at
// most 3 minutes).
func newTab(t *testing.T, browser string, w, h int) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		// Containers often have a small /dev/shm; Chromium then crashes
		// without this.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	return tab
}
