package flight

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/snapshot"
	"github.com/fragscope/fragscope/internal/trace"
)

// A data dir reads as the stream that was written: across rotations (the
// preambles restate what was read already) and across an agent restart
// (the new session's Start passes through).
func TestOpenDirIsTheStream(t *testing.T) {
	g := newRig(t, Options{SegmentBytes: 2 << 10})
	g.session(start(0), 400)
	g.close()
	first := len(g.segments())
	g.open(Options{SegmentBytes: 2 << 10})
	g.session(start(time.Hour), 100)
	g.close()
	segs := g.segments()
	if first < 3 || len(segs) < first+2 {
		t.Fatalf("%d segments, then %d after the restart: want rotations in both sessions", first, len(segs))
	}
	got, warns := readDir(t, g.dir, time.Time{}, time.Time{})
	if len(warns) != 0 {
		t.Errorf("warnings %q", warns)
	}
	same(t, "data dir", got, g.wrote)
	if k := kinds(got); strings.Count(k, "start") != 2 {
		t.Errorf("%d Starts in the recording, want 2 (one per session)", strings.Count(k, "start"))
	}
}

// cut is what a window of the stream must read as: the session's Start, the
// last path of each live cgroup and the last snapshot before since, then
// the events inside [since, until].
func cut(evs []event.Event, since, until time.Time) []event.Event {
	var st *event.Start
	cgroups := map[uint64]*event.CgroupPath{}
	var sn *event.MemSnapshot
	var out []event.Event
	for _, ev := range evs {
		t := ev.When()
		if e, ok := ev.(*event.Start); ok {
			st, cgroups, sn = e, map[uint64]*event.CgroupPath{}, nil
		}
		if t.Before(since) {
			switch e := ev.(type) {
			case *event.CgroupPath:
				cgroups[e.ID] = e
			case *event.MemSnapshot:
				sn = e
			}
			continue
		}
		if t.After(until) {
			break
		}
		if ev == event.Event(st) {
			out = append(out, st)
			continue
		}
		if out == nil {
			out = append(out, st)
			for _, id := range slices.Sorted(maps.Keys(cgroups)) {
				if !cgroups[id].Removed {
					out = append(out, cgroups[id])
				}
			}
			if sn != nil {
				out = append(out, sn)
			}
		}
		out = append(out, ev)
	}
	return out
}

