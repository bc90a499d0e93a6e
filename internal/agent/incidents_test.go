package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/incident"
)

type pinCall struct {
	out      string
	from, to time.Time
}

func newTestKeeper(t *testing.T, now *time.Time, pins *[]pinCall) *keeper {
	t.Helper()
	return &keeper{
		dir: t.TempDir(), before: 10 * time.Minute, after: time.Minute,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		pin: func(out string, from, to time.Time) error {
			*pins = append(*pins, pinCall{out, from, to})
			return os.WriteFile(out, []byte("trace"), 0o600)
		},
		now: func() time.Time { return *now },
	}
}

func inc(at time.Time, tid uint32) *incident.Incident {
	return &incident.Incident{Time: at, Syscall: incident.Syscall{Name: "unshare", ErrnoName: "ENOSPC"},
		Task: incident.Task{TID: tid, Comm: "runc"}, Verdict: incident.Verdict{Cause: incident.CauseNamespaceLimit}}
}

func jsonLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var obj map[string]any
		if err := json.Unmarshal(l, &obj); err != nil {
			t.Fatalf("%s: a line is not JSON: %q", path, l)
		}
		n++
	}
	return n
}

// Incidents whose windows overlap share one group: one JSON file with a
// line each, appended as they come, and one pin of the joined window once
// the last one's after-window has passed; a later one starts a new group.
func TestKeeperGroups(t *testing.T) {
	now := time.Unix(100000, 0)
	var pins []pinCall
	k := newTestKeeper(t, &now, &pins)
	agg := aggregate.New(nil)
	t0 := now
	k.add(inc(t0, 1), agg)
	now = now.Add(30 * time.Second)
	k.add(inc(now, 2), agg)
	name := filepath.Join(k.incidentsDir(), incidentName(inc(t0, 1)))
	if n := jsonLines(t, name+".json"); n != 2 {
		t.Fatalf("%d lines in the group's JSON, want 2", n)
	}
	now = now.Add(59 * time.Second)
	k.pinDue(false)
	if len(pins) != 0 {
		t.Fatalf("pinned before the last incident's after-window passed: %+v", pins)
	}
	now = now.Add(2 * time.Second)
	k.pinDue(false)
	if len(pins) != 1 || pins[0].out != name+traceExt ||
		!pins[0].from.Equal(t0.Add(-10*time.Minute)) || !pins[0].to.Equal(t0.Add(30*time.Second+time.Minute)) {
		t.Fatalf("pins = %+v, want one of [t0-10m, t0+30s+1m] into %s", pins, name+traceExt)
	}
	// The window has passed: the next incident is a new group.
	now = now.Add(time.Hour)
	k.add(inc(now, 3), agg)
	if n := jsonLines(t, filepath.Join(k.incidentsDir(), incidentName(inc(now, 3)))+".json"); n != 1 {
		t.Errorf("new group: %d lines, want 1", n)
	}
}

// A kill in the middle of an append leaves a torn last line; the restart
// cuts it and pins the recording the kill prevented.
func TestKeeperRecover(t *testing.T) {
	now := time.Unix(100000, 0)
	var pins []pinCall
	k := newTestKeeper(t, &now, &pins)
	k.add(inc(now, 1), aggregate.New(nil))
	path := filepath.Join(k.incidentsDir(), incidentName(inc(now, 1))+".json")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"incident","time":"2026-`)
	f.Close()
	os.WriteFile(filepath.Join(k.incidentsDir(), ".x.fst.123.tmp"), nil, 0o600)

	k2 := newTestKeeper(t, &now, &pins)
	k2.dir = k.dir
	k2.recover()
	if n := jsonLines(t, path); n != 1 {
		t.Errorf("%d lines after recover, want the 1 whole one", n)
	}
	if _, err := os.Stat(filepath.Join(k.incidentsDir(), ".x.fst.123.tmp")); err == nil {
		t.Error("a pin's temporary file survived the restart")
	}
	k2.pinDue(false)
	if len(pins) != 1 || !pins[0].from.Equal(now.Add(-10*time.Minute)) {
		t.Errorf("recover pinned %+v, want the window of the kept incident", pins)
	}
}

// Incidents close out of time order (a long syscall, a late kernel
// report): the group's window only grows.
func TestKeeperWindowGrows(t *testing.T) {
	now := time.Unix(100000, 0)
	var pins []pinCall
	k := newTestKeeper(t, &now, &pins)
	agg := aggregate.New(nil)
	t0 := now
	k.add(inc(t0.Add(30*time.Second), 1), agg)
	k.add(inc(t0, 2), agg) // closed later, happened earlier
	now = now.Add(2 * time.Minute)
	k.pinDue(false)
	if len(pins) != 1 || !pins[0].from.Equal(t0.Add(-10*time.Minute)) || !pins[0].to.Equal(t0.Add(30*time.Second+time.Minute)) {
		t.Errorf("pins = %+v, want [t0-10m, t0+30s+1m]", pins)
	}
}

// A disk that refuses the JSON while the keeper pins: no data race (run
// with -race), the backlog stays bounded, nothing is lost silently.
func TestKeeperFailingDisk(t *testing.T) {
	now := time.Unix(100000, 0)
	var pins []pinCall
	k := newTestKeeper(t, &now, &pins)
	os.WriteFile(k.incidentsDir(), nil, 0o600) // a file where the directory should be: every write fails
	k.pin = func(string, time.Time, time.Time) error { return os.ErrPermission }
	agg := aggregate.New(nil)
	k.start()
	for i := range maxUnwritten + 10 {
		k.add(inc(now.Add(time.Duration(i)*time.Millisecond), uint32(i)), agg)
	}
	k.mu.Lock()
	g := k.open
	k.mu.Unlock()
	k.close()
	k.mu.Lock()
	defer k.mu.Unlock()
	if g == nil {
		t.Fatal("no open group")
	}
	if len(g.unwritten) > maxUnwritten || g.lost != 10 {
		t.Fatalf("after %d incidents on a failing disk: %d unwritten, %d dropped; want at most %d and 10", maxUnwritten+10, len(g.unwritten), g.lost, maxUnwritten)
	}
}
