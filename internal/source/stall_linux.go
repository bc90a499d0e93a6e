package source

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
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
	// memcg finds the memory cgroup at its limit that holds a task in the
	// OOM wait (oomMemcg); nil: not looked for.
	memcg func(pid uint32) (*event.StallMemcg, error)

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
		running: map[stallKey]*runningStall{}}
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
		w, werr := t.wchan(e.Task.PID, e.Task.TID)
		switch {
		case gone(werr):
			// The task died inside the call (or left a reclaim and
			// exited): its exit will never be seen, and the entry must
			// not stand for a stall forever.
			t.maps.ForgetInFlight(e.Call, e.Task.TID)
			continue
		case e.Call == probes.CallMemcgOOMWait && w != probes.MemcgOOMWaitFunc:
			// Reclaimed and got its memory: not a wait. Forgotten, so the
			// next scan does not look at it again.
			t.maps.ForgetInFlight(e.Call, e.Task.TID)
			continue
		}
		ev := event.Stall{
			Time: t.clock(now), Task: e.Task, Call: e.Call, Flags: e.Flags,
			Enter: t.clock(e.EnterNs), Duration: age, Wchan: w,
		}
		if e.Call == probes.CallMemcgOOMWait && t.memcg != nil {
			ev.Memcg, _ = t.memcg(e.Task.PID) // without it the stall is still worth reporting
		}
		t.running[key] = &runningStall{ev: ev, seen: true}
		out := ev
		emit(&out)
	}
	for key, r := range t.running {
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

// check says how a reported stall ended by now, "" if it goes on.
func (t *stallTracker) check(key stallKey, r *runningStall, now uint64) string {
	if key.call == probes.CallMemcgOOMWait {
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
	if _, err := t.wchan(r.ev.Task.PID, key.tid); gone(err) {
		return event.StallExited
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

// oomMemcg finds the v1 memory cgroup whose limit holds task pid in the
// OOM wait, under the memory hierarchy mounted at mount. The kernel marks
// under_oom on the memcg at its limit and on every cgroup below it
// (mem_cgroup_mark_under_oom walks the subtree), so it is the highest
// ancestor of the task's memory cgroup, the cgroup itself included, whose
// memory.oom_control says "under_oom 1".
func oomMemcg(mount string, pid uint32) (*event.StallMemcg, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var rel string
	for line := range strings.SplitSeq(string(b), "\n") {
		// v1 lines are "id:controllers:path"; the path may contain ':'.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "memory") {
			rel = parts[2]
		}
	}
	if rel == "" {
		return nil, fmt.Errorf("pid %d: no v1 memory cgroup in /proc/%d/cgroup", pid, pid)
	}
	found := ""
	for p := path.Clean(rel); ; p = path.Dir(p) {
		oc, err := os.ReadFile(filepath.Join(mount, p, "memory.oom_control"))
		if err != nil || !strings.Contains(string(oc), "under_oom 1") {
			break
		}
		found = p
		if p == "/" {
			break
		}
	}
	if found == "" {
		return nil, fmt.Errorf("memory cgroup %s: not under OOM", rel)
	}
	m := &event.StallMemcg{Path: found}
	for file, v := range map[string]*uint64{"memory.limit_in_bytes": &m.LimitBytes, "memory.usage_in_bytes": &m.UsageBytes} {
		b, err := os.ReadFile(filepath.Join(mount, found, file))
		if err != nil {
			return nil, err
		}
		if *v, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return nil, fmt.Errorf("%s of %s: %w", file, found, err)
		}
	}
	return m, nil
}
