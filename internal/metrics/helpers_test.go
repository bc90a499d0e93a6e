package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/trace"
)

// newAgg is the one place the tests build an aggregator (the constructor
// is the aggregate package's to change).
func newAgg(evs ...event.Event) *aggregate.Aggregator {
	a := aggregate.New(nil)
	for _, ev := range evs {
		a.Add(ev)
	}
	return a
}

// replay feeds a recording to a new aggregator.
func replay(t testing.TB, path string) *aggregate.Aggregator {
	t.Helper()
	r, f, err := trace.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := newAgg()
	if err := (&trace.Source{Reader: r}).Run(context.Background(), a.Add); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return a
}

// lockedState is a Reader the way the agent has one: a lock the pipeline
// holds while it adds events, and Read holding it while f runs.
type lockedState struct {
	mu sync.Mutex
	s  State
}

func (l *lockedState) Read(f func(State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l.s)
}

func (l *lockedState) add(evs ...event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range evs {
		l.s.Agg.Add(ev)
	}
}

// exposition fetches reg's metrics over HTTP as a scraper would.
func exposition(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4") // the text format, which promtool reads
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// families is a parsed scrape.
type families map[string]*dto.MetricFamily

func scrape(t testing.TB, reg *prometheus.Registry) families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(exposition(t, reg)))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func labelsOfMetric(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// get returns the value of the series of name whose labels include kv
// (name, value pairs), and whether exactly one matched.
func (f families) get(name string, kv ...string) (float64, bool) {
	var v float64
	n := 0
	for _, m := range f[name].GetMetric() {
		l := labelsOfMetric(m)
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if l[kv[i]] != kv[i+1] {
				match = false
				break
			}
		}
		if match {
			v = valueOf(m)
			n++
		}
	}
	return v, n == 1
}

// want fails unless the one series of name with labels kv has value v.
func (f families) want(t testing.TB, v float64, name string, kv ...string) {
	t.Helper()
	got, ok := f.get(name, kv...)
	if !ok {
		t.Errorf("%s%v: no single series (have %d in the family)", name, kv, len(f[name].GetMetric()))
		return
	}
	if got != v {
		t.Errorf("%s%v = %v, want %v", name, kv, got, v)
	}
}

// sum adds every series of a family.
func (f families) sum(name string) float64 {
	var s float64
	for _, m := range f[name].GetMetric() {
		s += valueOf(m)
	}
	return s
}

// series maps each series of a family, keyed by its sorted labels, to its
// value.
func (f families) series(name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f[name].GetMetric() {
		var ks []string
		for k, v := range labelsOfMetric(m) {
			ks = append(ks, k+"="+v)
		}
		sort.Strings(ks)
		out[strings.Join(ks, ",")] = valueOf(m)
	}
	return out
}
