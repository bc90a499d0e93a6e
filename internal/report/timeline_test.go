package report

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/pipeline"
)

// Doubling the width merges whole pairs: counts add up, the fewest free
// blocks and the highest index win, and the origin stays a multiple of the
// width, also when that moves it one old cell earlier.
func TestTimelineCoarsen(t *testing.T) {
	var tl timeline
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 100_000_000, time.UTC) // an odd 100 ms cell: the 200 ms origin moves back
	for i := range 6 {
		c := tl.at(t0.Add(time.Duration(i) * firstWidth))
		c.fails[3] = uint64(i + 1)
		c.zones = []zoneCell{{have: true}}
		c.zones[0].free[3] = uint64(10 - i)
		c.zones[0].frag[3] = int16(i * 100)
	}
	tl.coarsen()
	if tl.width != 2*firstWidth || !tl.origin.Equal(t0.Add(-firstWidth)) || len(tl.cells) != 4 {
		t.Fatalf("width %v origin %v cells %d", tl.width, tl.origin, len(tl.cells))
	}
	// old cells 0..5 -> new 0,1,1,2,2,3
	wantFails := []uint64{1, 2 + 3, 4 + 5, 6}
	wantFree := []uint64{10, 8, 6, 5}
	wantFrag := []int16{0, 200, 400, 500}
	for i, c := range tl.cells {
		if c.fails[3] != wantFails[i] || c.zones[0].free[3] != wantFree[i] || c.zones[0].frag[3] != wantFrag[i] {
			t.Errorf("cell %d: fails %d free %d frag %d, want %d %d %d", i, c.fails[3], c.zones[0].free[3],
				c.zones[0].frag[3], wantFails[i], wantFree[i], wantFrag[i])
		}
	}
}

// A 24 h session fits in maxCells columns and every failure keeps its
// mark: the cell of each failed allocation counts it, the counts add up,
// and the heatmaps mark every (column, order) that had one.
func TestDownsamplingKeepsEveryFailure(t *testing.T) {
	src := &synthetic{Span: 24 * time.Hour, BurstEvery: 7*time.Minute + 13*time.Second, Seed: 1}
	rep := New(Options{Title: "synthetic", Input: InputDataDir})
	if err := pipeline.New(pipeline.Options{View: rep}).Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	tl := &rep.tl
	if len(tl.cells) > maxCells || len(tl.cells) < maxCells/2 {
		t.Errorf("%d cells of %v for 24 h: want between %d and %d", len(tl.cells), tl.width, maxCells/2, maxCells)
	}
	marked := map[int]bool{}
	for _, f := range src.Failures {
		i := int(f.Time.Sub(tl.origin) / tl.width)
		if tl.cells[i].fails[f.Order] == 0 {
			t.Fatalf("failure at %v is in no cell", f.Time)
		}
		marked[i] = true
	}
	var total uint64
	for i := range tl.cells {
		total += tl.cells[i].fails[6]
	}
	if total != uint64(len(src.Failures)) || rep.incidents != len(src.Failures) {
		t.Errorf("%d failures in cells, %d incidents, want %d", total, rep.incidents, len(src.Failures))
	}
	if len(rep.zones) != 3 {
		t.Fatalf("zones %v", rep.zones)
	}
	for zi := range rep.zones {
		ch, err := rep.heatmap(zi)
		if err != nil {
			t.Fatal(err)
		}
		var marks int
		for _, s := range ch.Series {
			if s.Name == "failed allocation" {
				marks = s.Points
			}
		}
		if marks != len(marked) {
			t.Errorf("zone %v: %d failure marks, want one for each of %d columns with failures", rep.zones[zi], marks, len(marked))
		}
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("FRAGSCOPE_REPORT_OUT"); dir != "" {
		os.WriteFile(filepath.Join(dir, "synthetic-24h.html"), html.Bytes(), 0o644)
	}
	if n := html.Len(); n > 3<<20 {
		t.Errorf("24 h report is %d bytes: want under 3 MiB", n)
	}
	if len(rep.keptIncidents()) != keptCards || !bytes.Contains(html.Bytes(), []byte("listed below but not drawn in full")) {
		t.Errorf("%d cards kept of %d incidents", len(rep.keptIncidents()), rep.incidents)
	}
}

// The time axis labels 2 to 7 round clock times, whatever the span, each
// written differently.
func TestClockTicks(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 13, 7, 23, 400_000_000, time.UTC)
	for _, span := range []time.Duration{800 * time.Millisecond, 11 * time.Second, 7 * time.Minute, 2 * time.Hour, 24 * time.Hour, 9 * 24 * time.Hour, 400 * 24 * time.Hour} {
		var labels []time.Time
		for _, tk := range (clockTicks{}).Ticks(unix(t0), unix(t0.Add(span))) {
			if tk.Label != "" {
				labels = append(labels, time.Unix(0, int64(tk.Value*1e9)).UTC())
			}
		}
		if len(labels) < 2 || len(labels) > 7 {
			t.Errorf("span %v: %d labels %v", span, len(labels), labels)
			continue
		}
		seen := map[string]bool{}
		for _, tk := range timeTicks(span).Ticks(unix(t0), unix(t0.Add(span))) {
			if tk.Label != "" && seen[tk.Label] {
				t.Errorf("span %v: label %q twice", span, tk.Label)
			}
			seen[tk.Label] = true
		}
		step := labels[1].Sub(labels[0]).Round(time.Millisecond)
		for _, l := range labels {
			if l.Round(time.Millisecond).Truncate(step) != l.Round(time.Millisecond) {
				t.Errorf("span %v: label %v is not a multiple of its step %v", span, l, step)
			}
		}
	}
}
