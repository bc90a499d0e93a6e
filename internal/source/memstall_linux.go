package source

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/cgroup"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/procfs"
)

// TaskStallWindow is how far before an allocation failure the failing
// task's stalls are reported with it.
const TaskStallWindow = 10 * time.Second

// maxPSIReads bounds the memory.pressure files read per tick (each ~10 us).
const maxPSIReads = 512

type zoneName struct {
	node int
	zone string
}

// memStallState is the compaction and reclaim counters' state between ticks.
type memStallState struct {
	prev    probes.MemStallState
	results []string            // compact_result names by value
	zones   map[uint64]zoneName // by the zone's start pfn
	// psiDir is the cgroup v2 mount (minus its root inside the hierarchy)
	// where memory.pressure files are; "" on hosts without cgroup v2,
	// which get only the system-wide /proc/pressure/memory.
	psiDir, psiRoot string
	prevPSI         map[uint64]procfs.Pressure
	clock           func(ns uint64) time.Time
	// Failure-time reads: when each thread was last read, and this
	// second's count (failureStalls).
	lastTID  map[uint32]time.Time
	second   time.Time
	inSecond int
	// The kernel's last copy of each failing task's ring, by tid,
	// streamed just before its alloc_fail (probes.FailureStalls). The
	// kernel sends none for a failure whose task has not stalled since its
	// last one: that ring is the copy already here.
	atFailure map[uint32]*probes.FailureStalls
}

// mergeStalls joins two views of one task's ring, oldest first, each
// stall once, known by its start: a compaction the copy holds open, ending
// at the failure, is in the ring later with an end a few ns after it.
func mergeStalls(a, b []probes.RecentStall) []probes.RecentStall {
	seen := map[uint64]bool{}
	var out []probes.RecentStall
	for _, r := range append(append([]probes.RecentStall(nil), a...), b...) {
		if start := r.EndNs - r.DurNs; !seen[start] {
			seen[start] = true
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].EndNs < out[j].EndNs })
	return out
}

func (s *memStallState) keepFailureStalls(fs *probes.FailureStalls) {
	if s.atFailure == nil || len(s.atFailure) >= 4096 {
		s.atFailure = map[uint32]*probes.FailureStalls{}
	}
	s.atFailure[fs.TID] = fs
}

func (l *Live) stallBaseline(st *liveState, clock func(uint64) time.Time) error {
	if l.Set == nil {
		return nil
	}
	cur, ok, err := l.Set.MemStalls()
	if err != nil || !ok {
		return err
	}
	s := &memStallState{prev: cur, results: l.Set.CompactResultNames(), clock: clock, prevPSI: map[uint64]procfs.Pressure{}}
	s.zones = zoneStarts()
	if _, mounts, err := cgroup.Detect(); err == nil && mounts.V2 != "" {
		s.psiDir, s.psiRoot = mounts.V2, mounts.V2Root
	}
	if p, err := readPressure("/proc/pressure/memory"); err == nil {
		s.prevPSI[0] = p
	}
	st.memStalls = s
	return nil
}

// zoneStarts names zones by their first pfn, from /proc/zoneinfo.
func zoneStarts() map[uint64]zoneName {
	out := map[uint64]zoneName{}
	b, err := os.ReadFile("/proc/zoneinfo")
	if err != nil {
		return out
	}
	zi, err := procfs.ParseZoneinfo(bytes.NewReader(b))
	if err != nil {
		return out
	}
	for _, z := range zi {
		if z.Present > 0 {
			out[z.StartPFN] = zoneName{z.Node, z.Zone}
		}
	}
	return out
}

func readPressure(path string) (procfs.Pressure, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procfs.Pressure{}, err
	}
	return procfs.ParsePressure(bytes.NewReader(b))
}

