package report

import (
	"context"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/pipeline"
	"github.com/fragscope/fragscope/internal/view"
)

// The kinds of input, for Options.Input.
const (
	InputRecording = "recording"
	InputDataDir   = "data dir"
	InputKernelLog = "kernel log"
)

// ContentSecurityPolicy is the page's policy (a meta element in it): no
// script, no fetch; inline styles and data: images only.
const ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

// Options say what the report is of.
type Options struct {
	// Title names the input: a file, a data dir, a log.
	Title string
	// Input is what kind of input it is: InputRecording, InputDataDir,
	// InputKernelLog.
	Input string
}

// Cards bound the incidents drawn in full: the first and the last
// keptCards/2 (a runc retry loop makes thousands that say the same); every
// incident is listed in one line, up to listedIncidents.
const (
	keptCards       = 40
	listedIncidents = 2000
	topCgroups      = 15
)

// Stall kinds: per column, the longest time a task spent in a call that
// failed or created a namespace, in a call past the stall threshold (issue
// 11's stall events), or in direct compaction and reclaim (issue 13's
// per-interval histograms). A new kind is a name appended here and an
// r.stall call in Event.
var stallKinds = []string{
	"failed clone/unshare/setns/fork",
	"copy_net_ns",
	"kmem_cache_create",
	"namespace syscall or memcg OOM wait past the stall threshold",
	"direct compaction (largest log2 bucket)",
	"direct reclaim (largest log2 bucket)",
	"memcg reclaim (largest log2 bucket)",
}

// memStallKind is the stallKinds index of each compaction/reclaim kind.
var memStallKind = map[string]int{
	event.StallDirectCompaction: 4,
	event.StallDirectReclaim:    5,
	event.StallMemcgReclaim:     6,
}

// Report is a view.View that collects a session for WriteHTML.
type Report struct {
	opt Options
	tl  timeline

	zones     []zoneKey // index = zoneCell index
	zoneIndex map[zoneKey]int
	orders    int // orders the snapshots have

	failedOrders [event.Orders]uint64 // failed allocations by order, whole session

	cards     []*incident.Incident // the first keptCards/2
	lastCards []*incident.Incident // ring of the last keptCards/2
	lastNext  int
	listed    []listedIncident
	incidents int
	byCause   map[incident.Cause]int
	reports   []kernelReport // the kernel's reports, up to listedIncidents

	// Filled by Close from the aggregator and the session.
	summary aggregate.Summary
	top     []aggregate.CgroupRank
	hooks   []event.HookStatus
	start   *event.Start
	first   time.Time
	last    time.Time
	closed  bool
}

type zoneKey struct {
	node int
	name string
}

func (z zoneKey) String() string { return "node " + strconv.Itoa(z.node) + " " + z.name }

type listedIncident struct {
	Time     time.Time
	Cause    incident.Cause
	Headline string
}

var _ view.View = (*Report)(nil)

// New returns an empty Report.
func New(o Options) *Report {
	return &Report{opt: o, zoneIndex: map[zoneKey]int{}, byCause: map[incident.Cause]int{}}
}

// Event folds one event; the session and agg already include it.
func (r *Report) Event(ev event.Event, agg *aggregate.Aggregator) error {
	if ms, ok := ev.(*event.MemSnapshot); ok && ms.Snapshot == nil {
		return nil // When would dereference it, as the session knows
	}
	when := ev.When()
	if when.IsZero() {
		return nil
	}
	switch e := ev.(type) {
	case *event.MemSnapshot:
		r.addSnapshot(e)
	case *event.Tick:
		// The aggregator's counts of the interval this Tick closed: the
		// numbers `replay --json` prints for it.
		in := agg.IntervalCounters()
		c := r.tl.at(e.Time.Add(-e.Interval / 2))
		c.covered += in.Covered
		for o, n := range in.Allocs {
			c.allocs[o] += n
		}
		c.extfrag += in.Extfrag
		c.fragmenting += in.Fragmenting
		c.drops += in.Drops
		c.lost += in.ExtfragOverflow + in.CgroupOverflow
	case *event.AllocFail:
		// A duplicate is the kernel log's copy of a failure a hook already
		// reported: the aggregator does not count it, nor is it drawn twice.
		if !e.Duplicate && int(e.Order) < event.Orders {
			r.tl.at(when).fails[e.Order]++
			r.failedOrders[e.Order]++
		}
	case *event.NsSyscall:
		r.tl.at(when).nsFails++
		r.stall(0, when, e.Latency)
	case *event.NetnsCreate:
		r.stall(1, when, e.Latency)
	case *event.SlabCreate:
		r.stall(2, when, e.Latency)
	case *event.Stall:
		r.stall(3, when, e.Duration)
	case *event.MemStalls:
		// The kernel keeps log2 histograms, not each stall: the upper
		// bound of the highest non-empty bucket bounds the interval's
		// longest stall of the kind.
		for _, h := range e.Stalls {
			k, ok := memStallKind[h.Kind]
			if !ok {
				continue
			}
			for b := len(h.Buckets) - 1; b >= 0; b-- {
				if h.Buckets[b] > 0 {
					r.stall(k, when, time.Duration(uint64(1)<<(b+1)))
					break
				}
			}
		}
	case *event.KernelReport:
		if len(r.reports) < listedIncidents {
			r.reports = append(r.reports, kernelReport{Time: when, Kind: e.ReportKind, Header: e.Header,
				Lines: e.Source + " lines " + strconv.Itoa(e.FirstLine) + "-" + strconv.Itoa(e.LastLine)})
		}
	}
	return nil
}

