package metrics

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// benchAgg is a session of n containers' cgroups, each with fallbacks and
// allocation counters in each of ticks intervals, and a snapshot.
func benchAgg(n, ticks int) *aggregate.Aggregator {
	a := newAgg(aggtest.Start(), aggtest.Snapshot(aggtest.T0, "start"))
	for i := range n {
		a.Add(&event.CgroupPath{Time: aggtest.T0, ID: uint64(10000 + i),
			Path:    fmt.Sprintf("/kubepods/burstable/pod%08x-0000-4000-8000-%012x/%064x", i, i, i),
			PodName: fmt.Sprintf("web-%d", i), PodNamespace: "shop"})
	}
	for k := range ticks {
		tk := &event.Tick{Time: aggtest.At(time.Duration(k+1) * time.Second), Interval: time.Second}
		for i := range n {
			id := uint64(10000 + i)
			tk.Extfrag = append(tk.Extfrag, event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id,
				AllocMT: aggtest.Unmovable, FallbackMT: aggtest.Movable, Fragmenting: i%3 == 0}, Count: uint64(i%97 + k)})
			ca := event.CgroupAlloc{CgroupID: id, HighOrder: uint64(i % 13), Failures: uint64(i % 7 / 6)}
			ca.Unmovable[4] = uint64(i % 11)
			tk.Cgroups = append(tk.Cgroups, ca)
		}
		tk.Allocs[0][aggtest.Unmovable] = 1000
		a.Add(tk)
	}
	return a
}

// BenchmarkScrape4096Cgroups is one HTTP scrape of the registry (encoding
// included) with 4096 cgroups known; lock-ms is the time Read held the
// pipeline's lock.
func BenchmarkScrape4096Cgroups(b *testing.B) {
	st := &timedState{lockedState: lockedState{s: State{Agg: benchAgg(4096, 3)}}}
	h := Handler(NewRegistry(st, Options{}))
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	b.ReportMetric(st.held.Seconds()*1e3/float64(b.N), "lock-ms/op")
}

type timedState struct {
	lockedState
	held time.Duration
}

func (t *timedState) Read(f func(State)) {
	t.lockedState.Read(func(s State) {
		start := time.Now()
		f(s)
		t.held += time.Since(start)
	})
}

// TestScrape4096Cgroups keeps the benchmark's session honest: every cgroup
// is counted, the cap holds.
func TestScrape4096Cgroups(t *testing.T) {
	a := benchAgg(4096, 3)
	f := scrape(t, NewRegistry(&lockedState{s: State{Agg: a}}, Options{}))
	checkSummary(t, f, a)
	if n := len(f[famFrag].GetMetric()); n > DefaultTopCgroups*DefaultMaxCgroupsFactor+1 || n < DefaultTopCgroups+1 {
		t.Errorf("%d fragmenting series", n)
	}
}
