package bench

import (
	"math"
	"slices"
	"time"
)

// Median returns the median of xs (the mean of the middle two for an even
// count), or NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MedianDuration is Median over durations, in nanoseconds.
func MedianDuration(ds []time.Duration) float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d.Nanoseconds())
	}
	return Median(xs)
}

// Pair is one round's comparison of a traced condition with the baseline
// timed in the same round: the median wall time of one workload run in each,
// and the mm_page_alloc events the tracer counted per run.
type Pair struct {
	BaselineNs   float64
	TracedNs     float64
	EventsPerRun float64
}

// AddedNsPerEvent is the extra time per traced event: the difference of the
// run times divided by the events one run fires.
func (p Pair) AddedNsPerEvent() float64 {
	if p.EventsPerRun <= 0 {
		return math.NaN()
	}
	return (p.TracedNs - p.BaselineNs) / p.EventsPerRun
}

// SlowdownPct is how much longer a traced run takes, in percent of the baseline.
func (p Pair) SlowdownPct() float64 {
	if p.BaselineNs <= 0 {
		return math.NaN()
	}
	return (p.TracedNs/p.BaselineNs - 1) * 100
}

// Result summarizes the rounds of one condition; every figure is the
// median over rounds of that round's figure, so each difference is taken
// between runs timed close together.
type Result struct {
	Rounds            int
	BaselineNsPerPage float64
	TracedNsPerPage   float64
	AddedNsPerEvent   float64
	SlowdownPct       float64
	EventsPerRun      float64
	// The spread of the per-round added ns/event: how far apart the
	// rounds were, the noise the median stands against.
	AddedMin, AddedMax float64
}

// Summarize reduces the rounds of one condition; pagesPerRun converts run
// times to time per page.
func Summarize(pairs []Pair, pagesPerRun float64) Result {
	var base, traced, added, slow, events []float64
	for _, p := range pairs {
		base = append(base, p.BaselineNs/pagesPerRun)
		traced = append(traced, p.TracedNs/pagesPerRun)
		added = append(added, p.AddedNsPerEvent())
		slow = append(slow, p.SlowdownPct())
		events = append(events, p.EventsPerRun)
	}
	lo, hi := math.NaN(), math.NaN()
	if len(added) > 0 {
		lo, hi = slices.Min(added), slices.Max(added)
	}
	return Result{
		AddedMin:          lo,
		AddedMax:          hi,
		Rounds:            len(pairs),
		BaselineNsPerPage: Median(base),
		TracedNsPerPage:   Median(traced),
		AddedNsPerEvent:   Median(added),
		SlowdownPct:       Median(slow),
		EventsPerRun:      Median(events),
	}
}

// CPUPercent is CPU time, given in clock ticks of hz per second, as a
// percentage of one core over wall.
func CPUPercent(ticks, hz uint64, wall time.Duration) float64 {
	if hz == 0 || wall <= 0 {
		return math.NaN()
	}
	return float64(ticks) / float64(hz) / wall.Seconds() * 100
}

// Percentile returns the p-th percentile (0..100) of xs by linear
// interpolation between the closest ranks (NumPy's default), or NaN for
// none. xs is not modified.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || math.IsNaN(p) {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	p = min(max(p, 0), 100)
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo == len(s)-1 {
		return s[lo]
	}
	return s[lo] + (s[lo+1]-s[lo])*(pos-float64(lo))
}
