package flight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// session writes a Start and n ticks one second apart (the clock follows),
// with a cgroup path every 10 ticks and a snapshot every 7.
func (g *rig) session(st *event.Start, n int) {
	g.t.Helper()
	g.write(st)
	for i := 1; i <= n; i++ {
		at := st.Time.Add(time.Duration(i) * time.Second)
		g.clock.t = at
		if i%10 == 0 {
			g.write(cgroup(at, uint64(2000+i), fmt.Sprintf("/kubepods/pod%d", i), false))
		}
		if i%7 == 0 {
			g.write(snap(at))
		}
		g.write(tick(at, uint64(i)))
	}
}

func TestRotationBySize(t *testing.T) {
	const limit = 4 << 10
	g := newRig(t, Options{SegmentBytes: limit})
	g.write(start(0), cgroup(aggtest.T0, 11, "/kubepods/a", false))
	for i := 1; i <= 2000; i++ {
		at := aggtest.At(time.Duration(i) * time.Second)
		if i%50 == 0 {
			g.write(snap(at))
		}
		g.write(tick(at, uint64(i)))
	}
	g.close()
	segs := g.segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments for %d bytes, want several of %d", len(segs), segs[0].size, limit)
	}
	// Rotation happens at the first write after the limit is passed: a
	// closed segment is over the limit by less than one record.
	for _, s := range segs[:len(segs)-1] {
		if s.size < limit || s.size > limit+1024 {
			t.Errorf("segment %s is %d bytes, want %d to %d", s.name, s.size, limit, limit+1024)
		}
	}
	if st := g.rec.Stats(); st.Segments != len(segs) || st.Events != uint64(len(g.wrote)) {
		t.Errorf("stats %+v, want %d segments and %d events", st, len(segs), len(g.wrote))
	}
}

func TestRotationByAge(t *testing.T) {
	g := newRig(t, Options{SegmentAge: time.Minute})
	g.session(start(0), 299) // just under 5 minutes of ticks
	g.close()
	segs := g.segments()
	if len(segs) != 5 {
		t.Fatalf("%d segments for 5 minutes at 1 a minute: %v", len(segs), segs)
	}
	for i, s := range segs {
		got, _ := segmentTime(s.name)
		if want := aggtest.T0.Add(time.Duration(i) * time.Minute); !got.Equal(want) {
			t.Errorf("segment %d created %v, want %v", i, got, want)
		}
	}
}

// Names sort after every existing one even when the clock goes back, and
// never collide.
func TestNamesAfterClockStep(t *testing.T) {
	g := newRig(t, Options{SegmentAge: time.Minute})
	g.session(start(0), 120)
	g.close()
	before := g.segments()
	g.clock.t = aggtest.T0.Add(-time.Hour)
	g.open(Options{SegmentAge: time.Minute})
	g.write(start(-time.Hour), tick(g.clock.t, 1))
	after := g.segments()
	if len(after) != len(before)+1 {
		t.Fatalf("%d segments after a restart, want %d", len(after), len(before)+1)
	}
	if last := after[len(after)-1].name; last <= before[len(before)-1].name {
		t.Errorf("new segment %s sorts before the old %s", last, before[len(before)-1].name)
	}
}

