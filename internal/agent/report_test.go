package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/trace"
)

// The agent's /report: the failing clone recorded in a guest, run through
// the agent's own recorder and keeper, is served as its report from the
// segments while its recording is not pinned yet, then from the pinned
// recording; before any incident and for an unknown name, a 404 that says
// why.
func TestReportOfLastIncident(t *testing.T) {
	dir := t.TempDir()
	var clock time.Time
	now := func() time.Time { return clock }
	var p *pipeline.Pipeline
	rec, err := flight.Open(flight.Options{Dir: dir, Now: now, Logf: t.Logf,
		State: func() (*event.Start, []event.CgroupPath, *event.MemSnapshot) {
			s := p.Session()
			return s.Start(), s.LiveCgroups(s.Last()), s.Snapshot().MemSnapshot
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	k := &keeper{dir: dir, before: 10 * time.Minute, after: time.Minute, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		pin: rec.Pin, diskPaused: func() bool { return false }, now: now}
	p = pipeline.New(pipeline.Options{Tap: tap{rec}, OnIncident: func(inc *incident.Incident) { k.add(inc, p.Aggregator()) }})
	srv := httptest.NewServer(&reports{dir: dir, before: k.before, after: k.after, flush: rec.Flush})
	defer srv.Close()
	get := func(query string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + ReportPath + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(""); code != http.StatusNotFound || !strings.Contains(body, "no incident kept yet") {
		t.Errorf("before any incident: %d %q", code, body)
	}

	r, f, err := trace.Open("../../testdata/vm/failing-clone-faultinject.trace")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := &trace.Source{Reader: r}
	if err := src.Run(context.Background(), func(ev event.Event) {
		if w := ev.When(); w.After(clock) {
			clock = w
		}
		p.Emit(ev)
	}); err != nil {
		t.Fatal(err)
	}
	const headline = "unshare(CLONE_NEWNET) by fsworkload[124] failed with ENOMEM"
	code, body := get("")
	if code != http.StatusOK || !strings.Contains(body, "not pinned yet") || !strings.Contains(body, headline) ||
		!strings.Contains(body, `id="heatmap-0-DMA32"`) {
		t.Errorf("before the pin: %d, want the report read from the segments:\n%.600s", code, body)
	}
	k.pinDue(true)
	resp, err := http.Get(srv.URL + ReportPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("served without the page's policy: %q", csp)
	}
	code, body = get("")
	if code != http.StatusOK || strings.Contains(body, "not pinned yet") || !strings.Contains(body, headline) {
		t.Errorf("after the pin: %d, want the report of the pinned recording:\n%.600s", code, body)
	}
	name := incidentName(&incident.Incident{Time: time.Date(2026, 11, 27, 14, 2, 10, 108_000_000, time.UTC)})
	name = name[:strings.Index(name, "-")]
	for _, q := range []string{"?incident=nothing", "?incident=../../etc/passwd"} {
		if code, body := get(q); code != http.StatusNotFound || !strings.Contains(body, "no kept incident") {
			t.Errorf("%s: %d %q", q, code, body)
		}
	}
	if !strings.Contains(body, "incident "+name) {
		t.Errorf("the report is not titled with the incident's name (%s)", name)
	}
}
