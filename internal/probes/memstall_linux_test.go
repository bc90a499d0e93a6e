package probes

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/workload"
)

// memcgPageCache writes mib MiB of page cache inside the memory cgroup dir
// limited to limit bytes (workload.PageCache).
func memcgPageCache(t *testing.T, dir string, limit, mib int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0); err != nil {
		t.Fatalf("set the memory limit: %v", err)
	}
	f := filepath.Join(t.TempDir(), "pagecache")
	if out, err := workload.PageCache([]string{dir}, f, mib).CombinedOutput(); err != nil {
		t.Fatalf("page cache writer in %s: %v\n%s", dir, err, out)
	}
	os.Remove(f)
}

// A memory cgroup limited to 32 MiB writing 400 MiB of page cache reclaims
// at its limit: the memcg_reclaim histogram names that cgroup.
func TestMemcgReclaimStalls(t *testing.T) {
	requireRoot(t)
	dir, id := cgroupDir(t, "/sys/fs/cgroup/memory")
	s := openSet(t, Options{Hooks: []Hook{HookCompaction, HookReclaim}, CgroupV1Memory: true})
	for _, h := range []Hook{HookCompaction, HookReclaim} {
		if !s.Attached(h) {
			t.Fatalf("%s not attached: %+v", h, s.Status)
		}
	}
	memcgPageCache(t, dir, 32<<20, 400)
	st, ok, err := s.MemStalls()
	if err != nil || !ok {
		t.Fatalf("MemStalls: ok=%v err=%v", ok, err)
	}
	c := st.Stalls[StallKey{CgroupID: id, Kind: event.StallMemcgReclaim, Order: 0}]
	var inBuckets uint64
	for _, n := range c.Buckets {
		inBuckets += n
	}
	t.Logf("cgroup %d memcg reclaim: %d stalls, %d ns, %d pages reclaimed", id, c.Count, c.TotalNs, c.Reclaimed)
	if c.Count == 0 || c.TotalNs == 0 || c.Reclaimed == 0 {
		t.Fatalf("no memcg reclaim stalls counted for cgroup %s (id %d): %+v; keys: %v", dir, id, c, keys(st.Stalls))
	}
	if inBuckets != c.Count {
		t.Errorf("histogram holds %d stalls, count %d", inBuckets, c.Count)
	}
	// Nothing stays open: every begin met its end.
	var open uint64
	if err := s.stallMaps["open_compactions"].Lookup(uint32(0), &open); err != nil {
		t.Fatal(err)
	}
	if open > 64 {
		t.Errorf("%d direct compactions still open after the workload", open)
	}
}

func keys(m map[StallKey]StallCounts) []StallKey {
	var out []StallKey
	for k := range m {
		out = append(out, k)
	}
	return out
}
