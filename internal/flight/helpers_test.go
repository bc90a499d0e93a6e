package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/trace"
)

// clock is an injectable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// model is a fake session model: the State a pipeline would supply, fed
// after the recorder has seen each event (the tap comes first).
type model struct {
	start   *event.Start
	cgroups map[uint64]event.CgroupPath
	snap    *event.MemSnapshot
}

func (m *model) add(ev event.Event) {
	switch e := ev.(type) {
	case *event.Start:
		c := *e
		m.start, m.cgroups, m.snap = &c, map[uint64]event.CgroupPath{}, nil
	case *event.CgroupPath:
		m.cgroups[e.ID] = *e
	case *event.MemSnapshot:
		m.snap = e
	}
}

func (m *model) State() (*event.Start, []event.CgroupPath, *event.MemSnapshot) {
	var live []event.CgroupPath
	for _, id := range slices.Sorted(maps.Keys(m.cgroups)) {
		if c := m.cgroups[id]; !c.Removed {
			live = append(live, c)
		}
	}
	return m.start, live, m.snap
}

// rig is a Recorder on a temporary data dir with a fake clock and model,
// and what it was given and logged.
type rig struct {
	t     testing.TB
	dir   string
	clock *clock
	model *model
	rec   *Recorder
	mu    sync.Mutex
	logs  []string
	wrote []string // renders of the events written, in order
	segOf []string // the segment each written event went to
}

func newRig(t testing.TB, opt Options) *rig {
	t.Helper()
	g := &rig{t: t, dir: opt.Dir, clock: &clock{t: aggtest.T0}, model: &model{}}
	if g.dir == "" {
		g.dir = t.TempDir()
	}
	g.open(opt)
	return g
}

// open (re)opens the recorder on the rig's dir, as an agent restart does.
func (g *rig) open(opt Options) {
	g.t.Helper()
	opt.Dir = g.dir
	if opt.Now == nil {
		opt.Now = g.clock.Now
	}
	opt.State = g.model.State
	opt.Logf = func(format string, args ...any) {
		g.mu.Lock()
		g.logs = append(g.logs, fmt.Sprintf(format, args...))
		g.mu.Unlock()
	}
	r, err := Open(opt)
	if err != nil {
		g.t.Fatal(err)
	}
	g.rec = r
	g.t.Cleanup(func() { r.Close() })
}

func (g *rig) write(evs ...event.Event) {
	g.t.Helper()
	for _, ev := range evs {
		if err := g.rec.Write(ev); err != nil {
			g.t.Fatal(err)
		}
		g.model.add(ev)
		g.wrote = append(g.wrote, render(g.t, ev))
		g.segOf = append(g.segOf, filepath.Base(g.rec.Stats().Current))
	}
}

func (g *rig) close() {
	g.t.Helper()
	if err := g.rec.Close(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *rig) segments() []segment {
	g.t.Helper()
	segs, err := listSegments(filepath.Join(g.dir, segmentsDir))
	if err != nil {
		g.t.Fatal(err)
	}
	return segs
}

func (g *rig) logged() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.logs)
}

// Events of a session starting at aggtest.T0+off: ticks one second apart,
// with cgroup paths and snapshots among them.
func start(off time.Duration) *event.Start {
	s := aggtest.Start()
	s.Time = s.Time.Add(off)
	return s
}

func tick(at time.Time, n uint64) *event.Tick {
	tk := &event.Tick{Time: at, Interval: time.Second, Drops: n}
	tk.Allocs[3][0] = n
	tk.Cgroups = []event.CgroupAlloc{{CgroupID: aggtest.PodCgroup, HighOrder: n}}
	return tk
}

func cgroup(at time.Time, id uint64, path string, removed bool) *event.CgroupPath {
	return &event.CgroupPath{Time: at, ID: id, Path: path, Removed: removed}
}

func snap(at time.Time) *event.MemSnapshot { return aggtest.Snapshot(at, "interval") }

// render captures an event as text, since readers reuse their events:
// kind, JSON and the tick counters its JSON leaves out.
func render(t testing.TB, ev event.Event) string {
	t.Helper()
	var allocs any
	if tk, ok := ev.(*event.Tick); ok {
		allocs = tk.Allocs
	}
	b, err := json.Marshal([]any{ev.Kind().String(), ev, allocs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readFile replays one trace file alone.
func readFile(t testing.TB, path string) ([]string, *trace.TailError) {
	t.Helper()
	r, f, err := trace.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		var tail *trace.TailError
		if errors.As(err, &tail) {
			return out, tail
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, render(t, ev))
	}
}

// readDir reads a data dir as one recording.
func readDir(t testing.TB, dir string, since, until time.Time) ([]string, []string) {
	t.Helper()
	src, err := OpenDir(dir, since, until)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if err := src.Run(context.Background(), func(ev event.Event) { out = append(out, render(t, ev)) }); err != nil {
		t.Fatal(err)
	}
	return out, src.Warnings()
}

// same fails the test where got and want differ, naming the first place.
func same(t testing.TB, what string, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d of %d:\n got %.300s\nwant %.300s", what, i, len(want), got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
}

// kinds lists the kinds of rendered events.
func kinds(evs []string) string {
	var k []string
	for _, e := range evs {
		var v []json.RawMessage
		json.Unmarshal([]byte(e), &v)
		k = append(k, strings.Trim(string(v[0]), `"`))
	}
	return strings.Join(k, ",")
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
