package source

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/probes"
)

// DefaultStallScan is how often the in-flight maps are scanned for stalls:
// a stall is reported at most this long after it crosses the threshold.
const DefaultStallScan = 250 * time.Millisecond

// lostAfter is how long a reported stall's entry may be missing from the
// map before its end is declared lost: the exit record is streamed when
// the call returns, but reaches userspace up to a ringbuf flush later.
const lostAfter = time.Second

// inFlightMaps is what the stall tracker reads: the probes.Set of a live
// session, a fake in tests.
type inFlightMaps interface {
	InFlight(buf []probes.InFlight) ([]probes.InFlight, error)
	ForgetInFlight(call string, tid uint32) error
}

// stallTracker turns the kernel's in-flight entries into Stall events.
// Only entries older than the threshold cost anything beyond the map scan:
// one wchan read when a call first crosses it, and one a scan for each
// stall being reported. Not safe for concurrent use: the source's
// goroutine runs it.
type stallTracker struct {
	threshold time.Duration
	maps      inFlightMaps
	// wchan reads where a task sleeps; an error wrapping os.ErrNotExist
	// means the task is gone.
	wchan func(pid, tid uint32) (string, error)
	// clock turns CLOCK_MONOTONIC ns into wall time, as the decoder does.
	clock func(ns uint64) time.Time
	// memcg finds the memory cgroup at its limit that holds the tasks of
	// memory cgroup id in the OOM wait (oomMemcg), nil when it is not
	// under OOM; nil func: not looked for.
	memcg func(cgroupID uint64) (*event.StallMemcg, error)
	// procVisible: /proc shows the tasks the kernel names (hostPids).
	// Without it (a pod without hostPID) a task's wchan cannot be read: a
	// memcg candidate is judged by its cgroup being under OOM instead,
	// and namespace syscalls are reported without wchan or ghost checks.
	procVisible bool

	buf     []probes.InFlight
	running map[stallKey]*runningStall
}

// stallKey names one stalled call. A memcg OOM wait is keyed by task
// alone (enter 0): the task may reclaim again between two naps in the
// wait, which moves its map entry's time but is the same hang.
type stallKey struct {
	tid   uint32
	call  string
	enter int64 // the syscall's entry, Unix ns (as the decoder converts it)
}

type runningStall struct {
	ev      event.Stall // as reported while running
	seen    bool        // the entry was in this scan's map
	missing uint64      // when the entry was first found missing (mono ns), 0 if not
}

func newStallTracker(threshold time.Duration, maps inFlightMaps, clock func(uint64) time.Time) *stallTracker {
	return &stallTracker{threshold: threshold, maps: maps, wchan: readWchan, clock: clock,
		procVisible: hostPids(), running: map[stallKey]*runningStall{}}
}

// readWchan reads /proc/<pid>/task/<tid>/wchan: the function the task
// sleeps in, "0" when it runs.
func readWchan(pid, tid uint32) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/wchan", pid, tid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return "", os.ErrNotExist
		}
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func gone(err error) bool { return errors.Is(err, os.ErrNotExist) }

