package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/report"
	"github.com/fragscope/fragscope/internal/trace"
)

// ReportPath serves the report (`fragscope report`) of the last incident
// kept; ?incident=NAME picks another of the kept ones.
const ReportPath = "/report"

// reportTimeout bounds one render: a pinned window is 21 minutes of
// events by default, which renders in well under a second.
const reportTimeout = 30 * time.Second

// reports renders kept incidents' reports, one at a time: a report costs
// a replay of its window, and a refresh-happy browser must not queue
// many.
type reports struct {
	dir           string // data dir
	before, after time.Duration
	flush         func() error // the flight recorder's, before reading segments
	mu            sync.Mutex
}

func (rp *reports) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	idir := filepath.Join(rp.dir, "incidents")
	jsons, _ := filepath.Glob(filepath.Join(idir, "*.json"))
	names := make([]string, 0, len(jsons))
	for _, j := range jsons {
		names = append(names, strings.TrimSuffix(filepath.Base(j), ".json"))
	}
	slices.Sort(names) // names begin with the incident's UTC time
	if len(names) == 0 {
		http.Error(w, "no incident kept yet: the report of the last incident is served here once one is explained", http.StatusNotFound)
		return
	}
	name := names[len(names)-1]
	if q := req.URL.Query().Get("incident"); q != "" {
		if !slices.Contains(names, q) {
			http.Error(w, fmt.Sprintf("no kept incident %q: the kept ones are the names in %s without .json", q, idir), http.StatusNotFound)
			return
		}
		name = q
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	ctx, cancel := context.WithTimeout(req.Context(), reportTimeout)
	defer cancel()
	var buf bytes.Buffer
	if err := rp.render(ctx, idir, name, &buf); err != nil {
		http.Error(w, "report of incident "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page's own policy, as a header too: served, it must not fetch
	// either.
	w.Header().Set("Content-Security-Policy", report.ContentSecurityPolicy)
	w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", name+".html"))
	w.Write(buf.Bytes())
}

// render draws the incident group's pinned recording, or, before it is
// pinned (until --incident-after has passed), the same window read from
// the segments.
func (rp *reports) render(ctx context.Context, idir, name string, buf *bytes.Buffer) error {
	opt := report.Options{Title: "incident " + name}
	var src event.Source
	pinned := filepath.Join(idir, name+traceExt)
	if _, err := os.Stat(pinned); err == nil {
		r, f, err := trace.Open(pinned)
		if err != nil {
			return err
		}
		defer f.Close()
		src, opt.Input = &trace.Source{Reader: r}, report.InputRecording
	} else {
		first, last, err := incidentTimes(filepath.Join(idir, name+".json"))
		if err != nil {
			return err
		}
		if rp.flush != nil {
			if err := rp.flush(); err != nil {
				return err
			}
		}
		d, err := flight.OpenDir(rp.dir, first.Add(-rp.before), last.Add(rp.after))
		if err != nil {
			return err
		}
		src, opt.Input = d, report.InputDataDir
		opt.Title += " (not pinned yet: read from the segments)"
	}
	return report.Render(ctx, src, opt, buf)
}
