package bench

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 1, 100}, 1}, // robust to one outlier
	}
	for _, c := range cases {
		orig := append([]float64(nil), c.in...)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range orig {
			if orig[i] != c.in[i] {
				t.Errorf("Median modified its input: %v", c.in)
			}
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Errorf("Median(nil) is not NaN")
	}
	if got := MedianDuration([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}); got != 2e6 {
		t.Errorf("MedianDuration = %v", got)
	}
}

func TestPair(t *testing.T) {
	// 131072 pages per run at 1030 ns; a hook adding 14 ns to each of
	// 131300 events (pages plus page tables and noise).
	p := Pair{BaselineNs: 131072 * 1030, EventsPerRun: 131300}
	p.TracedNs = p.BaselineNs + 14*p.EventsPerRun
	if got := p.AddedNsPerEvent(); math.Abs(got-14) > 1e-9 {
		t.Errorf("AddedNsPerEvent = %v, want 14", got)
	}
	want := 14 * 131300 / (131072 * 1030.0) * 100
	if got := p.SlowdownPct(); math.Abs(got-want) > 1e-9 {
		t.Errorf("SlowdownPct = %v, want %v", got, want)
	}
	// Faster traced run (noise): negative, not clamped.
	q := Pair{BaselineNs: 1000, TracedNs: 990, EventsPerRun: 10}
	if q.AddedNsPerEvent() != -1 || math.Abs(q.SlowdownPct()+1) > 1e-9 {
		t.Errorf("negative: %v %v", q.AddedNsPerEvent(), q.SlowdownPct())
	}
	if !math.IsNaN(Pair{BaselineNs: 1, TracedNs: 2}.AddedNsPerEvent()) {
		t.Errorf("no events: want NaN")
	}
	if !math.IsNaN(Pair{TracedNs: 2, EventsPerRun: 1}.SlowdownPct()) {
		t.Errorf("no baseline: want NaN")
	}
}

func TestSummarize(t *testing.T) {
	pairs := []Pair{
		{BaselineNs: 1000, TracedNs: 1010, EventsPerRun: 10}, // +1 ns, 1 %
		{BaselineNs: 1200, TracedNs: 1230, EventsPerRun: 10}, // +3 ns, 2.5 %
		{BaselineNs: 1100, TracedNs: 1120, EventsPerRun: 12}, // +1.67 ns, 1.8 %
	}
	r := Summarize(pairs, 10)
	if r.Rounds != 3 || r.BaselineNsPerPage != 110 || r.TracedNsPerPage != 112 || r.EventsPerRun != 10 {
		t.Errorf("Summarize = %+v", r)
	}
	if math.Abs(r.AddedNsPerEvent-20.0/12) > 1e-9 || math.Abs(r.SlowdownPct-20.0/1100*100) > 1e-9 {
		t.Errorf("Summarize added/slowdown = %v/%v", r.AddedNsPerEvent, r.SlowdownPct)
	}
	if r.AddedMin != 1 || r.AddedMax != 3 {
		t.Errorf("Summarize range = %v..%v, want 1..3", r.AddedMin, r.AddedMax)
	}
	if e := Summarize(nil, 10); e.Rounds != 0 || !math.IsNaN(e.AddedMin) || !math.IsNaN(e.AddedNsPerEvent) {
		t.Errorf("Summarize(nil) = %+v", e)
	}
}

func TestCPUPercent(t *testing.T) {
	if got := CPUPercent(30, 100, 30*time.Second); math.Abs(got-1) > 1e-9 {
		t.Errorf("CPUPercent = %v, want 1", got)
	}
	if got := CPUPercent(150, 100, time.Second); got != 150 {
		t.Errorf("CPUPercent = %v, want 150 (two cores busy)", got)
	}
	if !math.IsNaN(CPUPercent(1, 0, time.Second)) || !math.IsNaN(CPUPercent(1, 100, 0)) {
		t.Errorf("want NaN for hz 0 or wall 0")
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{40, 10, 30, 20, 50}
	for _, c := range []struct{ p, want float64 }{{0, 10}, {50, 30}, {90, 46}, {100, 50}, {25, 20}} {
		if got := Percentile(xs, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Percentile(%v, %v) = %v, want %v", xs, c.p, got, c.want)
		}
	}
	if xs[0] != 40 {
		t.Errorf("Percentile modified its input: %v", xs)
	}
	if got := Percentile([]float64{7}, 90); got != 7 {
		t.Errorf("Percentile of one = %v", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Errorf("Percentile(nil) is not NaN")
	}
}
