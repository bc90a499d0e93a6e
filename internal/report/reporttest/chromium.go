package reporttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Browser is a headless Chromium driven over the DevTools protocol on a
// pipe (--remote-debugging-pipe: NUL-terminated JSON messages, commands on
// the browser's fd 3, answers and events on its fd 4). A pipe needs no
// port, no websocket and no CDP library: the dozen commands the tests send
// are plain JSON.
type Browser struct {
	cmd    *exec.Cmd
	w      *os.File
	dir    string
	stderr bytes.Buffer

	mu      sync.Mutex
	next    int
	pending map[int]chan message
	events  []message
	notify  chan struct{}
	readErr error
	done    chan struct{}
}

type message struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// ChromiumFlags are how the tests start Chromium as root with no network
// (../shared/notes/runtimes.md): without the background-networking flags it
// keeps trying hosts it cannot reach.
var ChromiumFlags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars", "--mute-audio"}

// FindChromium returns Debian's chromium (or another Chromium) on PATH.
func FindChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (Debian: apt-get install chromium)")
}

// StartBrowser starts bin with a fresh profile.
func StartBrowser(bin string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "fragscope-chromium-")
	if err != nil {
		return nil, err
	}
	// Our ends: we write commands into toR's pair, read answers from fromW's.
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, ChromiumFlags...), "--user-data-dir="+dir, "--remote-debugging-pipe",
		"--window-size=1000,1200", "about:blank")
	b := &Browser{cmd: exec.Command(bin, args...), w: toW, dir: dir, pending: map[int]chan message{},
		notify: make(chan struct{}, 1), done: make(chan struct{})}
	b.cmd.ExtraFiles = []*os.File{toR, fromW} // fd 3, fd 4
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	toR.Close()
	fromW.Close()
	go b.read(fromR)
	return b, nil
}

func (b *Browser) read(r *os.File) {
	defer close(b.done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = fmt.Errorf("chromium closed the pipe: %v (stderr: %.500s)", err, b.stderr.String())
			for _, ch := range b.pending {
				close(ch)
			}
			b.pending = map[int]chan message{}
			b.mu.Unlock()
			return
		}
		var m message
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				ch <- m
				delete(b.pending, m.ID)
			}
		} else {
			b.events = append(b.events, m)
			select {
			case b.notify <- struct{}{}:
			default:
			}
		}
		b.mu.Unlock()
	}
}

// call sends one command and waits for its answer.
func (b *Browser) call(ctx context.Context, session, method string, params any, result any) error {
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return b.readErr
	}
	b.next++
	id := b.next
	ch := make(chan message, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	msg, _ := json.Marshal(message{ID: id, Method: method, Params: p, SessionID: session})
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: %w", method, b.readErr)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// waitEvent waits for an event of session; it returns the events seen so
// far, which the caller reads for console messages too.
func (b *Browser) waitEvent(ctx context.Context, session, method string) error {
	for {
		b.mu.Lock()
		for _, e := range b.events {
			if e.SessionID == session && e.Method == method {
				b.mu.Unlock()
				return nil
			}
		}
		b.mu.Unlock()
		select {
		case <-b.notify:
		case <-b.done:
			return b.readErr
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", method, ctx.Err())
		}
	}
}

// Page is what loading a page showed.
type Page struct {
	// Console holds the console errors and warnings, uncaught exceptions
	// and the browser's own error and warning log entries (a blocked
	// fetch, a CSP violation, a resource that failed to load).
	Console []string
	// Requests are the URLs the page asked for, the page itself included.
	Requests []string
	// Check is the value the check script returned, as JSON.
	Check      json.RawMessage
	Screenshot []byte // PNG of the whole page
	PDF        []byte // the page printed, as the print dialog would
}

// Load opens url in a new tab, waits for it to load, runs check (a JS
// expression; a promise is awaited), takes a full-page screenshot and
// prints it to PDF.
func (b *Browser) Load(ctx context.Context, url, check string) (*Page, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	defer b.call(context.Background(), "", "Target.closeTarget", map[string]any{"targetId": target.TargetID}, nil)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		return nil, err
	}
	s := att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		if err := b.call(ctx, s, m, map[string]any{}, nil); err != nil {
			return nil, err
		}
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call(ctx, s, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return nil, err
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("navigate %s: %s", url, nav.ErrorText)
	}
	if err := b.waitEvent(ctx, s, "Page.loadEventFired"); err != nil {
		return nil, err
	}
	p := &Page{}
	var ev struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(ctx, s, "Runtime.evaluate", map[string]any{"expression": check, "returnByValue": true, "awaitPromise": true}, &ev); err != nil {
		return nil, err
	}
	if ev.ExceptionDetails != nil {
		return nil, fmt.Errorf("check script: %s", ev.ExceptionDetails.Text)
	}
	p.Check = ev.Result.Value
	var lm struct {
		CSSContentSize struct {
			Width, Height float64
		} `json:"cssContentSize"`
	}
	if err := b.call(ctx, s, "Page.getLayoutMetrics", map[string]any{}, &lm); err != nil {
		return nil, err
	}
	var shot struct {
		Data string `json:"data"`
	}
	clip := map[string]any{"x": 0, "y": 0, "width": math.Ceil(lm.CSSContentSize.Width),
		"height": math.Ceil(lm.CSSContentSize.Height), "scale": 1}
	if err := b.call(ctx, s, "Page.captureScreenshot", map[string]any{"format": "png", "clip": clip, "captureBeyondViewport": true}, &shot); err != nil {
		return nil, err
	}
	var err error
	if p.Screenshot, err = base64.StdEncoding.DecodeString(shot.Data); err != nil {
		return nil, err
	}
	var pdf struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, s, "Page.printToPDF", map[string]any{"printBackground": true, "preferCSSPageSize": true}, &pdf); err != nil {
		return nil, err
	}
	if p.PDF, err = base64.StdEncoding.DecodeString(pdf.Data); err != nil {
		return nil, err
	}
	// Let late messages (a lazy image that failed) arrive before reading.
	time.Sleep(100 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.events {
		if e.SessionID != s {
			continue
		}
		if line := consoleLine(e); line != "" {
			p.Console = append(p.Console, line)
		}
		if e.Method == "Network.requestWillBeSent" {
			var rq struct {
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
			}
			json.Unmarshal(e.Params, &rq)
			p.Requests = append(p.Requests, rq.Request.URL)
		}
	}
	return p, nil
}