func TestRetentionBySize(t *testing.T) {
	const seg, retain = 4 << 10, 20 << 10
	g := newRig(t, Options{SegmentBytes: seg, RetainBytes: retain})
	var created []string
	g.write(start(0))
	for i := 1; i < 1500; i++ {
		g.write(tick(aggtest.At(time.Duration(i)*time.Second), uint64(i)))
		if cur := filepath.Base(g.rec.Stats().Current); len(created) == 0 || created[len(created)-1] != cur {
			created = append(created, cur)
		}
	}
	segs := g.segments()
	var names []string
	var closed int64
	for _, s := range segs {
		names = append(names, s.name)
		if s.name != created[len(created)-1] {
			closed += s.size
		}
	}
	if len(created) < 10 {
		t.Fatalf("only %d segments created", len(created))
	}
	// The oldest went first: what is left is the newest ones, current included.
	if !slices.Equal(names, created[len(created)-len(names):]) {
		t.Fatalf("kept %v, want the newest of %v", names, created)
	}
	if closed > retain {
		t.Errorf("closed segments total %d bytes, budget %d", closed, retain)
	}
	if len(names) < retain/seg-1 {
		t.Errorf("kept %d segments, the budget holds %d", len(names), retain/seg)
	}
	g.close()

	// A budget smaller than one segment keeps the current one only.
	g.open(Options{SegmentBytes: seg, RetainBytes: 1})
	g.write(start(time.Hour))
	for i := 0; g.rec.Stats().Segments < 3; i++ {
		g.write(tick(aggtest.At(time.Hour+time.Duration(i)*time.Second), 1))
	}
	if segs := g.segments(); len(segs) != 1 || filepath.Join(g.dir, segmentsDir, segs[0].name) != g.rec.Stats().Current {
		t.Errorf("kept %v, want the current segment %s alone", segs, g.rec.Stats().Current)
	}
}

