package flight

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
)

func TestPin(t *testing.T) {
	g := newRig(t, Options{SegmentBytes: 2 << 10})
	g.session(start(0), 300)
	// Not closed: the last events are in the writer's buffer until Pin
	// flushes them.
	out := filepath.Join(g.dir, incidentsDir, "inc-1.fst")
	os.MkdirAll(filepath.Dir(out), 0o700)
	from, to := aggtest.At(200*time.Second), aggtest.At(300*time.Second)
	if err := g.rec.Pin(out, from, to); err != nil {
		t.Fatal(err)
	}
	got, tail := readFile(t, out)
	if tail != nil {
		t.Fatal(tail)
	}
	want, _ := readDir(t, g.dir, from, to)
	same(t, "pinned incident", got, want)
	// The state as of 200 s: the 19 cgroups learned every 10 s before it,
	// the snapshot of 196 s; then the cgroup learned at 200 s.
	if k, want := kinds(got), "start,"+strings.Repeat("cgroup_path,", 19)+"mem_snapshot,cgroup_path,tick"; !strings.HasPrefix(k, want) {
		t.Errorf("pinned file begins %.300s, want %s", k, want)
	}
	if last := got[len(got)-1]; last != g.wrote[len(g.wrote)-1] {
		t.Errorf("pinned file ends with %.100s, want the last event written (not flushed yet)", last)
	}
	st, _ := os.Stat(out)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Errorf("incidents/ holds %d files, want the pinned one alone", len(ents))
	}

	err := Pin(g.dir, out+".none", aggtest.At(-time.Hour), aggtest.At(-time.Minute))
	if err == nil || !strings.Contains(err.Error(), "no events recorded") {
		t.Errorf("pin of a window before the recording: %v", err)
	}
	if _, err := os.Stat(out + ".none"); !os.IsNotExist(err) {
		t.Errorf("a failed pin left %s", out+".none")
	}
}

func TestPruneIncidents(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, incidentsDir)
	os.Mkdir(inc, 0o700)
	now := time.Now()
	put := func(name string, size int, age time.Duration) {
		p := filepath.Join(inc, name)
		os.WriteFile(p, make([]byte, size), 0o600)
		os.Chtimes(p, now.Add(-age), now.Add(-age))
	}
	put("a.json", 10, 4*time.Hour)
	put("a.fst", 1000, 4*time.Hour)
	put("b.fst", 1000, 3*time.Hour) // its .json was lost: still an incident
	put("c.json", 10, 2*time.Hour)
	put("c.fst", 1000, 2*time.Hour)
	put("d.json", 10, time.Hour)
	put("d.fst", 1000, time.Hour)
	put(".e.fst.123.tmp", 5000, 5*time.Hour) // a pin in progress: not an incident
	left := func() []string {
		ents, _ := os.ReadDir(inc)
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	if err := PruneIncidents(dir, 3, 0); err != nil {
		t.Fatal(err)
	}
	if got := left(); !slices.Equal(got, []string{".e.fst.123.tmp", "b.fst", "c.fst", "c.json", "d.fst", "d.json"}) {
		t.Errorf("after keeping 3: %v", got)
	}
	if err := PruneIncidents(dir, 0, 1500); err != nil {
		t.Fatal(err)
	}
	if got := left(); !slices.Equal(got, []string{".e.fst.123.tmp", "d.fst", "d.json"}) {
		t.Errorf("after keeping 1500 bytes: %v", got)
	}
	// The incident being kept survives a bound it exceeds alone.
	big := t.TempDir()
	os.MkdirAll(filepath.Join(big, "incidents"), 0o700)
	os.WriteFile(filepath.Join(big, "incidents", "old.json"), make([]byte, 10), 0o600)
	os.WriteFile(filepath.Join(big, "incidents", "new.json"), make([]byte, 10), 0o600)
	os.WriteFile(filepath.Join(big, "incidents", "new.fst"), make([]byte, 2000), 0o600)
	if err := PruneIncidents(big, 0, 1000, "new"); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{"old.json": false, "new.json": true, "new.fst": true} {
		if _, err := os.Stat(filepath.Join(big, "incidents", f)); (err == nil) != want {
			t.Errorf("%s kept = %v, want %v", f, err == nil, want)
		}
	}
	if err := PruneIncidents(t.TempDir(), 1, 1); err != nil {
		t.Errorf("a data dir without incidents/: %v", err)
	}
}