func TestOpenDirWindow(t *testing.T) {
	g := newRig(t, Options{SegmentBytes: 2 << 10})
	var evs []event.Event
	add := func(ev event.Event) { evs = append(evs, ev); g.write(ev) }
	add(start(0))
	for i := 1; i <= 600; i++ {
		at := aggtest.At(time.Duration(i) * time.Second)
		g.clock.t = at
		switch {
		case i%40 == 0:
			add(cgroup(at, uint64(i%120), "/kubepods/p"+at.Format("150405"), i%80 == 0))
		case i%13 == 0:
			add(snap(at))
		}
		add(tick(at, uint64(i)))
	}
	g.close()
	// The whole directory as one file, for Window.
	whole := filepath.Join(t.TempDir(), "whole.fst")
	if err := Pin(g.dir, whole, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]time.Duration{{0, 30 * time.Second}, {301 * time.Second, 355 * time.Second}, {280 * time.Second, 400 * time.Second}, {320 * time.Second, 400 * time.Second}, {500 * time.Second, time.Hour}} {
		since, until := aggtest.At(w[0]), aggtest.At(w[1])
		got, warns := readDir(t, g.dir, since, until)
		if len(warns) != 0 {
			t.Errorf("warnings %q", warns)
		}
		var want []string
		for _, ev := range cut(evs, since, until) {
			want = append(want, render(t, ev))
		}
		same(t, "window "+w[0].String()+"-"+w[1].String(), got, want)

		r, f, err := trace.Open(whole)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		Window(&trace.Source{Reader: r}, since, until).Run(t.Context(), func(ev event.Event) { got = append(got, render(t, ev)) })
		f.Close()
		same(t, "file window "+w[0].String()+"-"+w[1].String(), got, want)
	}

	// Segments wholly before the window are not read: their successors'
	// preambles restate the state.
	src, err := OpenDir(g.dir, aggtest.At(500*time.Second), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	src.Run(t.Context(), func(event.Event) {})
	read, total := src.Progress()
	var all int64
	for _, s := range g.segments() {
		all += s.size
	}
	if read != total || total >= all/2 {
		t.Errorf("read %d of %d bytes for the last sixth of %d bytes", read, total, all)
	}
}

// A torn tail in the middle of the directory (the agent was killed, then
// restarted) is a warning: reading goes on with the next segment.
func TestTornMiddleSegment(t *testing.T) {
	g := newRig(t, Options{SegmentBytes: 2 << 10})
	g.session(start(0), 300)
	g.close()
	segs := g.segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want 3 or more", len(segs))
	}
	torn := segs[1]
	path := filepath.Join(g.dir, segmentsDir, torn.name)
	if err := os.Truncate(path, torn.size-7); err != nil {
		t.Fatal(err)
	}
	alone, tail := readFile(t, path)
	if tail == nil {
		t.Fatal("truncated segment reads clean")
	}
	got, warns := readDir(t, g.dir, time.Time{}, time.Time{})
	if len(warns) != 1 || !strings.Contains(warns[0], torn.name) || !strings.Contains(warns[0], "damaged at byte") {
		t.Fatalf("warnings %q, want one naming %s", warns, torn.name)
	}
	// Lost: the events of the torn segment after its last complete record.
	var want []string
	seen := 0
	for i, ev := range g.wrote {
		if g.segOf[i] == torn.name {
			seen++
			if seen > len(alone)-1-segmentPreamble(t, alone) {
				continue
			}
		}
		want = append(want, ev)
	}
	same(t, "recording with a torn middle segment", got, want)
}

// segmentPreamble is the preamble length of a rendered segment.
func segmentPreamble(t *testing.T, evs []string) int {
	t.Helper()
	var v []json.RawMessage
	var st event.Start
	if err := json.Unmarshal([]byte(evs[0]), &v); err != nil || json.Unmarshal(v[1], &st) != nil {
		t.Fatalf("not a rendered start: %.100s", evs[0])
	}
	return st.Preamble
}

func TestOpenDirErrors(t *testing.T) {
	dir := t.TempDir()
	if IsDataDir(dir) {
		t.Error("an empty dir is a data dir")
	}
	if _, err := OpenDir(dir, time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "not a fragscope data dir") {
		t.Errorf("OpenDir of a plain dir: %v", err)
	}
	os.Mkdir(filepath.Join(dir, segmentsDir), 0o700)
	if !IsDataDir(dir) {
		t.Error("a dir with segments/ is not a data dir")
	}
	if _, err := OpenDir(dir, time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "has no recorded segments") {
		t.Errorf("OpenDir of an empty data dir: %v", err)
	}
	f := filepath.Join(dir, "t.fst")
	os.WriteFile(f, nil, 0o600)
	if IsDataDir(f) {
		t.Error("a file is a data dir")
	}
}

// A window that begins after a failure's at-failure capture restates the
// latest /proc snapshot as its state, not the capture: the capture is that
// failure's (one node's zones), and the correlator would take it for the
// window's first failure.
func TestWindowStateIsNoCapture(t *testing.T) {
	var got []event.Event
	j := &joiner{since: aggtest.At(10 * time.Second), emit: func(ev event.Event) { got = append(got, ev) }}
	j.add(start(0))
	j.add(snap(aggtest.At(5 * time.Second)))
	j.add(aggtest.Snapshot(aggtest.At(6*time.Second), snapshot.ReasonAtFailure))
	j.add(tick(aggtest.At(11*time.Second), 1))
	if len(got) != 3 {
		t.Fatalf("emitted %d events, want Start, the interval snapshot, the Tick", len(got))
	}
	if ms, ok := got[1].(*event.MemSnapshot); !ok || ms.Reason != "interval" {
		t.Errorf("window state %s %+v, want the interval snapshot", got[1].Kind(), got[1])
	}
}