// stall records the time a task spent in a watched call (stallKinds[kind]).
func (r *Report) stall(kind int, at time.Time, d time.Duration) {
	if d <= 0 {
		return
	}
	c := r.tl.at(at)
	for len(c.stalls) <= kind {
		c.stalls = append(c.stalls, 0)
	}
	c.stalls[kind] = max(c.stalls[kind], d)
}

func (r *Report) addSnapshot(e *event.MemSnapshot) {
	s := e.Snapshot
	c := r.tl.at(s.Time)
	for i := range s.Zones {
		z := &s.Zones[i]
		if z.Empty() && z.Managed == 0 {
			continue // a zone with no memory (Movable, Device on most machines)
		}
		k := zoneKey{z.Node, z.Name}
		zi, ok := r.zoneIndex[k]
		if !ok {
			zi = len(r.zones)
			r.zones = append(r.zones, k)
			r.zoneIndex[k] = zi
		}
		for len(c.zones) <= zi {
			c.zones = append(c.zones, zoneCell{})
		}
		var zc zoneCell
		zc.have = true
		n := min(len(z.FreeBlocks), event.Orders)
		r.orders = max(r.orders, n)
		for o := range n {
			zc.free[o] = z.FreeBlocks[o]
			zc.frag[o] = int16(z.FragIndex(o))
		}
		c.zones[zi].merge(&zc)
	}
}

// Incident keeps the incident for its card and marks it on the timeline.
func (r *Report) Incident(inc *incident.Incident, agg *aggregate.Aggregator) error {
	r.incidents++
	r.byCause[inc.Verdict.Cause]++
	if !inc.Time.IsZero() {
		r.tl.at(inc.Time).incidents++
	}
	if len(r.listed) < listedIncidents {
		r.listed = append(r.listed, listedIncident{inc.Time, inc.Verdict.Cause, incident.Headline(inc)})
	}
	switch {
	case len(r.cards) < keptCards/2:
		r.cards = append(r.cards, inc)
	case len(r.lastCards) < keptCards/2:
		r.lastCards = append(r.lastCards, inc)
	default:
		r.lastCards[r.lastNext] = inc
		r.lastNext = (r.lastNext + 1) % len(r.lastCards)
	}
	return nil
}

// Close takes the session totals and rankings.
func (r *Report) Close(agg *aggregate.Aggregator) error {
	r.summary = agg.Summary()
	r.top = agg.Top(aggregate.SortFragmenting, topCgroups)
	s := agg.Session()
	r.hooks = s.Hooks()
	r.start = s.Start()
	r.first, r.last = s.First(), s.Last()
	r.closed = true
	return nil
}

// keptIncidents returns the incidents drawn as cards, in stream order.
func (r *Report) keptIncidents() []*incident.Incident {
	out := slices.Clone(r.cards)
	out = append(out, r.lastCards[r.lastNext:]...)
	return append(out, r.lastCards[:r.lastNext]...)
}

// Render runs src through a pipeline into a Report and writes its HTML.
func Render(ctx context.Context, src event.Source, o Options, w io.Writer) error {
	rep := New(o)
	if err := pipeline.New(pipeline.Options{View: rep}).Run(ctx, src); err != nil {
		return err
	}
	return rep.WriteHTML(w)
}
