package incident

import (
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// A container start whose namespaces' slab objects were refused by its
// parent cgroup's limit: no page allocation failed, the memcg readings
// taken for the failure (and the one before it, from a tick) decide.
func TestMemcgLimitFromCgroupState(t *testing.T) {
	const id = 17657
	task := event.Task{PID: 29082, TID: 29082, Comm: "runc:[1:CHILD]", CgroupID: id}
	enter := at(time.Second)
	levels := func(failcnt uint64) []event.MemcgLevel {
		return []event.MemcgLevel{
			{Path: "/fs-parent/ctr1", Limit: -1, Usage: 249856, HaveKmem: true, KmemLimit: -1},
			{Path: "/fs-parent", Limit: 262144, Usage: 262144, Failcnt: failcnt, HaveKmem: true, KmemLimit: -1},
		}
	}
	run := func(t *testing.T, baseline bool, errno int32, sc string, flags uint64) *Incident {
		c := New(nil)
		c.Add(start618(t, allHooks()))
		c.Add(&event.CgroupPath{Time: t0, ID: id, Path: "/fs-parent/ctr1"})
		c.Add(memSnap(t0, "start", healthyZones()))
		if baseline {
			c.Add(&event.MemcgState{Time: enter.Add(-500 * time.Millisecond), Reason: "interval", Version: 1, From: "path", Levels: levels(300)})
		}
		c.Add(&event.MemcgState{Time: enter.Add(2 * time.Millisecond), TID: task.TID, CgroupID: id, Reason: "failure",
			Version: 1, From: "proc", Levels: levels(341)})
		inc := c.Add(&event.NsSyscall{Time: enter.Add(time.Millisecond), Task: task, Syscall: sc, Flags: flags,
			Errno: errno, Enter: enter})
		if inc == nil {
			t.Fatal("no incident")
		}
		render(t, inc)
		return inc
	}
	t.Run("at the limit", func(t *testing.T) {
		inc := run(t, false, -12, "clone", 0)
		if inc.Verdict.Cause != CauseMemcgLimit || inc.Memcg == nil || inc.Memcg.Path != "/fs-parent" || !inc.Memcg.AtLimit {
			t.Fatalf("cause %s memcg %+v reasons %q", inc.Verdict.Cause, inc.Memcg, inc.Verdict.Reasons)
		}
		if !hasLine(inc.Verdict.Reasons, "memory cgroup /fs-parent (cgroup v1) is at its limit with memory.failcnt 341; usage 256 kB of its 256 kB limit") ||
			!hasLine(inc.Verdict.Reasons, "never reach the page allocator") {
			t.Errorf("reasons %q", inc.Verdict.Reasons)
		}
		text := strings.Join(strings.Fields(render(t, inc)), " ")
		if !strings.Contains(text, "/fs-parent limit 256 kB, usage 256 kB, failcnt 341 <- refused") {
			t.Errorf("text lacks the memcg chain:\n%s", text)
		}
	})
	t.Run("failcnt rose across the call", func(t *testing.T) {
		inc := run(t, true, -105, "unshare", cloneNewNet)
		if inc.Verdict.Cause != CauseMemcgLimit || inc.Memcg == nil || inc.Memcg.Delta != 41 {
			t.Fatalf("cause %s memcg %+v", inc.Verdict.Cause, inc.Memcg)
		}
		if !hasLine(inc.Verdict.Reasons, "memory.failcnt rose by 41 to 341") || !hasLine(inc.Verdict.Reasons, "ENOBUFS rather than ENOMEM") {
			t.Errorf("reasons %q", inc.Verdict.Reasons)
		}
	})
	t.Run("ENOSPC stays a namespace limit", func(t *testing.T) {
		inc := run(t, true, -28, "unshare", cloneNewNet)
		if inc.Verdict.Cause != CauseNamespaceLimit {
			t.Fatalf("cause %s", inc.Verdict.Cause)
		}
	})
	t.Run("a reading older than the call is not evidence", func(t *testing.T) {
		c := New(nil)
		c.Add(start618(t, allHooks()))
		c.Add(&event.MemcgState{Time: enter.Add(-time.Second), TID: task.TID, Reason: "failure", Version: 1, Levels: levels(341)})
		inc := c.Add(&event.NsSyscall{Time: enter.Add(time.Millisecond), Task: task, Syscall: "unshare", Flags: cloneNewNet,
			Errno: -12, Enter: enter})
		if inc == nil || inc.Memcg != nil || inc.Verdict.Cause == CauseMemcgLimit {
			t.Fatalf("incident %+v", inc)
		}
	})
}
