package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/view"
)

// pipeline is the one path for data, live or replayed: every event goes to
// the recorder (when recording), the aggregator, and the view (when one is
// shown). A replay swaps the source and keeps everything else.
type pipeline struct {
	rec    *trace.Writer
	agg    *aggregate.Aggregator
	corr   *incident.Correlator
	view   view.View
	cancel context.CancelFunc // stops the source when recording fails
	err    error              // first recording or view error
	prog   *progress
}

func newPipeline(v view.View, rec *trace.Writer, cancel context.CancelFunc) *pipeline {
	return &pipeline{agg: aggregate.New(), corr: incident.New(), view: v, rec: rec, cancel: cancel}
}

func (p *pipeline) emit(ev event.Event) {
	if p.rec != nil && p.err == nil {
		if err := p.rec.Write(ev); err != nil {
			p.fail(err)
		}
	}
	p.agg.Add(ev)
	inc := p.corr.Add(ev)
	if p.view != nil && p.err == nil {
		if err := p.view.Event(ev, p.agg); err != nil {
			p.fail(err)
		}
		if inc != nil && p.err == nil {
			if err := p.view.Incident(inc, p.agg); err != nil {
				p.fail(err)
			}
		}
	}
	if p.prog != nil {
		p.prog.event(ev)
	}
}

// fail keeps the first error and stops the source: a disk that filled up
// ends the session cleanly instead of silently dropping the rest.
func (p *pipeline) fail(err error) {
	if p.err == nil {
		p.err = err
		if p.cancel != nil {
			p.cancel()
		}
	}
}

// close finishes the view and the recording, returning the first error of
// the source, the recording or the view.
func (p *pipeline) close(srcErr error) error {
	if p.prog != nil {
		p.prog.done()
	}
	if p.view != nil {
		if err := p.view.Close(p.agg); err != nil && p.err == nil {
			p.err = err
		}
	}
	if p.rec != nil {
		events, bytes := p.rec.Stats()
		if err := p.rec.Close(); err != nil && p.err == nil {
			p.err = err
		}
		fmt.Fprintf(os.Stderr, "fragscope: recorded %d events, %d bytes\n", events, bytes)
	}
	if srcErr != nil {
		return srcErr
	}
	return p.err
}

// progress prints one updating line on a terminal: elapsed, events, bytes,
// drops. It redraws at most every 500 ms.
type progress struct {
	start  time.Time
	last   time.Time
	events uint64
	drops  uint64
	rec    *trace.Writer
	total  int64 // replay: file size, for a percentage; 0 when recording
	read   func() int64
}

func (pr *progress) event(ev event.Event) {
	pr.events++
	if t, ok := ev.(*event.Tick); ok {
		pr.drops += t.Drops
	}
	if now := time.Now(); now.Sub(pr.last) >= 500*time.Millisecond {
		pr.last = now
		pr.draw(now)
	}
}

func (pr *progress) draw(now time.Time) {
	line := fmt.Sprintf("%s  %d events", now.Sub(pr.start).Truncate(time.Second), pr.events)
	if pr.rec != nil {
		_, bytes := pr.rec.Stats()
		line += fmt.Sprintf("  %d KiB", bytes>>10)
	}
	if pr.total > 0 && pr.read != nil {
		line += fmt.Sprintf("  %3.0f%%", 100*float64(pr.read())/float64(pr.total))
	}
	line += fmt.Sprintf("  %d drops", pr.drops)
	fmt.Fprintf(os.Stderr, "\r\033[K%s", line)
}

func (pr *progress) done() {
	pr.draw(time.Now())
	fmt.Fprintln(os.Stderr)
}

// aggregateT keeps view adapters short.
type aggregateT = aggregate.Aggregator
