// Package agent is `fragscope agent`: the live pipeline left running on a
// node, with no view, a flight recorder in the data directory, incidents kept
// with the recording around them, and Prometheus metrics with health and
// readiness endpoints.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/live"
	"github.com/fragscope/fragscope/internal/metrics"
	"github.com/fragscope/fragscope/internal/pipeline"
)

// DefaultListen is loopback only: metrics name cgroups and pods, and a node
// agent should not be reachable from the network unless the operator says so.
// 9100-9999 is fully allocated among exporters; 9436 is documented in
// docs/agent.md and free of the exporters fragscope runs beside (node 9100,
// ebpf_exporter 9435).
const DefaultListen = "127.0.0.1:9436"

// Options configure the agent. Zero durations and sizes take the flight
// recorder's defaults.
type Options struct {
	Live    live.Options
	DataDir string
	Listen  string

	SegmentBytes, RetainBytes int64
	SegmentAge, RetainAge     time.Duration

	// IncidentBefore and IncidentAfter bound the recording pinned with
	// each incident; IncidentMaxCount and IncidentMaxBytes bound the kept
	// incidents (oldest go first).
	IncidentBefore, IncidentAfter time.Duration
	IncidentMaxCount              int
	IncidentMaxBytes              int64

	Metrics metrics.Options
	Log     *slog.Logger
	// Ready, when set, is called once hooks are attached and the first
	// snapshot taken (tests).
	Ready func()
}

// Run runs the agent until ctx ends, then flushes, closes and returns nil.
// Errors before the agent is up (data dir, listen address, privileges, no
// hook) are returned; after that, errors are logged and the agent goes on.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	node := live.NodeName(o.Live.NodeName)
	o.Live.NodeName = node
	o.Live.Warn = func(msg string) { log.Warn(msg) }

	// The session model belongs to the pipeline, which exists only once the
	// hooks are attached; the recorder asks for its state when it opens a
	// segment, which happens on the pipeline's goroutine inside Write.
	var p *pipeline.Pipeline
	rec, err := flight.Open(flight.Options{
		Dir: o.DataDir, SegmentBytes: o.SegmentBytes, SegmentAge: o.SegmentAge,
		RetainBytes: o.RetainBytes, RetainAge: o.RetainAge,
		State: func() (*event.Start, []event.CgroupPath, *event.MemSnapshot) {
			s := p.Session()
			return s.Start(), s.LiveCgroups(s.Last()), s.Snapshot().MemSnapshot
		},
		Logf: func(format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			if strings.Contains(msg, "recording paused") {
				log.Error(msg) // events are being dropped until there is room
			} else {
				log.Warn(msg)
			}
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := rec.Close(); err != nil {
			log.Error("closing the flight recorder", "err", err.Error())
		}
	}()

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w (pick a free address with --listen)", o.Listen, err)
	}
	var ready atomic.Bool
	var pRef atomic.Pointer[pipeline.Pipeline]
	keeperRef := atomic.Pointer[keeper]{}
	reader := metrics.ReaderFunc(func(f func(metrics.State)) {
		if pp := pRef.Load(); pp != nil {
			pp.Read(func(s pipeline.State) {
				st := rec.Stats()
				f(metrics.State{Agg: s.Aggregator, Incidents: s.Incidents, NodeName: node,
					Recorder: &metrics.RecorderState{Paused: st.Paused, Dropped: st.Dropped,
						WrittenBytes: st.Bytes, PinFailures: keeperRef.Load().pinFailures.Load()}})
			})
		}
	})
	rep := &reports{dir: o.DataDir, before: o.IncidentBefore, after: o.IncidentAfter, flush: rec.Flush}
	srv := &http.Server{Handler: mux(metrics.NewRegistry(reader, o.Metrics), &ready, rep), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	ls, err := live.Open(ctx, o.Live)
	if ls != nil {
		logHooks(log, ls.Status, node, o)
	}
	if err != nil {
		return err
	}
	defer ls.Close()

	k := &keeper{dir: o.DataDir, before: o.IncidentBefore, after: o.IncidentAfter,
		maxCount: o.IncidentMaxCount, maxBytes: o.IncidentMaxBytes, log: log, pin: rec.Pin, diskPaused: func() bool { return rec.Stats().Paused }, now: time.Now}
	keeperRef.Store(k)
	p = pipeline.New(pipeline.Options{
		Tap: tap{rec},
		OnIncident: func(inc *incident.Incident) {
			k.add(inc, p.Aggregator())
		},
	})
	pRef.Store(p)
	k.recover()
	k.start()
	ls.Source.Ready = func() {
		ready.Store(true)
		log.Info("ready: hooks attached, first snapshot taken", "listen", ln.Addr().String())
		if o.Ready != nil {
			o.Ready()
		}
	}
	err = p.Run(ctx, ls.Source)
	k.close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	st := rec.Stats()
	log.Info("stopped", "events", st.Events, "bytes", st.Bytes, "dropped", st.Dropped)
	return nil
}

// tap feeds the flight recorder without ever stopping the session: the
// recorder reports its own errors once and resumes when it can.
type tap struct{ r *flight.Recorder }

func (t tap) Write(ev event.Event) error {
	t.r.Write(ev)
	return nil
}

func logHooks(log *slog.Logger, st []event.HookStatus, node string, o Options) {
	var attached, refused []any
	for _, s := range st {
		if s.Attached {
			attached = append(attached, slog.String(s.Hook, s.Mechanism+" "+s.Target))
		} else {
			refused = append(refused, slog.String(s.Hook, s.Reason))
		}
	}
	log.Info("fragscope agent starting", "node", node, "data_dir", o.DataDir, "listen", o.Listen,
		slog.Group("attached", attached...), slog.Group("not_attached", refused...))
}

// mux serves /metrics, /healthz (the process answers), /readyz (hooks
// attached and the first snapshot taken: the pipeline is producing) and
// /report (the last incident's HTML report).
func mux(reg *prometheus.Registry, ready *atomic.Bool, rep http.Handler) http.Handler {
	m := http.NewServeMux()
	m.Handle(ReportPath, rep)
	m.Handle("/metrics", metrics.Handler(reg))
	m.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	m.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready: attaching hooks or taking the first snapshot", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return m
}