// stallTick emits the interval's stall deltas, when there are any, before
// the Tick that closes the interval.
func (l *Live) stallTick(st *liveState, now time.Time, emit func(event.Event)) error {
	s := st.memStalls
	if s == nil {
		return nil
	}
	cur, ok, err := l.Set.MemStalls()
	if err != nil || !ok {
		return err
	}
	ev := &event.MemStalls{Time: now}
	for k, c := range cur.Stalls {
		d := sub(c, s.prev.Stalls[k])
		if d.Count == 0 && d.Retries == 0 && d.GiveUps == 0 {
			continue
		}
		ev.Stalls = append(ev.Stalls, event.StallHist{CgroupID: k.CgroupID, Kind: k.Kind, Order: k.Order,
			Count: d.Count, TotalNs: d.TotalNs, Reclaimed: d.Reclaimed, Retries: d.Retries, GiveUps: d.GiveUps,
			Results: s.resultCounts(&d.Results), Buckets: d.Buckets})
	}
	sort.Slice(ev.Stalls, func(i, j int) bool {
		a, b := &ev.Stalls[i], &ev.Stalls[j]
		if a.CgroupID != b.CgroupID {
			return a.CgroupID < b.CgroupID
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Order < b.Order
	})
	for k, c := range cur.Zones {
		d := sub(c, s.prev.Zones[k])
		if d.Count == 0 {
			continue
		}
		name, ok := s.zones[k.ZoneStart]
		if !ok {
			name = zoneName{node: -1, zone: fmt.Sprintf("pfn %#x", k.ZoneStart)}
		}
		ev.Zones = append(ev.Zones, event.ZoneCompaction{ZoneStart: k.ZoneStart, Direct: k.Direct, Node: name.node,
			Zone: name.zone, Count: d.Count, TotalNs: d.TotalNs, Results: s.resultCounts(&d.Results), Buckets: d.Buckets})
	}
	sort.Slice(ev.Zones, func(i, j int) bool {
		a, b := &ev.Zones[i], &ev.Zones[j]
		if a.ZoneStart != b.ZoneStart {
			return a.ZoneStart < b.ZoneStart
		}
		return !a.Direct && b.Direct
	})
	for o := range cur.Wakes {
		ev.KcompactdWakes[o] = cur.Wakes[o] - s.prev.Wakes[o]
	}
	ev.Overflow = cur.Overflow - s.prev.Overflow
	l.stallPSI(s, cur, ev)
	s.prev = cur
	if ev.Empty() {
		return nil
	}
	l.announceCgroups(st, emit, ev)
	emit(ev)
	return nil
}

// sub is what counters c grew by since p.
func sub(c, p probes.StallCounts) probes.StallCounts {
	d := probes.StallCounts{Count: c.Count - p.Count, TotalNs: c.TotalNs - p.TotalNs, Reclaimed: c.Reclaimed - p.Reclaimed,
		Retries: c.Retries - p.Retries, GiveUps: c.GiveUps - p.GiveUps}
	for i := range d.Results {
		d.Results[i] = c.Results[i] - p.Results[i]
	}
	for i := range d.Buckets {
		d.Buckets[i] = c.Buckets[i] - p.Buckets[i]
	}
	return d
}

// resultCounts names the non-zero compaction results.
func (s *memStallState) resultCounts(r *[16]uint64) []event.ResultCount {
	var out []event.ResultCount
	for i, n := range r {
		if n > 0 {
			out = append(out, event.ResultCount{Result: s.results[i], Count: n})
		}
	}
	return out
}

// stallPSI adds the memory.pressure deltas of the system and of every
// cgroup that has stalled since the session began. A cgroup's first
// reading, at the end of the interval of its first stall, is its baseline:
// its deltas start with the next interval.
func (l *Live) stallPSI(s *memStallState, cur probes.MemStallState, ev *event.MemStalls) {
	add := func(id uint64, p procfs.Pressure) {
		if prev, ok := s.prevPSI[id]; ok && p.SomeUs >= prev.SomeUs && p.FullUs >= prev.FullUs {
			ev.PSI = append(ev.PSI, event.PSIDelta{CgroupID: id, SomeUs: p.SomeUs - prev.SomeUs, FullUs: p.FullUs - prev.FullUs})
		}
		s.prevPSI[id] = p
	}
	if p, err := readPressure("/proc/pressure/memory"); err == nil {
		add(0, p)
	}
	if s.psiDir == "" || l.Cgroups == nil {
		return
	}
	// Only cgroups that have stalled are read: each read is a file open,
	// and the tick must not hold up the records behind it (a failing
	// container's cgroup is gone milliseconds after its failure).
	stalled := map[uint64]bool{}
	var ids []uint64
	for k := range cur.Stalls {
		if !stalled[k.CgroupID] {
			stalled[k.CgroupID] = true
			ids = append(ids, k.CgroupID)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids[:min(len(ids), maxPSIReads)] {
		path, removed, ok := l.Cgroups.Path(id)
		if !ok || removed {
			delete(s.prevPSI, id)
			continue
		}
		// On hybrid hosts the ids are the v1 memory hierarchy's; systemd
		// and container runtimes make the same path in the v2 tree, which
		// is where PSI lives (v1 has no per-cgroup pressure files).
		rel := strings.TrimPrefix(path, s.psiRoot)
		p, err := readPressure(filepath.Join(s.psiDir, rel, "memory.pressure"))
		if err != nil {
			continue
		}
		add(id, p)
	}
	sort.Slice(ev.PSI, func(i, j int) bool { return ev.PSI[i].CgroupID < ev.PSI[j].CgroupID })
}

// Failure-time stall reads (a map lookup and a walk of the stall map, a
// few syscalls) are bounded: each thread at most once per stallTIDGap, the
// source at most stallReadsPerSecond times a second, so a storm of failed
// forks does not become a storm of reads.
const (
	stallTIDGap         = 100 * time.Millisecond
	stallReadsPerSecond = 50
)

// failureStalls emits, just before a failure event, the stalls its task
// went through in the TaskStallWindow before it and its cgroup's stalls
// since the last tick (the interval the next mem_stalls will close): the
// incident the failure ends may close before that mem_stalls arrives.
func (l *Live) failureStalls(st *liveState, ev event.Event, emit func(event.Event)) {
	s := st.memStalls
	if s == nil {
		return
	}
	var task event.Task
	switch e := ev.(type) {
	case *event.AllocFail:
		if e.Hook == "kmsg" {
			return // from the log: no BPF context, and a BPF hook saw it first
		}
		task = e.Task
	case *event.SlabCreate:
		task = e.Task
	case *event.NetnsCreate:
		task = e.Task
	case *event.NsSyscall:
		task = e.Task
	default:
		return
	}
	now := time.Now()
	if now.Sub(s.second) >= time.Second {
		s.second, s.inSecond = now, 0
	}
	if s.inSecond >= stallReadsPerSecond || now.Sub(s.lastTID[task.TID]) < stallTIDGap {
		return
	}
	s.inSecond++
	if s.lastTID == nil || len(s.lastTID) > 4096 {
		s.lastTID = map[uint32]time.Time{}
	}
	s.lastTID[task.TID] = now
	at := ev.When()
	out := &event.TaskMemStalls{Time: at, Task: task}
	rs, err := l.Set.RecentStalls(task.TID)
	if err != nil {
		l.warn(st, err.Error())
		return
	}
	// The ring read now may already have lost the stalls before the
	// failure to the task's next allocations (the window below leaves
	// those out): the kernel's copy at the task's last failed allocation
	// has them.
	if c, ok := s.atFailure[task.TID]; ok {
		rs = mergeStalls(c.Stalls, rs)
	}
	for _, r := range rs {
		end := s.clock(r.EndNs)
		// The mm_page_alloc that reports a failed allocation may close
		// the task's compaction a little after the failure's timestamp.
		if end.Before(at.Add(-TaskStallWindow)) || end.After(at.Add(time.Millisecond)) {
			continue
		}
		rec := event.RecentStall{End: end, Duration: time.Duration(r.DurNs), Kind: r.Kind, Order: r.Order,
			GFP: r.GFP, Reclaimed: r.Reclaimed}
		if r.Kind == event.StallDirectCompaction && r.Result >= 0 && r.Result < len(s.results) {
			rec.Result = s.results[r.Result]
		}
		out.Stalls = append(out.Stalls, rec)
	}
	cur, ok, err := l.Set.MemStalls()
	if err != nil || !ok {
		return
	}
	for k, c := range cur.Stalls {
		if k.CgroupID != task.CgroupID {
			continue
		}
		if d := sub(c, s.prev.Stalls[k]); d.Count > 0 {
			out.Cgroup = append(out.Cgroup, event.StallHist{CgroupID: k.CgroupID, Kind: k.Kind, Order: k.Order,
				Count: d.Count, TotalNs: d.TotalNs, Reclaimed: d.Reclaimed, Retries: d.Retries, GiveUps: d.GiveUps,
				Results: s.resultCounts(&d.Results), Buckets: d.Buckets})
		}
	}
	sort.Slice(out.Cgroup, func(i, j int) bool {
		a, b := &out.Cgroup[i], &out.Cgroup[j]
		return a.Kind < b.Kind || a.Kind == b.Kind && a.Order < b.Order
	})
	if len(out.Stalls) > 0 || len(out.Cgroup) > 0 {
		emit(out)
	}
}
