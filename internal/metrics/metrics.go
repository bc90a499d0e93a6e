// Package metrics exports a session's counts in the Prometheus text format:
// a prometheus.Collector that reads the aggregator at scrape time, so every
// counter is the aggregator's own count and nothing is counted twice. The
// families, their labels and the cardinality rule of the per-cgroup families
// are documented in docs/metrics.md.
//
// The pipeline feeds the aggregator from one goroutine and scrapes come on
// HTTP goroutines: the collector reaches the aggregator only through a
// Reader, whose Read holds the pipeline's lock while the collector builds
// the scrape's samples, and keeps no reference once Read returns.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fragscope/fragscope/internal/aggregate"
)

// State is what one scrape reads. It is valid only during the call of the
// function passed to Reader.Read.
type State struct {
	Agg *aggregate.Aggregator // nil before the session has one
	// Incidents is the number of incidents explained so far by verdict
	// (incident.Cause values).
	Incidents map[string]uint64
	// NodeName is the Kubernetes node (spec.nodeName) or host the agent
	// runs on, "" when unknown.
	NodeName string
	// Recorder is the agent's flight recorder and incident keeper, nil
	// where there is none (watch).
	Recorder *RecorderState
}

// RecorderState is what the agent's flight recorder and incident keeper
// report about themselves: an SRE alerts on a paused recording.
type RecorderState struct {
	Paused       bool   // a write failed and recording is paused
	Dropped      uint64 // events dropped while paused
	WrittenBytes int64  // bytes written to segments
	PinFailures  uint64 // attempts to pin an incident's recording that failed
}

// Reader gives the collector the session's state. Read calls f once, with
// the lock that serializes the pipeline held, and returns after f does; it
// may skip f when there is no state yet.
type Reader interface {
	Read(f func(s State))
}

// ReaderFunc adapts a function to Reader.
type ReaderFunc func(f func(s State))

// Read calls r(f).
func (r ReaderFunc) Read(f func(s State)) { r(f) }

// Defaults of Options and the ceiling no option can raise.
const (
	DefaultTopCgroups = 20
	// DefaultMaxCgroups is the default cap on cgroups with series of their
	// own, as a multiple of TopCgroups: room for rankings to change a few
	// times over before newcomers have to stay in "other".
	DefaultMaxCgroupsFactor = 5
	// HardMaxCgroups bounds MaxCgroups whatever it is set to: with four
	// per-cgroup counter families, at most 4*(HardMaxCgroups+1) series, and
	// the two stall histograms (stallBounds buckets each) over the same
	// members.
	HardMaxCgroups = 1000
)

// Options tune the collector; the zero value is the defaults.
type Options struct {
	// TopCgroups is how many of the cgroups ranked first by each
	// per-cgroup family's count get series of their own at a scrape
	// (default DefaultTopCgroups).
	TopCgroups int
	// MaxCgroups caps the cgroups with series of their own; once reached,
	// new cgroups count only in cgroup="other" (default
	// DefaultMaxCgroupsFactor*TopCgroups, at most HardMaxCgroups).
	MaxCgroups int
	// Version is this binary's version for fragscope_build_info; when
	// empty, the session's Start event's is used.
	Version string
}

func (o Options) withDefaults() Options {
	if o.TopCgroups <= 0 {
		o.TopCgroups = DefaultTopCgroups
	}
	if o.MaxCgroups <= 0 {
		o.MaxCgroups = DefaultMaxCgroupsFactor * o.TopCgroups
	}
	o.MaxCgroups = min(max(o.MaxCgroups, o.TopCgroups), HardMaxCgroups)
	o.TopCgroups = min(o.TopCgroups, o.MaxCgroups)
	return o
}

// NewRegistry returns a registry holding the session collector and the
// standard process and Go runtime collectors.
func NewRegistry(r Reader, opts Options) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(r, opts),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	return reg
}

// Handler serves reg's metrics. A sample that fails is left out and the rest
// is served (as node_exporter does), so one bad value cannot blank a scrape;
// at most four scrapes run at once, since each holds the pipeline's lock for
// the time it reads.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Registry:            reg,
	}))
}