// scan reads the in-flight maps at now (CLOCK_MONOTONIC ns) and emits a
// running Stall for each call that crossed the threshold since the last
// scan, and the end of each reported stall the maps say is over (for
// namespace syscalls, the exit record normally ends it first: see exit).
func (t *stallTracker) scan(now uint64, emit func(*event.Stall)) error {
	var err error
	t.buf, err = t.maps.InFlight(t.buf[:0])
	for _, r := range t.running {
		r.seen = false
	}
	pick := t.pickByCgroup(now)
	for i := range t.buf {
		e := &t.buf[i]
		key := stallKey{tid: e.Task.TID, call: e.Call}
		if e.Call != probes.CallMemcgOOMWait {
			key.enter = t.clock(e.EnterNs).UnixNano()
		}
		if r := t.running[key]; r != nil {
			r.seen = true
			continue
		}
		age := time.Duration(0)
		if now > e.EnterNs {
			age = time.Duration(now - e.EnterNs)
		}
		if age < t.threshold {
			continue
		}
		if e.Call == probes.CallMemcgOOMWait && !t.procVisible && pick[e.Task.CgroupID] != e.Task.TID {
			// Not the cgroup's latest reclaimer, or its wait is reported.
			t.maps.ForgetInFlight(e.Call, e.Task.TID)
			continue
		}
		var w string
		if t.procVisible {
			var werr error
			w, werr = t.wchan(e.Task.PID, e.Task.TID)
			switch {
			case gone(werr):
				// The task died inside the call (or left a reclaim and
				// exited): its exit will never be seen, and the entry
				// must not stand for a stall forever.
				t.maps.ForgetInFlight(e.Call, e.Task.TID)
				continue
			case e.Call == probes.CallMemcgOOMWait && w != probes.MemcgOOMWaitFunc:
				// Reclaimed and got its memory: not a wait. Forgotten, so
				// the next scan does not look at it again.
				t.maps.ForgetInFlight(e.Call, e.Task.TID)
				continue
			}
		}
		var memcg *event.StallMemcg
		if e.Call == probes.CallMemcgOOMWait && t.memcg != nil {
			var merr error
			memcg, merr = t.memcg(e.Task.CgroupID)
			if !t.procVisible && (merr != nil || memcg == nil) {
				// No wchan to ask: a task that stopped reclaiming in a
				// cgroup not under OOM got its memory.
				t.maps.ForgetInFlight(e.Call, e.Task.TID)
				continue
			}
		} else if e.Call == probes.CallMemcgOOMWait && !t.procVisible {
			t.maps.ForgetInFlight(e.Call, e.Task.TID) // nothing can tell a wait from a reclaim
			continue
		}
		ev := event.Stall{
			Time: t.clock(now), Task: e.Task, Call: e.Call, Flags: e.Flags,
			Enter: t.clock(e.EnterNs), Duration: age, Wchan: w, Memcg: memcg,
		}
		t.running[key] = &runningStall{ev: ev, seen: true}
		out := ev
		emit(&out)
	}
	// In a fixed order, so two ends in one scan are recorded the same way
	// whatever the map's order.
	keys := slices.SortedFunc(maps.Keys(t.running), func(a, b stallKey) int {
		return cmp.Or(cmp.Compare(a.tid, b.tid), cmp.Compare(a.call, b.call), cmp.Compare(a.enter, b.enter))
	})
	for _, key := range keys {
		r := t.running[key]
		if end := t.check(key, r, now); end != "" {
			delete(t.running, key)
			ev := r.ev
			ev.Time, ev.End, ev.Wchan, ev.Memcg = t.clock(now), end, "", nil
			ev.Duration = ev.Time.Sub(ev.Enter)
			emit(&ev)
		}
	}
	return err
}

// pickByCgroup chooses, when no wchan can be read, which memcg candidate
// of each cgroup may stand for its OOM wait: the one that reclaimed last
// (the sleeper's reclaims come just before it sleeps; a task that
// reclaimed earlier may have got its memory, or exited, unseen), and none
// for a cgroup whose wait is already reported. One stall per cgroup.
func (t *stallTracker) pickByCgroup(now uint64) map[uint64]uint32 {
	if t.procVisible {
		return nil
	}
	reported := map[uint64]bool{}
	for key, r := range t.running {
		if key.call == probes.CallMemcgOOMWait {
			reported[r.ev.Task.CgroupID] = true
		}
	}
	pick := map[uint64]uint32{}
	latest := map[uint64]uint64{}
	for i := range t.buf {
		e := &t.buf[i]
		cg := e.Task.CgroupID
		if e.Call != probes.CallMemcgOOMWait || reported[cg] || now < e.EnterNs || time.Duration(now-e.EnterNs) < t.threshold {
			continue
		}
		if last, ok := latest[cg]; !ok || e.EnterNs > last || (e.EnterNs == last && e.Task.TID < pick[cg]) {
			latest[cg], pick[cg] = e.EnterNs, e.Task.TID
		}
	}
	return pick
}