// consoleLine is a console error or warning, an exception or an error or
// warning the browser logged, in one line; "" for anything else.
func consoleLine(e message) string {
	switch e.Method {
	case "Runtime.consoleAPICalled":
		var c struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		json.Unmarshal(e.Params, &c)
		if c.Type != "error" && c.Type != "warning" && c.Type != "assert" {
			return ""
		}
		var parts []string
		for _, a := range c.Args {
			parts = append(parts, fmt.Sprint(a.Value)+a.Description)
		}
		return "console." + c.Type + ": " + strings.Join(parts, " ")
	case "Runtime.exceptionThrown":
		var x struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(e.Params, &x)
		return "exception: " + x.ExceptionDetails.Text + " " + x.ExceptionDetails.Exception.Description
	case "Log.entryAdded":
		var l struct {
			Entry struct {
				Level, Source, Text, URL string
			} `json:"entry"`
		}
		json.Unmarshal(e.Params, &l)
		if l.Entry.Level != "error" && l.Entry.Level != "warning" {
			return ""
		}
		return "log " + l.Entry.Level + " (" + l.Entry.Source + "): " + l.Entry.Text + " " + l.Entry.URL
	}
	return ""
}

// Close asks Chromium to exit, kills it if it does not within 5 s, and
// removes its profile.
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b.call(ctx, "", "Browser.close", map[string]any{}, nil)
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-exited
	}
	b.w.Close()
	return os.RemoveAll(b.dir)
}

// DOMCheck is the script the browser tests run on a report: for every
// chart, each series of its data-series and how many SVG elements draw
// it in its colour (images decoded, for the heatmaps), and whether the
// legend names it; for every incident card the length of each field's
// text. It returns a Checked.
const DOMCheck = `(async () => {
  const out = {charts: [], cards: []};
  for (const fig of document.querySelectorAll('figure.chart')) {
    const svg = fig.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const c = {id: fig.id, width: Math.round(box.width), height: Math.round(box.height), series: []};
    const styles = svg ? [...svg.querySelectorAll('path')].map(p => (p.getAttribute('style') || '').toUpperCase()) : [];
    const legend = (fig.querySelector('.legend') || {textContent: ''}).textContent;
    for (const s of JSON.parse(fig.dataset.series)) {
      let drawn = 0;
      if (s.kind === 'image') {
        for (const im of (svg ? svg.querySelectorAll('image') : [])) {
          const href = im.getAttribute('xlink:href') || im.getAttribute('href') || '';
          const b = im.getBBox();
          const img = new Image();
          img.src = href;
          try { await img.decode(); } catch (e) { continue; }
          if (b.width > 0 && b.height > 0 && img.naturalWidth > 0) drawn += img.naturalWidth * img.naturalHeight;
        }
      } else {
        const col = s.color.toUpperCase();
        drawn = styles.filter(st => st.includes('STROKE:' + col) || st.includes('FILL:' + col)).length;
      }
      c.series.push({name: s.name, kind: s.kind, points: s.points, drawn: drawn, inLegend: legend.includes(s.name)});
    }
    out.charts.push(c);
  }
  for (const card of document.querySelectorAll('article.incident')) {
    const f = {};
    for (const el of card.querySelectorAll('[data-field]')) f[el.dataset.field] = el.textContent.trim().length;
    out.cards.push({id: card.id, fields: f});
  }
  return out;
})()`

// Checked is what DOMCheck returns.
type Checked struct {
	Charts []struct {
		ID            string `json:"id"`
		Width, Height int
		Series        []struct {
			Name     string `json:"name"`
			Kind     string `json:"kind"`
			Points   int    `json:"points"`
			Drawn    int    `json:"drawn"`
			InLegend bool   `json:"inLegend"`
		} `json:"series"`
	} `json:"charts"`
	Cards []struct {
		ID     string         `json:"id"`
		Fields map[string]int `json:"fields"`
	} `json:"cards"`
}
