package memcg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

var t0 = time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)

func noBefore(string) (event.MemcgLevel, time.Time, bool) {
	return event.MemcgLevel{}, time.Time{}, false
}

func TestJudge(t *testing.T) {
	child := event.MemcgLevel{Path: "/p/c", Limit: -1, Usage: 200 << 10, HaveKmem: true, KmemLimit: -1}
	parent := event.MemcgLevel{Path: "/p", Limit: 256 << 10, Usage: 256 << 10, Failcnt: 341, HaveKmem: true, KmemLimit: -1}
	roomy := parent
	roomy.Limit, roomy.Usage = 64<<20, 1<<20
	for _, tc := range []struct {
		name        string
		st          event.MemcgState
		before      Before
		wantPath    string // "" no finding
		wantCounter string
		wantDelta   uint64
		wantAt      bool
	}{
		{name: "v1 parent at its limit, no earlier reading",
			st: event.MemcgState{Version: 1, Levels: []event.MemcgLevel{child, parent}}, before: noBefore,
			wantPath: "/p", wantCounter: "memory.failcnt", wantAt: true},
		{name: "v1 failcnt rose at the parent since the reading before",
			st: event.MemcgState{Version: 1, Levels: []event.MemcgLevel{child, roomy}},
			before: func(p string) (event.MemcgLevel, time.Time, bool) {
				if p == "/p" {
					l := roomy
					l.Failcnt = 300
					return l, t0, true
				}
				return child, t0, true
			},
			wantPath: "/p", wantCounter: "memory.failcnt", wantDelta: 41},
		{name: "v1 far below the limit with an old failcnt: not the cause",
			st: event.MemcgState{Version: 1, Levels: []event.MemcgLevel{child, roomy}}, before: noBefore},
		{name: "v1 at the limit but never refused: no finding",
			st: event.MemcgState{Version: 1, Levels: []event.MemcgLevel{{Path: "/q", Limit: 1 << 20, Usage: 1 << 20}}}, before: noBefore},
		{name: "v1 kmem counter refused",
			st: event.MemcgState{Version: 1, Levels: []event.MemcgLevel{{Path: "/k", Limit: -1, Usage: 1 << 20,
				HaveKmem: true, KmemLimit: 1 << 20, KmemUsage: 1<<20 - 4096, KmemFailcnt: 5}}}, before: noBefore,
			wantPath: "/k", wantCounter: "memory.kmem.failcnt", wantAt: true},
		{name: "v2: the innermost level whose max events rose (ancestors count them too)",
			st: event.MemcgState{Version: 2, Levels: []event.MemcgLevel{
				{Path: "/a/b", Limit: 512 << 10, Usage: 500 << 10, EventsMax: 7},
				{Path: "/a", Limit: -1, Usage: 600 << 10, EventsMax: 9}}},
			before: func(p string) (event.MemcgLevel, time.Time, bool) {
				if p == "/a/b" {
					return event.MemcgLevel{Path: p, EventsMax: 2}, t0, true
				}
				return event.MemcgLevel{Path: p, EventsMax: 4}, t0, true
			},
			wantPath: "/a/b", wantCounter: "memory.events max", wantDelta: 5, wantAt: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Judge(&tc.st, tc.before, 4096)
			if tc.wantPath == "" {
				if f != nil {
					t.Fatalf("finding %+v, want none", f)
				}
				return
			}
			if f == nil {
				t.Fatal("no finding")
			}
			if f.Path != tc.wantPath || f.Counter != tc.wantCounter || f.Delta != tc.wantDelta || f.AtLimit != tc.wantAt {
				t.Errorf("got path %s counter %s delta %d at_limit %v, want %s %s %d %v", f.Path, f.Counter, f.Delta,
					f.AtLimit, tc.wantPath, tc.wantCounter, tc.wantDelta, tc.wantAt)
			}
			if tc.wantDelta > 0 && !f.Since.Equal(t0) {
				t.Errorf("since %v, want %v", f.Since, t0)
			}
		})
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, v := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A fake /proc and v1 hierarchy, as this development machine lays them out.
func TestReadV1(t *testing.T) {
	root := t.TempDir()
	proc, mem := filepath.Join(root, "proc"), filepath.Join(root, "memory")
	write(t, filepath.Join(proc, "42"), map[string]string{"cgroup": "12:pids:/fs-parent/ctr1\n4:memory:/fs-parent/ctr1\n0::/fs-parent/ctr1\n"})
	// An exited task, as cgroup_exit leaves it: in the root of every hierarchy.
	write(t, filepath.Join(proc, "46"), map[string]string{"cgroup": "4:memory:/\n0::/\n"})
	write(t, filepath.Join(mem, "fs-parent"), map[string]string{"memory.limit_in_bytes": "262144\n",
		"memory.usage_in_bytes": "262144\n", "memory.failcnt": "341\n", "memory.kmem.limit_in_bytes": "9223372036854771712\n",
		"memory.kmem.usage_in_bytes": "225280\n", "memory.kmem.failcnt": "0\n"})
	write(t, filepath.Join(mem, "fs-parent", "ctr1"), map[string]string{"memory.limit_in_bytes": "9223372036854771712\n",
		"memory.usage_in_bytes": "249856\n", "memory.failcnt": "0\n"})
	r := &Reader{Proc: proc, V1: mem}
	st, err := r.Read(42, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 1 || st.From != "proc" || len(st.Levels) != 2 {
		t.Fatalf("got %+v", st)
	}
	c, p := st.Levels[0], st.Levels[1]
	if c.Path != "/fs-parent/ctr1" || c.Limit != -1 || c.Usage != 249856 || c.HaveKmem {
		t.Errorf("child level %+v", c)
	}
	if p.Path != "/fs-parent" || p.Limit != 262144 || p.Failcnt != 341 || !p.HaveKmem || p.KmemLimit != -1 || p.KmemUsage != 225280 {
		t.Errorf("parent level %+v", p)
	}
	// The task exited: its cgroup2 path is looked up in the memory hierarchy.
	st, err = r.Read(43, "/fs-parent/ctr1", t0)
	if err != nil || st.From != "v2_path" || len(st.Levels) != 2 {
		t.Fatalf("fallback: %+v, %v", st, err)
	}
	// The runtime removed the failed container's cgroup already: the
	// parent whose limit refused is what is left to read.
	st, err = r.Read(45, "/fs-parent/removed", t0)
	if err != nil || len(st.Levels) != 1 || st.Levels[0].Path != "/fs-parent" || st.Levels[0].Failcnt != 341 {
		t.Fatalf("removed child: %+v, %v", st, err)
	}
	if st, err = r.Read(46, "/fs-parent/ctr1", t0); err != nil || st.From != "v2_path" || len(st.Levels) != 2 {
		t.Fatalf("zombie: %+v, %v", st, err)
	}
	if _, err := r.Read(46, "", t0); err == nil {
		t.Error("a zombie without a cgroup2 path must be an error, not the root cgroup")
	}
	if _, err := r.Read(44, "", t0); err == nil {
		t.Error("a vanished task without a cgroup2 path must be an error")
	}
	if _, err := r.Read(43, "/../../outside", t0); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a path outside the cgroup namespace: %v", err)
	}
}

func TestReadV2(t *testing.T) {
	root := t.TempDir()
	proc, v2 := filepath.Join(root, "proc"), filepath.Join(root, "unified")
	write(t, filepath.Join(proc, "7"), map[string]string{"cgroup": "0::/kubepods/pod1/c1\n"})
	write(t, v2, map[string]string{"cgroup.controllers": "cpuset cpu io memory pids\n"})
	write(t, filepath.Join(v2, "kubepods"), map[string]string{"memory.max": "max\n", "memory.current": "9000000\n",
		"memory.events": "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n"})
	write(t, filepath.Join(v2, "kubepods", "pod1"), map[string]string{"memory.max": "1048576\n", "memory.current": "1040000\n",
		"memory.events": "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n"})
	write(t, filepath.Join(v2, "kubepods", "pod1", "c1"), map[string]string{"memory.max": "max\n", "memory.current": "1000000\n",
		"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"})
	r := &Reader{Proc: proc, V2: v2}
	if r.Version() != 2 {
		t.Fatalf("version %d", r.Version())
	}
	st, err := r.Read(7, "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Levels) != 3 || st.Levels[1].Path != "/kubepods/pod1" || st.Levels[1].Limit != 1048576 ||
		st.Levels[1].EventsMax != 9 || st.Levels[1].EventsOOMKill != 1 || st.Levels[2].Limit != -1 {
		t.Fatalf("levels %+v", st.Levels)
	}
	f := Judge(st, noBefore, 4096)
	if f == nil || f.Path != "/kubepods/pod1" || !f.AtLimit {
		t.Errorf("judge: %+v", f)
	}
	if _, err := (&Reader{Proc: proc}).Read(7, "", t0); err != ErrNoController {
		t.Errorf("no controller: %v", err)
	}
}
