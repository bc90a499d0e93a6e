// Package pipeline is the one path for data, live or replayed: every event of
// a source goes, in stream order, to the recorder tap (when recording), the
// session model, the aggregator, the correlator and the view. watch, record,
// replay, incidents, top and agent differ only in the source, the tap and the
// view they plug in.
package pipeline

import (
	"context"
	"sync"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/session"
	"github.com/fragscope/fragscope/internal/view"
)

// Tap sees every event before anything else does: the recorder. An error
// ends the session (a recording that cannot be written is worth stopping
// for); taps that must never stop it (the agent's flight recorder) handle
// their own errors and return nil.
type Tap interface {
	Write(ev event.Event) error
}

// Options plug the consumers into a Pipeline. All are optional.
type Options struct {
	View view.View
	Tap  Tap
	// OnIncident is called on the source's goroutine for every incident,
	// after the view has seen it; it must not retain agg-derived state it
	// does not copy.
	OnIncident func(inc *incident.Incident)
	// OnEvent is called after every event has been folded: progress lines.
	OnEvent func(ev event.Event)
	// Cancel stops the source when the tap or the view fails.
	Cancel context.CancelFunc
	// Correlator tunes the correlator; zero fields take its defaults.
	Correlator incident.Options
}

// Pipeline folds one stream. Emit runs on the source's goroutine; Read lets
// other goroutines (metrics scrapes) look at the state between two events.
type Pipeline struct {
	opt  Options
	sess *session.Session
	agg  *aggregate.Aggregator
	corr *incident.Correlator

	mu        sync.Mutex // held by Emit and by Read
	incidents map[string]uint64
	err       error // first tap or view error
}

// New returns a Pipeline with its own session, aggregator and correlator.
func New(o Options) *Pipeline {
	s := session.New()
	return &Pipeline{
		opt:       o,
		sess:      s,
		agg:       aggregate.New(s),
		corr:      incident.NewWithOptions(s, o.Correlator),
		incidents: map[string]uint64{},
	}
}

// Emit folds one event. It has the signature event.Source.Run wants.
func (p *Pipeline) Emit(ev event.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opt.Tap != nil && p.err == nil {
		if err := p.opt.Tap.Write(ev); err != nil {
			p.fail(err)
		}
	}
	p.sess.Add(ev)
	p.agg.Add(ev)
	inc := p.corr.Add(ev)
	if inc != nil {
		p.incidents[string(inc.Verdict.Cause)]++
	}
	if v := p.opt.View; v != nil && p.err == nil {
		if err := v.Event(ev, p.agg); err != nil {
			p.fail(err)
		}
		if inc != nil && p.err == nil {
			if err := v.Incident(inc, p.agg); err != nil {
				p.fail(err)
			}
		}
	}
	if inc != nil && p.opt.OnIncident != nil {
		p.opt.OnIncident(inc)
	}
	if p.opt.OnEvent != nil {
		p.opt.OnEvent(ev)
	}
}

// fail keeps the first error and stops the source: a disk that filled up
// ends the session cleanly instead of silently dropping the rest.
func (p *Pipeline) fail(err error) {
	if p.err == nil {
		p.err = err
		if p.opt.Cancel != nil {
			p.opt.Cancel()
		}
	}
}

// Run drives src into the pipeline until it ends, then closes the view. It
// returns the source's error, else the first tap or view error. The tap is
// the caller's to close.
func (p *Pipeline) Run(ctx context.Context, src event.Source) error {
	srcErr := src.Run(ctx, p.Emit)
	p.mu.Lock()
	defer p.mu.Unlock()
	if v := p.opt.View; v != nil {
		if err := v.Close(p.agg); err != nil && p.err == nil {
			p.err = err
		}
	}
	if srcErr != nil {
		return srcErr
	}
	return p.err
}

// State is what Read shows: valid only during the call.
type State struct {
	Session    *session.Session
	Aggregator *aggregate.Aggregator
	// Incidents counts the incidents so far by verdict kind.
	Incidents map[string]uint64
}

// Read calls f with the state between two events, holding the pipeline
// still: f must be quick and must not keep what it is shown.
func (p *Pipeline) Read(f func(State)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(State{Session: p.sess, Aggregator: p.agg, Incidents: p.incidents})
}

// Session and Aggregator are for the source's own goroutine (views, the
// agent's incident handler) and for after Run returns.
func (p *Pipeline) Session() *session.Session         { return p.sess }
func (p *Pipeline) Aggregator() *aggregate.Aggregator { return p.agg }
