package probes

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
)

// MemcgPageCache runs dd writing mib MiB of page cache inside the memory
// cgroup dir (limited to limit bytes), so that its charges reclaim.
func MemcgPageCache(t *testing.T, dir string, limit, mib int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(itoa(limit)), 0); err != nil {
		// cgroup v2
		if err2 := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(itoa(limit)), 0); err2 != nil {
			t.Fatalf("set the memory limit: %v; %v", err, err2)
		}
	}
	f := filepath.Join(t.TempDir(), "pagecache")
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec dd if=/dev/zero of="$2" bs=1M count="$3" status=none`,
		"sh", dir, f, itoa(mib))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dd in %s: %v\n%s", dir, err, out)
	}
	os.Remove(f)
}

func itoa(n int) string { return strconv.Itoa(n) }

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
	MemcgPageCache(t, dir, 32<<20, 400)
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