func TestRetentionByAge(t *testing.T) {
	g := newRig(t, Options{SegmentBytes: 4 << 10})
	incident := filepath.Join(g.dir, incidentsDir, "old.fst")
	os.MkdirAll(filepath.Dir(incident), 0o700)
	os.WriteFile(incident, []byte("x"), 0o600)
	g.clock.t = time.Now()
	g.write(start(0))
	for i := 0; len(g.segments()) < 6; i++ {
		g.write(tick(aggtest.At(time.Duration(i)*time.Second), uint64(i)))
	}
	segs := g.segments()
	old := time.Now().Add(-25 * time.Hour)
	age := func(names ...string) {
		for _, n := range names {
			if err := os.Chtimes(filepath.Join(g.dir, segmentsDir, n), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Chtimes(incident, old, old)
	// The two oldest are a day old: the next rotation deletes them.
	age(segs[0].name, segs[1].name)
	for n := len(g.segments()); len(g.segments()) == n; {
		g.write(tick(g.clock.t, 1))
	}
	var names []string
	for _, s := range g.segments() {
		names = append(names, s.name)
	}
	if slices.Contains(names, segs[0].name) || slices.Contains(names, segs[1].name) {
		t.Errorf("segments a day old kept: %v", names)
	}
	if !slices.Contains(names, segs[2].name) {
		t.Errorf("recent segment %s deleted", segs[2].name)
	}
	g.close()

	// At Open every segment is closed: all a day old go.
	for _, s := range g.segments() {
		age(s.name)
	}
	g.open(Options{})
	if segs := g.segments(); len(segs) != 0 {
		t.Errorf("Open kept %d segments a day old", len(segs))
	}
	if _, err := os.Stat(incident); err != nil {
		t.Errorf("retention touched incidents/: %v", err)
	}
}

// A segment replays alone: Start, the live cgroups and the latest snapshot
// come before its own events.
func TestSegmentSelfContained(t *testing.T) {
	g := newRig(t, Options{SegmentAge: time.Minute})
	st := start(0)
	g.write(st,
		cgroup(aggtest.At(time.Second), 11, "/kubepods/a", false),
		cgroup(aggtest.At(time.Second), 12, "/kubepods/b", false),
		snap(aggtest.At(2*time.Second)),
		cgroup(aggtest.At(3*time.Second), 12, "/kubepods/b", true),
		tick(aggtest.At(4*time.Second), 4),
	)
	g.clock.Add(2 * time.Minute)
	last := tick(aggtest.At(2*time.Minute), 5)
	g.write(last)
	g.close()
	segs := g.segments()
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2", len(segs))
	}
	got, tail := readFile(t, filepath.Join(g.dir, segmentsDir, segs[1].name))
	if tail != nil {
		t.Fatal(tail)
	}
	head := *st
	head.Preamble = 2
	want := []string{
		render(t, &head),
		render(t, cgroup(aggtest.At(time.Second), 11, "/kubepods/a", false)),
		render(t, snap(aggtest.At(2*time.Second))),
		render(t, last),
	}
	same(t, "second segment alone", got, want)
}

// flakyWriter is a segment writer on a disk that can be made full: then
// every write and flush fails with ENOSPC, as the trace writer's sticky
// error does.
type flakyWriter struct {
	segmentWriter
	full *atomic.Bool
}

var errFull = &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}

func (w flakyWriter) Write(ev event.Event) error {
	if w.full.Load() {
		return errFull
	}
	return w.segmentWriter.Write(ev)
}

func (w flakyWriter) Flush() error {
	if w.full.Load() {
		return errFull
	}
	return w.segmentWriter.Flush()
}

func TestPausedWhileFull(t *testing.T) {
	g := newRig(t, Options{})
	var full atomic.Bool
	var creates int
	g.rec.create = func(path string) (segmentWriter, error) {
		creates++
		w, err := createTrace(path)
		if err != nil {
			return nil, err
		}
		return flakyWriter{w, &full}, nil
	}
	g.write(start(0), tick(aggtest.At(time.Second), 1))
	full.Store(true)
	// Dropped while paused: a tick and a new cgroup that the next
	// segment's preamble must restate.
	g.write(tick(aggtest.At(2*time.Second), 2))
	g.write(cgroup(aggtest.At(2*time.Second), 77, "/kubepods/during-pause", false))
	for i := range 10 {
		g.clock.Add(time.Second / 2)
		g.write(tick(g.clock.t, uint64(10+i)))
	}
	st := g.rec.Stats()
	if !st.Paused || st.Dropped != 12 || st.Current != "" {
		t.Fatalf("stats while full %+v, want paused with 12 dropped", st)
	}
	logs := g.logged()
	if len(logs) != 1 || logs[0] != "flight recorder: "+g.dir+": no space left on device: recording paused; free space or lower --retain-size" {
		t.Fatalf("logged %q, want one pause line", logs)
	}
	if creates != 2 { // the first segment and one retry RetryEvery later
		t.Errorf("%d segment creations while full, want 2 (one retry per %s)", creates, RetryEvery)
	}
	full.Store(false)
	g.clock.Add(RetryEvery)
	after := tick(g.clock.t, 99)
	g.write(after)
	if st := g.rec.Stats(); st.Paused || st.Dropped != 12 {
		t.Fatalf("stats after space returned %+v", st)
	}
	if logs := g.logged(); len(logs) != 2 || !strings.Contains(logs[1], "recording resumed") {
		t.Fatalf("logged %q, want a resume line", logs)
	}
	g.close()
	got, warns := readDir(t, g.dir, time.Time{}, time.Time{})
	if len(warns) != 0 {
		t.Errorf("warnings %q", warns)
	}
	want := []string{g.wrote[0], g.wrote[1],
		render(t, cgroup(aggtest.At(2*time.Second), 77, "/kubepods/during-pause", false)), render(t, after)}
	same(t, "recording around the pause", got, want)
}

func TestOpenErrors(t *testing.T) {
	err := dataDirError("/x", &os.PathError{Op: "mkdir", Path: "/x/segments", Err: syscall.EACCES})
	if want := "data dir /x: permission denied: run as root or pass --data-dir"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Error("the errno is not kept")
	}
	if os.Geteuid() != 0 {
		dir := filepath.Join(t.TempDir(), "ro")
		os.Mkdir(dir, 0o500)
		if _, err := Open(Options{Dir: dir}); err == nil || err.Error() != "data dir "+dir+": permission denied: run as root or pass --data-dir" {
			t.Errorf("Open on an unwritable dir: %v", err)
		}
	}
	g := newRig(t, Options{})
	if _, err := Open(Options{Dir: g.dir}); err == nil || !strings.Contains(err.Error(), "in use by another fragscope agent") {
		t.Errorf("second Open of a locked dir: %v", err)
	}
	if err := g.rec.Write(tick(aggtest.T0, 1)); !errors.Is(err, errNoStart) {
		t.Errorf("tick before Start: %v, want errNoStart", err)
	}
}