// check says how a reported stall ended by now, "" if it goes on.
func (t *stallTracker) check(key stallKey, r *runningStall, now uint64) string {
	if key.call == probes.CallMemcgOOMWait {
		if !t.procVisible {
			m, err := t.memcg(r.ev.Task.CgroupID)
			switch {
			case err == nil && m == nil:
				t.maps.ForgetInFlight(key.call, key.tid)
				return event.StallResumed
			case gone(err):
				// The cgroup was removed: none of its tasks is left.
				t.maps.ForgetInFlight(key.call, key.tid)
				return event.StallExited
			}
			return ""
		}
		w, err := t.wchan(r.ev.Task.PID, key.tid)
		switch {
		case gone(err):
			t.maps.ForgetInFlight(key.call, key.tid)
			return event.StallExited
		case err == nil && w != probes.MemcgOOMWaitFunc:
			t.maps.ForgetInFlight(key.call, key.tid)
			return event.StallResumed
		}
		return ""
	}
	if r.seen && !t.procVisible {
		return ""
	}
	if r.seen {
		if _, err := t.wchan(r.ev.Task.PID, key.tid); gone(err) {
			t.maps.ForgetInFlight(key.call, key.tid)
			return event.StallExited
		}
		r.missing = 0
		return ""
	}
	// The entry is gone from the map: the exit record is on its way (exit
	// ends the stall when it arrives) or was lost.
	if r.missing == 0 {
		r.missing = now
		return ""
	}
	if time.Duration(now-r.missing) < lostAfter {
		return ""
	}
	if t.procVisible {
		if _, err := t.wchan(r.ev.Task.PID, key.tid); gone(err) {
			return event.StallExited
		}
	}
	return event.StallLost
}

// exit takes a namespace syscall's exit record and returns the end of the
// stall it closes, nil when the call did not run past the threshold.
func (t *stallTracker) exit(e *event.NsSyscall) *event.Stall {
	if e.Latency < t.threshold || e.Latency == 0 {
		return nil
	}
	delete(t.running, stallKey{tid: e.Task.TID, call: e.Syscall, enter: e.Enter.UnixNano()})
	return &event.Stall{
		Time: e.Time, Task: e.Task, Call: e.Syscall, Flags: e.Flags,
		Enter: e.Enter, Duration: e.Latency, End: event.StallReturned, Errno: e.Errno,
	}
}

// inFlight counts the stalls reported and not yet ended.
func (t *stallTracker) inFlight() int { return len(t.running) }

// oomRoot finds the v1 memory cgroup whose limit holds the tasks of the
// memory cgroup at hierarchy path rel in the OOM wait; "" when rel is not
// under OOM. dir maps a hierarchy path to its directory
// (cgroup.Resolver.Dir). The kernel marks under_oom on the memcg at its
// limit and on every cgroup below it (mem_cgroup_mark_under_oom walks the
// subtree), so it is the highest of rel and its ancestors whose
// memory.oom_control says "under_oom 1". Its limit and usage are
// internal/memcg's to read.
func oomRoot(dir func(string) (string, bool), rel string) (string, error) {
	found := ""
	for p := path.Clean(rel); ; p = path.Dir(p) {
		d, ok := dir(p)
		if !ok {
			break
		}
		oc, err := os.ReadFile(filepath.Join(d, "memory.oom_control"))
		if err != nil {
			if found == "" {
				return "", err
			}
			break
		}
		if !strings.Contains(string(oc), "under_oom 1") {
			break
		}
		found = p
		if p == "/" {
			break
		}
	}
	return found, nil
}

// initPidNs is the inode of the initial pid namespace, fixed since Linux
// 3.8 (commit 98f842e675f9, PROC_PID_INIT_INO).
const initPidNs = "pid:[4026531836]"

// hostPids reports whether this process sees the host's tasks in /proc:
// the tids the kernel reports are the initial namespace's. A pod without
// hostPID does not.
func hostPids() bool {
	l, err := os.Readlink("/proc/self/ns/pid")
	return err == nil && l == initPidNs
}
