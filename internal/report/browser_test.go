package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/report/reporttest"
)

// artifactsDir is where the browser tests leave their screenshots and
// PDFs: FRAGSCOPE_REPORT_OUT, else /tmp/fragscope-report/<time>.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("FRAGSCOPE_REPORT_OUT")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "fragscope-report", time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func browser(t *testing.T) *reporttest.Browser {
	t.Helper()
	bin, err := reporttest.FindChromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: .ci/run and make test-deps install it", err)
		}
		t.Skip(err)
	}
	b, err := reporttest.StartBrowser(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Debian's headless Chromium renders the reports of the fragmentation and
// failing-clone guest recordings, of the synthetic seed recording (two
// incidents, one namespace_limit) and of the seed's kernel log: no console
// error, no request but the file itself, every chart drawn with each of its
// series (the heatmap's image decoded to its cells), every incident card
// with every field; a screenshot and a PDF of each are kept.
func TestReportInChromium(t *testing.T) {
	b := browser(t)
	out := artifactsDir(t)
	for _, tc := range []struct {
		input           string
		cards, heatmaps int
	}{
		{"../../testdata/vm/fragmentation-6.12.trace", 0, 2},
		{"../../testdata/vm/failing-clone-faultinject.trace", 1, 2},
		{"../../testdata/traces/seed-incident.synthetic.fst", 2, 3},
		{"../../testdata/kmsg/001-seed-rhel7-nf_conntrack.log", 3, 0},
	} {
		name := strings.TrimSuffix(filepath.Base(tc.input), filepath.Ext(tc.input))
		t.Run(name, func(t *testing.T) {
			doc := render(t, tc.input)
			page := filepath.Join(out, name+".html")
			if err := os.WriteFile(page, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			url := "file://" + page
			p, err := b.Load(ctx, url, reporttest.DOMCheck)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range p.Console {
				t.Errorf("console: %s", l)
			}
			for _, r := range p.Requests {
				if r != url && !strings.HasPrefix(r, "data:") {
					t.Errorf("the page requested %s", r)
				}
			}
			var got reporttest.Checked
			if err := json.Unmarshal(p.Check, &got); err != nil {
				t.Fatalf("%v: %s", err, p.Check)
			}
			heatmaps := 0
			for _, c := range got.Charts {
				if strings.HasPrefix(c.ID, "heatmap-") {
					heatmaps++
				}
				if c.Width < 300 || c.Height < 100 {
					t.Errorf("chart %s drawn %dx%d", c.ID, c.Width, c.Height)
				}
				if len(c.Series) == 0 {
					t.Errorf("chart %s has no series", c.ID)
				}
				for _, s := range c.Series {
					want := 1
					switch s.Kind {
					case "image", "points", "marks":
						want = s.Points // every cell decoded, every mark drawn
					}
					if s.Drawn < want || !s.InLegend {
						t.Errorf("chart %s series %q (%s): %d drawn, want %d; in legend %v", c.ID, s.Name, s.Kind, s.Drawn, want, s.InLegend)
					}
				}
			}
			if heatmaps != tc.heatmaps {
				t.Errorf("%d heatmaps drawn, want %d", heatmaps, tc.heatmaps)
			}
			if len(got.Cards) != tc.cards {
				t.Errorf("%d incident cards, want %d", len(got.Cards), tc.cards)
			}
			for _, c := range got.Cards {
				for _, f := range reporttest.CardFields {
					if c.Fields[f] == 0 {
						t.Errorf("card %s: field %s empty or missing (%v)", c.ID, f, c.Fields)
					}
				}
			}
			if !bytes.HasPrefix(p.Screenshot, []byte("\x89PNG")) || !bytes.HasPrefix(p.PDF, []byte("%PDF-")) {
				t.Fatalf("no PNG screenshot or PDF (%d, %d bytes)", len(p.Screenshot), len(p.PDF))
			}
			for ext, data := range map[string][]byte{".png": p.Screenshot, ".pdf": p.PDF} {
				if err := os.WriteFile(filepath.Join(out, name+ext), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: %d charts, %d cards; screenshot and PDF in %s", name, len(got.Charts), len(got.Cards), out)
		})
	}
}

// The checks can fail: a page that fetches from the network, throws, and
// names a series it does not draw is caught on each count; and the
// report's own Content-Security-Policy refuses a fetch slipped into it.
func TestBrowserChecksCatchFaults(t *testing.T) {
	b := browser(t)
	page := filepath.Join(t.TempDir(), "bad.html")
	doc := `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'unsafe-inline'"></head><body>
<img src="http://127.0.0.1:9/x.png">
<figure class="chart" id="c" data-series='[{"name":"order 6","color":"#E41A1C","kind":"line","points":3}]'><svg width="400" height="200"><path d="M0 0L10 10" style="stroke:#000000"/></svg><ul class="legend"><li>order 6</li></ul></figure>
<script>throw new Error("boom")</script></body></html>`
	if err := os.WriteFile(page, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := b.Load(ctx, "file://"+page, reporttest.DOMCheck)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(p.Console, "\n")
	if !strings.Contains(all, "boom") || !strings.Contains(all, "127.0.0.1:9") {
		t.Errorf("console lines miss the exception or the blocked fetch:\n%s", all)
	}
	// The report's own policy blocks a fetch someone slipped into it.
	rep := bytes.Replace(render(t, "../../testdata/vm/fragmentation-6.12.trace"), []byte("<body>"),
		[]byte(`<body><img src="http://127.0.0.1:9/slipped.png">`), 1)
	slipped := filepath.Join(t.TempDir(), "slipped.html")
	if err := os.WriteFile(slipped, rep, 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := b.Load(ctx, "file://"+slipped, "1")
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(ps.Console, "\n"); !strings.Contains(all, "Content Security Policy") || !strings.Contains(all, "slipped.png") {
		t.Errorf("the report's policy did not refuse the slipped fetch:\n%s", all)
	}
	var got reporttest.Checked
	if err := json.Unmarshal(p.Check, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Charts) != 1 || len(got.Charts[0].Series) != 1 || got.Charts[0].Series[0].Drawn != 0 {
		t.Errorf("a series drawn in no colour of its own counted as drawn: %s", p.Check)
	}
}
