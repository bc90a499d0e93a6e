package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/cgroup"
	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kernlog"
	"github.com/fragscope/fragscope/internal/memcg"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Live is the event source of a running session.
type Live struct {
	// Set is the attached BPF hooks; nil when BPF cannot run here: then the
	// session is procfs snapshots, ticks without kernel counters, and the
	// kernel's own reports from Kmsg.
	Set *probes.Set
	// Kmsg, when set, follows /dev/kmsg: the reports the kernel prints
	// become events merged into this stream, emitted on Run's goroutine.
	Kmsg *kernlog.Follower
	// Hooks are statuses added to the Start after the BPF hooks' (kmsg's).
	Hooks    []event.HookStatus
	Start    event.Start // emitted first; Hooks filled from Set
	Interval time.Duration
	// Flush bounds how long a record may wait in the ringbuf: records are
	// submitted without a wakeup below the BPF side's wakeup_bytes, so the
	// reader wakes itself this often.
	Flush time.Duration
	// Symbolize formats one kernel address like the kernel's call traces.
	Symbolize func(pc uint64) string
	// TakeSnapshot takes the free-memory picture; reason is "start",
	// "interval" or "failure", so the caller can skip costly parts on the
	// periodic path.
	TakeSnapshot func(reason string) (*snapshot.Snapshot, error)
	// MinSnapshotGap rate-limits failure-triggered snapshots in a storm.
	MinSnapshotGap time.Duration
	// QueueLen bounds the records waiting between reader and decoder.
	QueueLen int
	// Cgroups resolves cgroup ids to paths; each id's path is emitted once,
	// before the first event that names it, and again when it is removed.
	Cgroups *cgroup.Resolver
	// Ready, when set, is called once the counters' baseline and the start
	// snapshot are taken: from then on nothing a workload does is missed.
	Ready func()
	// SweepEvery is how many ticks pass between checks for removed
	// cgroups (default 10). A check costs a stat per known cgroup (~15 us
	// each: 20 ms for 1500 on the development machine), too much for every
	// interval on a node with many pods.
	SweepEvery int
	// Warn receives the source's own one-line warnings (a snapshot that
	// failed, a record it could not decode); each distinct message at most
	// once a minute. Nil: stderr.
	Warn func(msg string)
	// Pod names a pod by UID (from the CRI); nil or !ok when unknown.
	Pod func(uid string) (name, namespace string, ok bool)
	// Names asks the container runtimes about a new cgroup path (runc
	// state, docker's API, the CRI); nil or zero when none answers.
	Names func(path string) container.Named
	// Sandbox guesses the pod a runtime was creating a sandbox for when a
	// network namespace creation failed in its own process; nil: never.
	Sandbox func(at time.Time) (event.SandboxGuess, bool)
	// StallThreshold reports a namespace syscall or memcg OOM wait that
	// lasts this long while it lasts, and again when it ends; 0: off. The
	// BPF side must have been opened with the same threshold
	// (probes.Options.StallThreshold), which streams such calls' exits.
	StallThreshold time.Duration
	// StallScan is how often the in-flight maps are scanned (default
	// DefaultStallScan).
	StallScan time.Duration
	// Memcg, when set, reads the memory cgroup of a task whose failure a
	// memcg charge can cause (an ENOMEM/ENOBUFS process creation, a failed
	// memcg-accounted allocation, slab cache or netns): a MemcgState is
	// emitted before the failure, and the cgroups that failed are read
	// again each tick for memcgWatchFor, emitted when a counter changed,
	// so the next failure has a reading from before it.
	Memcg *memcg.Reader
}

// Memory cgroup readings: a failure's reading costs ~6 file reads per
// level (~10 us each); a storm of failed forks must not turn into a storm
// of reads, so each thread is read at most once per memcgTIDGap and the
// source at most memcgPerSecond times a second.
const (
	memcgTIDGap     = 20 * time.Millisecond
	memcgPerSecond  = 50
	memcgWatchFor   = 10 * time.Minute
	memcgMaxWatched = 256
	// memcgWalksPerSecond bounds the hierarchy walks a vanished task's
	// reading may force (tens of ms each with thousands of cgroups).
	memcgWalksPerSecond = 2
)

type memcgState struct {
	account  uint64               // __GFP_ACCOUNT (3.8..4.4: __GFP_KMEMCG) in this kernel's table
	lastTID  map[uint32]time.Time // when each thread was last read
	second   time.Time            // the current one-second window
	walkedAt time.Time            // the last walk a reading forced
	inSecond int
	watched  map[string]memcgWatch // innermost path -> when it last failed, what was last emitted
	warned   bool
}

type memcgWatch struct {
	failed time.Time
	last   []event.MemcgLevel
}

type liveState struct {
	prevAllocs   [event.Orders][event.Migratetypes]uint64
	prevExtfrag  map[event.ExtfragKey]uint64
	prevDrops    uint64
	prevOver     uint64
	prevCgroups  map[uint64]event.CgroupAlloc
	prevCgOver   uint64
	goDrops      atomic.Uint64 // records the Go queue had no room for
	prevGoDrops  uint64
	lastTick     time.Time
	lastFailSnap time.Time // failure snapshots are rate-limited in a storm
	stacks       map[int32][]string
	recentAllocs [64]event.AllocFail // the latest BPF failures, for kmsg duplicates
	nextAlloc    int
	removed      []uint64 // cgroups gone since the last tick
	// unresolved holds the tick at which a cgroup with kernel counters was
	// first seen without a path. One that stays so past a sweep and a walk
	// was gone before any walk saw it (a short-lived cgroup): it never gets
	// a removal, so it is forgotten here, or its kernel entry would hold
	// one of the bounded map's 4096 places for good.
	unresolved map[uint64]int
	warnMu     sync.Mutex // warn is called from the reader and the emitter
	warned     map[string]time.Time
	ticks      int
	stalls     *stallTracker // nil: stalls are not reported
	memcg      memcgState
	memStalls  *memStallState // compaction and reclaim (memstall_linux.go)
	// The latest /proc snapshot: the zones' managed pages, reserves and
	// pageblock counts an at-failure capture does not read.
	lastProc *snapshot.Snapshot
	// captures are the kernel's free-list captures waiting for their
	// alloc_fail, by TID: records of several CPUs interleave in the ringbuf.
	captures  map[uint32]*probes.ZoneCapture
	zoneNames []string // enum zone_type index -> name, from the kernel's BTF
	// misses are the runs of each program the kernel skipped, as last
	// reported (checkMisses); missTicker counts ticks between checks.
	misses     map[string]uint64
	missTicker int
}

// missCheckTicks is how many ticks pass between reads of the programs'
// recursion misses: one bpf(OBJ_GET_INFO) per program, kept off each tick.
const missCheckTicks = 60

// checkMisses warns when the kernel skipped runs of a program because one
// was already running on that CPU (interrupted or preempted inside it;
// bpf_prog_info.recursion_misses, Linux 5.12+): the counts it keeps are
// short by as many, which no ringbuf drop counter shows.
func (l *Live) checkMisses(st *liveState) {
	if l.Set == nil {
		return
	}
	ps, err := l.Set.ProgramStats()
	if err != nil {
		return
	}
	if st.misses == nil {
		st.misses = map[string]uint64{}
	}
	var grew []string
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		if n := ps[name].RecursionMisses; n > st.misses[name] {
			st.misses[name] = n
			grew = append(grew, fmt.Sprintf("%s %d", name, n))
		}
	}
	if len(grew) > 0 {
		l.warn(st, "the kernel skipped runs of BPF programs already running on their CPU (recursion misses, so far): "+
			strings.Join(grew, ", ")+"; what they count is short by as many")
	}
}

// maxPendingCaptures bounds the captures waiting for an alloc_fail (one
// per failing thread in flight; more means lost alloc_fail records).
const maxPendingCaptures = 256

// Run emits events until ctx ends, then drains what the ringbuf still holds
// and emits a final Tick covering the partial interval.
func (l *Live) Run(ctx context.Context, emit func(event.Event)) error {
	if l.Interval <= 0 {
		l.Interval = time.Second
	}
	if l.Flush <= 0 {
		l.Flush = 200 * time.Millisecond
	}
	if l.QueueLen <= 0 {
		l.QueueLen = 4096
	}
	if l.SweepEvery <= 0 {
		l.SweepEvery = 10
	}
	if l.MinSnapshotGap <= 0 {
		l.MinSnapshotGap = 100 * time.Millisecond
	}
	offset := monoToWall()
	clock := func(ns uint64) time.Time { return time.Unix(0, int64(ns)+offset).UTC() }
	st := &liveState{stacks: map[int32][]string{}, captures: map[uint32]*probes.ZoneCapture{}}
	if l.Set != nil {
		st.zoneNames = l.Set.ZoneNames()
		if err := l.Set.FreeListCapture(); err != nil {
			l.warn(st, err.Error())
		}
	}
	dec := &probes.Decoder{Clock: clock, Stack: func(id int32) []string { return l.stack(st, id) }}

	var rd *ringbuf.Reader
	if l.Set != nil {
		var err error
		if rd, err = ringbuf.NewReader(l.Set.Events()); err != nil {
			return fmt.Errorf("open ringbuf reader: %w", err)
		}
		defer rd.Close()
	}

	start := l.Start
	if l.Set != nil {
		start.Hooks = l.Set.Status
	}
	start.Hooks = append(slices.Clone(start.Hooks), l.Hooks...)
	start.Time = time.Now().UTC()
	emit(&start)
	st.lastTick = start.Time
	if err := l.baseline(st); err != nil {
		return err
	}
	if err := l.stallBaseline(st, clock); err != nil {
		return err
	}
	l.snapshot(st, "start", start.Time, emit)
	if l.Ready != nil {
		l.Ready()
	}

	records := make(chan []byte, l.QueueLen)
	readerDone := make(chan error, 1)
	if rd != nil {
		go func() { readerDone <- l.read(rd, records, &st.goDrops) }()
	}
	// The kernel log's follower hands over each failure's events; they are
	// emitted here, so emit stays on one goroutine.
	var kmsgBatches chan []event.Event
	kmsgDone := make(chan error, 1)
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	if l.Kmsg != nil {
		kmsgBatches = make(chan []event.Event, 64)
		go func() { kmsgDone <- l.Kmsg.Run(kctx, kmsgBatches) }()
	}

	ticker := time.NewTicker(l.Interval)
	defer ticker.Stop()
	var stallC <-chan time.Time
	if l.Set != nil && l.StallThreshold > 0 {
		if l.StallScan <= 0 {
			l.StallScan = DefaultStallScan
		}
		st.stalls = newStallTracker(l.StallThreshold, l.Set, clock)
		if r := l.Cgroups; r != nil && r.Hierarchy() == cgroup.HierarchyMemory {
			// The v1 memory cgroup ids the BPF side reports are this
			// hierarchy's: the resolver names them.
			st.stalls.memcg = func(id uint64) (*event.StallMemcg, error) {
				p, _, ok := r.Path(id)
				if !ok {
					return nil, fmt.Errorf("memory cgroup id %d: no path", id)
				}
				root, err := oomRoot(r.Dir, p)
				if err != nil || root == "" {
					return nil, err
				}
				m := &event.StallMemcg{Path: root}
				if l.Memcg != nil {
					if ms, err := l.Memcg.ReadPath(root, time.Now()); err == nil && len(ms.Levels) > 0 {
						m.LimitBytes, m.UsageBytes = uint64(max(ms.Levels[0].Limit, 0)), ms.Levels[0].Usage
					}
				}
				return m, nil
			}
		}
		if !st.stalls.procVisible {
			l.warn(st, "this process does not see the host's tasks in /proc (a pod without hostPID): stalls are reported without wchan, and a task in the memcg OOM wait is judged by its cgroup's under_oom")
		}
		stallTicker := time.NewTicker(l.StallScan)
		defer stallTicker.Stop()
		stallC = stallTicker.C
	}
	for {
		select {
		case <-stallC:
			l.scanStalls(st, emit)
		case raw := <-records:
			l.handle(st, dec, raw, emit)
		case batch := <-kmsgBatches:
			l.kernelEvents(st, batch, emit)
		case err := <-kmsgDone:
			// The log stopped being readable: the session goes on without it.
			l.warn(st, fmt.Sprintf("stopped following %s: %v", kernlog.DevKmsg, err))
			kmsgBatches = nil
		case now := <-ticker.C:
			if err := l.tick(st, now.UTC(), emit); err != nil {
				return err
			}
			if st.missTicker++; st.missTicker%missCheckTicks == 0 {
				l.checkMisses(st)
			}
			l.snapshot(st, "interval", now.UTC(), emit)
		case err := <-readerDone:
			return fmt.Errorf("ringbuf reader: %w", err)
		case <-ctx.Done():
			if rd == nil {
				return l.tick(st, time.Now().UTC(), emit)
			}
			// Records below the wakeup threshold may still sit in the ring:
			// Flush makes the reader return them, then ErrFlushed ends it.
			if err := rd.Flush(); err != nil {
				rd.Close()
			}
			<-readerDone
			for {
				select {
				case raw := <-records:
					l.handle(st, dec, raw, emit)
					continue
				default:
				}
				break
			}
			l.checkMisses(st)
			return l.tick(st, time.Now().UTC(), emit)
		}
	}
}

// read moves records from the ringbuf into the bounded queue. It never
// blocks on a full queue: the record is counted as dropped instead, so a slow
// view cannot back up into the kernel's buffer unseen.
func (l *Live) read(rd *ringbuf.Reader, out chan<- []byte, drops *atomic.Uint64) error {
	var rec ringbuf.Record
	for {
		rd.SetDeadline(time.Now().Add(l.Flush))
		err := rd.ReadInto(&rec)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, ringbuf.ErrFlushed):
			return nil
		case err != nil:
			return err
		}
		raw := append([]byte(nil), rec.RawSample...)
		select {
		case out <- raw:
		default:
			drops.Add(1)
		}
	}
}

func (l *Live) handle(st *liveState, dec *probes.Decoder, raw []byte, emit func(event.Event)) {
	if fs, ok, err := dec.FailureStalls(raw); ok {
		if err != nil {
			l.warn(st, fmt.Sprintf("skipping undecodable record: %v", err))
		} else if st.memStalls != nil {
			st.memStalls.keepFailureStalls(fs)
		}
		return
	}
	if zc, ok, err := dec.ZoneCapture(raw); ok {
		if err != nil {
			l.warn(st, fmt.Sprintf("skipping undecodable record: %v", err))
			return
		}
		if len(st.captures) >= maxPendingCaptures {
			clear(st.captures)
		}
		st.captures[zc.TID] = zc
		return
	}
	ev, err := dec.Decode(raw)
	if err != nil {
		l.warn(st, fmt.Sprintf("skipping undecodable record: %v", err))
		return
	}
	if ns, ok := ev.(*event.NsSyscall); ok && st.stalls != nil {
		if end := st.stalls.exit(ns); end != nil {
			if ns.Errno == 0 {
				// Streamed only because it ran past the threshold: a
				// successful call is the end of a stall, not a failure.
				l.announceCgroups(st, emit, end)
				emit(end)
				return
			}
			defer func() {
				l.announceCgroups(st, emit, end)
				emit(end)
			}()
		}
	}
	// The memcg first: the failing task (a runtime's init stage) exits
	// and its runtime removes its cgroup within milliseconds; resolving
	// cgroup paths can take a walk of the hierarchy.
	ms := l.readMemcg(st, ev)
	if ns, ok := ev.(*event.NsSyscall); ok && ns.Errno != 0 && strings.HasPrefix(ns.Task.Comm, "runc:[") {
		// A runc init stage: its runc run/create ancestor names the
		// container even where no cgroup does (rootless runc), while
		// it lives (milliseconds after the failure), so read it first.
		if id, root, ok := container.RuncProcess("/proc", ns.Task.PID); ok {
			ns.Runc = &event.RuncTask{ID: id, StateRoot: root}
		}
	}
	l.announceCgroups(st, emit, ev)
	if ns, ok := ev.(*event.NsSyscall); ok && l.Sandbox != nil && container.CreatesPodNetns(ns.Task.Comm, ns.Syscall, ns.Flags) {
		// Rare (a runtime failing to make a pod's netns) and bounded by
		// the CRI's 1 s; the result rides on the event so replay agrees.
		if g, ok := l.Sandbox(ns.Time); ok {
			ns.Sandbox = &g
		}
	}
	if ms != nil {
		emit(ms)
	}
	if isFailure(ev) {
		l.failureStalls(st, ev, emit)
	}
	if af, ok := ev.(*event.AllocFail); ok {
		st.recentAllocs[st.nextAlloc%len(st.recentAllocs)] = event.AllocFail{Time: af.Time, Task: af.Task, Order: af.Order, GFP: af.GFP}
		st.nextAlloc++
		if ms := l.atFailure(st, af); ms != nil {
			emit(ms)
		}
	}
	emit(ev)
	if now := time.Now().UTC(); isFailure(ev) && now.Sub(st.lastFailSnap) >= l.MinSnapshotGap {
		st.lastFailSnap = now
		l.snapshot(st, "failure", now, emit)
	}
}

// atFailure is the picture of af's zones the kernel captured at the
// failure, nil when it captured none (rate-limited, no node_data symbol):
// emitted just before the alloc_fail, so a recording carries it and the
// correlator judges the failure on it instead of /proc read after it.
func (l *Live) atFailure(st *liveState, af *event.AllocFail) *event.MemSnapshot {
	zc := st.captures[af.Task.TID]
	if zc == nil {
		return nil
	}
	delete(st.captures, af.Task.TID)
	if lead := af.Time.Sub(zc.At); lead < 0 || lead > snapshot.AtFailureLead {
		return nil
	}
	s := snapshot.FromCapture(st.lastProc, zc.At, zc.Node, st.zoneNames, zc.Zones)
	return &event.MemSnapshot{Reason: snapshot.ReasonAtFailure, Snapshot: s}
}

func isFailure(ev event.Event) bool {
	switch e := ev.(type) {
	case *event.AllocFail:
		return true
	case *event.SlabCreate:
		return e.Failed
	case *event.NetnsCreate:
		return e.Errno != 0
	case *event.NsSyscall:
		return true
	}
	return false
}

func (l *Live) snapshot(st *liveState, reason string, now time.Time, emit func(event.Event)) {
	if l.TakeSnapshot == nil {
		return
	}
	s, err := l.TakeSnapshot(reason)
	if err != nil {
		l.warn(st, fmt.Sprintf("free-memory snapshot: %v", err))
		return
	}
	s.Time = now
	st.lastProc = s
	emit(&event.MemSnapshot{Reason: reason, Snapshot: s})
}

// kernelEvents emits one failure's events read from the kernel log. A page
// allocation failure a BPF hook reported already (same thread and order,
// gfp equal but for __GFP_HARDWALL, which cpusets add before the
// tracepoint, within a second) is marked Duplicate: the aggregator does not
// count it twice, the correlator keeps it as evidence. The follower hands a
// failure over only after the log went quiet or moved on, by which time the
// ringbuf record of the same failure (flushed every Flush) has arrived.
func (l *Live) kernelEvents(st *liveState, batch []event.Event, emit func(event.Event)) {
	var hardwall uint64
	for _, f := range l.Start.GFPFlags {
		if f.Name == "__GFP_HARDWALL" {
			hardwall = f.Value
		}
	}
	for _, ev := range batch {
		if af, ok := ev.(*event.AllocFail); ok {
			for i := range min(st.nextAlloc, len(st.recentAllocs)) {
				b := &st.recentAllocs[i]
				dt := af.Time.Sub(b.Time)
				if b.Task.TID == af.Task.TID && b.Order == af.Order && (b.GFP|hardwall) == (af.GFP|hardwall) &&
					dt < time.Second && dt > -time.Second {
					af.Duplicate = true
					af.Task = b.Task // the BPF task has the cgroup
				}
			}
		}
		emit(ev)
	}
}

func (l *Live) baseline(st *liveState) error {
	if l.Set == nil {
		return nil
	}
	var err error
	if st.prevAllocs, _, err = l.Set.AllocCounts(); err != nil {
		return err
	}
	if st.prevExtfrag, st.prevOver, err = l.Set.ExtfragCounts(); err != nil {
		return err
	}
	if st.prevCgroups, st.prevCgOver, err = l.Set.CgroupAllocs(); err != nil {
		return err
	}
	st.prevDrops, err = l.Set.Drops()
	return err
}

// tick reads the cumulative in-kernel counters and emits their deltas.
func (l *Live) tick(st *liveState, now time.Time, emit func(event.Event)) error {
	t := &event.Tick{Time: now, Interval: now.Sub(st.lastTick)}
	st.lastTick = now
	l.rereadMemcg(st, now, emit)
	if l.Set == nil {
		// No BPF: an interval boundary with no kernel counters, so the
		// views still close intervals around the procfs snapshots.
		l.announceCgroups(st, emit, t)
		emit(t)
		return nil
	}

	allocs, _, err := l.Set.AllocCounts()
	if err != nil {
		return err
	}
	for o := range allocs {
		for m := range allocs[o] {
			t.Allocs[o][m] = allocs[o][m] - st.prevAllocs[o][m]
		}
	}
	st.prevAllocs = allocs

	ext, over, err := l.Set.ExtfragCounts()
	if err != nil {
		return err
	}
	for k, n := range ext {
		if d := n - st.prevExtfrag[k]; d > 0 {
			t.Extfrag = append(t.Extfrag, event.ExtfragCount{ExtfragKey: k, Count: d})
		}
	}
	sortExtfrag(t.Extfrag)
	st.prevExtfrag = ext
	t.Overflow = over - st.prevOver
	st.prevOver = over

	cgs, cgOver, err := l.Set.CgroupAllocs()
	if err != nil {
		return err
	}
	t.Cgroups = cgroupDeltas(cgs, st.prevCgroups)
	t.CgroupOverflow = cgOver - st.prevCgOver
	st.prevCgroups, st.prevCgOver = cgs, cgOver

	drops, err := l.Set.Drops()
	if err != nil {
		return err
	}
	goDrops := st.goDrops.Load()
	t.Drops = drops - st.prevDrops + goDrops - st.prevGoDrops
	st.prevDrops, st.prevGoDrops = drops, goDrops
	// The stalls of the interval go before the Tick that closes it.
	if err := l.stallTick(st, now, emit); err != nil {
		return err
	}
	l.announceCgroups(st, emit, t)
	emit(t)
	l.forgetRemoved(st)
	return nil
}

// scanStalls reports the calls that crossed the stall threshold since the
// last scan and the ends the maps show.
func (l *Live) scanStalls(st *liveState, emit func(event.Event)) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return
	}
	err := st.stalls.scan(uint64(ts.Nano()), func(s *event.Stall) {
		l.announceCgroups(st, emit, s)
		emit(s)
	})
	if err != nil {
		l.warn(st, fmt.Sprintf("reading the in-flight calls for stalls: %v", err))
	}
}

// announceCgroups resolves the cgroup ids ev names and emits what the
// resolver learned (new paths, removals) before ev, so every consumer,
// a recording included, knows a path before it needs it.
func (l *Live) announceCgroups(st *liveState, emit func(event.Event), ev event.Event) {
	if l.Cgroups == nil {
		return
	}
	switch e := ev.(type) {
	case *event.AllocFail:
		l.Cgroups.Path(e.Task.CgroupID)
	case *event.SlabCreate:
		l.Cgroups.Path(e.Task.CgroupID)
	case *event.NetnsCreate:
		l.Cgroups.Path(e.Task.CgroupID)
	case *event.NsSyscall:
		l.Cgroups.Path(e.Task.CgroupID)
	case *event.Stall:
		l.Cgroups.Path(e.Task.CgroupID)
	case *event.MemStalls:
		for _, x := range e.Stalls {
			l.Cgroups.Path(x.CgroupID)
		}
	case *event.Tick:
		for _, x := range e.Extfrag {
			l.Cgroups.Path(x.CgroupID)
		}
		for _, c := range e.Cgroups {
			l.Cgroups.Path(c.CgroupID)
		}
		// Every id in the kernel map, changed this tick or not: one whose
		// counters stopped changing is no longer in e.Cgroups.
		for id := range st.prevCgroups {
			if _, _, ok := l.Cgroups.Path(id); !ok {
				if _, seen := st.unresolved[id]; !seen {
					if st.unresolved == nil {
						st.unresolved = map[uint64]int{}
					}
					st.unresolved[id] = st.ticks
				}
			}
		}
		if st.ticks%l.SweepEvery == 0 {
			l.Cgroups.Sweep()
			l.forgetVanished(st)
		}
		st.ticks++
	}
	for _, u := range l.Cgroups.Updates() {
		cp := &event.CgroupPath{Time: ev.When(), ID: u.ID, Path: u.Path, Removed: u.Removed}
		if uid := container.Parse(u.Path).PodUID; uid != "" && l.Pod != nil {
			if name, ns, ok := l.Pod(uid); ok {
				cp.PodName, cp.PodNamespace = name, ns
			}
		}
		if l.Names != nil && !u.Removed {
			n := l.Names(u.Path)
			cp.Runtime, cp.ContainerID, cp.ContainerName, cp.RuntimeNamespace = n.Runtime, n.ID, n.Name, n.Namespace
		}
		emit(cp)
		if u.Removed {
			st.removed = append(st.removed, u.ID)
		}
	}
}

// forgetVanished queues for forgetting the cgroups that no walk has found
// since at least a sweep period after they were first seen, after one more
// walk: a walk is tens of ms with thousands of cgroups, so it runs only
// when such ids exist, at the sweep's pace.
func (l *Live) forgetVanished(st *liveState) {
	var stale []uint64
	for id, first := range st.unresolved {
		if st.ticks-first >= l.SweepEvery {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return
	}
	l.Cgroups.Refresh()
	for _, id := range stale {
		if _, _, ok := l.Cgroups.Path(id); !ok {
			st.removed = append(st.removed, id)
		}
		delete(st.unresolved, id)
	}
}

// forgetRemoved frees the kernel map entries of removed cgroups once their
// last delta is out, so the bounded map has room for new ones.
func (l *Live) forgetRemoved(st *liveState) {
	if l.Set == nil {
		st.removed = st.removed[:0]
		return
	}
	for _, id := range st.removed {
		l.Set.ForgetCgroup(id)
		delete(st.prevCgroups, id)
		for k := range st.prevExtfrag {
			if k.CgroupID == id {
				delete(st.prevExtfrag, k)
			}
		}
	}
	st.removed = st.removed[:0]
}

// warn reports a problem once a minute per message: a /proc file that
// cannot be read fails every interval, and one line an interval would
// bury the agent's log.
func (l *Live) warn(st *liveState, msg string) {
	now := time.Now()
	st.warnMu.Lock()
	if st.warned == nil {
		st.warned = map[string]time.Time{}
	}
	last, seen := st.warned[msg]
	if seen && now.Sub(last) < time.Minute {
		st.warnMu.Unlock()
		return
	}
	st.warned[msg] = now
	st.warnMu.Unlock()
	if l.Warn != nil {
		l.Warn(msg)
		return
	}
	fmt.Fprintf(os.Stderr, "fragscope: %s\n", msg)
}

// cgroupDeltas returns, sorted by id, what each cgroup did since prev.
func cgroupDeltas(cur, prev map[uint64]event.CgroupAlloc) []event.CgroupAlloc {
	var out []event.CgroupAlloc
	for id, c := range cur {
		p := prev[id]
		d := event.CgroupAlloc{CgroupID: id, HighOrder: c.HighOrder - p.HighOrder, Failures: c.Failures - p.Failures}
		for o := range c.Unmovable {
			d.Unmovable[o] = c.Unmovable[o] - p.Unmovable[o]
			d.Reclaimable[o] = c.Reclaimable[o] - p.Reclaimable[o]
		}
		if !d.Zero() {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CgroupID < out[j].CgroupID })
	return out
}

func sortExtfrag(c []event.ExtfragCount) {
	sort.Slice(c, func(i, j int) bool {
		a, b := c[i].ExtfragKey, c[j].ExtfragKey
		switch {
		case a.CgroupID != b.CgroupID:
			return a.CgroupID < b.CgroupID
		case a.AllocOrder != b.AllocOrder:
			return a.AllocOrder < b.AllocOrder
		case a.FallbackOrder != b.FallbackOrder:
			return a.FallbackOrder < b.FallbackOrder
		case a.AllocMT != b.AllocMT:
			return a.AllocMT < b.AllocMT
		case a.FallbackMT != b.FallbackMT:
			return a.FallbackMT < b.FallbackMT
		}
		return !a.Fragmenting && b.Fragmenting
	})
}

// stack symbolizes a stack id once; ids are stable because the stack map
// is used without BPF_F_REUSE_STACKID.
func (l *Live) stack(st *liveState, id int32) []string {
	if s, ok := st.stacks[id]; ok {
		return s
	}
	pcs, err := l.Set.Stack(id)
	if err != nil {
		return nil
	}
	frames := make([]string, len(pcs))
	for i, pc := range pcs {
		if l.Symbolize != nil {
			frames[i] = l.Symbolize(pc)
		} else {
			frames[i] = fmt.Sprintf("0x%x", pc)
		}
	}
	frames = trimTracing(frames)
	st.stacks[id] = frames
	return frames
}

// monoToWall returns the offset that turns CLOCK_MONOTONIC nanoseconds (what
// bpf_ktime_get_ns returns) into Unix nanoseconds.
func monoToWall() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Now().UnixNano() - ts.Nano()
}

// memcgTrigger returns the task of a failure a memcg charge can cause.
func (l *Live) memcgTrigger(st *liveState, ev event.Event) (event.Task, bool) {
	switch e := ev.(type) {
	case *event.NsSyscall:
		switch e.Errno {
		case -12, 12, -105, 105: // ENOMEM, ENOBUFS
			return e.Task, true
		}
	case *event.AllocFail:
		if st.memcg.account != 0 && e.GFP&st.memcg.account != 0 {
			return e.Task, true
		}
	case *event.SlabCreate:
		return e.Task, e.Failed
	case *event.NetnsCreate:
		return e.Task, e.Errno == -12 || e.Errno == 12
	}
	return event.Task{}, false
}

// readMemcg reads the memory cgroup of a failure's task (nil: not a
// failure a charge can cause, rate-limited, or unreadable).
func (l *Live) readMemcg(st *liveState, ev event.Event) *event.MemcgState {
	if l.Memcg == nil {
		return nil
	}
	m := &st.memcg
	if m.lastTID == nil {
		m.lastTID, m.watched = map[uint32]time.Time{}, map[string]memcgWatch{}
		for _, f := range l.Start.GFPFlags {
			if f.Name == "__GFP_ACCOUNT" || f.Name == "__GFP_KMEMCG" {
				m.account = f.Value
			}
		}
	}
	task, ok := l.memcgTrigger(st, ev)
	if !ok {
		return nil
	}
	now := time.Now().UTC()
	if now.Sub(m.lastTID[task.TID]) < memcgTIDGap {
		return nil
	}
	if now.Sub(m.second) >= time.Second {
		m.second, m.inSecond = now, 0
	}
	if m.inSecond >= memcgPerSecond {
		return nil
	}
	m.inSecond++
	if len(m.lastTID) >= 4096 {
		clear(m.lastTID)
	}
	m.lastTID[task.TID] = now
	ms, err := l.Memcg.Read(task.TID, "", now)
	if err != nil && l.Cgroups != nil {
		// The task is gone (a runtime's init stage exits within a
		// millisecond of its failure): its cgroup's path, if the resolver
		// has it, else after a walk, while the runtime has not yet
		// removed the cgroup. Walks are bounded to memcgWalksPerSecond.
		p, _, ok := l.Cgroups.Path(task.CgroupID)
		if !ok && now.Sub(m.walkedAt) >= time.Second/memcgWalksPerSecond {
			m.walkedAt = now
			if l.Cgroups.Refresh() == nil {
				p, _, ok = l.Cgroups.Path(task.CgroupID)
			}
		}
		if ok {
			ms, err = l.Memcg.Read(task.TID, p, now)
		}
	}
	if err != nil {
		if !errors.Is(err, memcg.ErrNoController) {
			l.warn(st, fmt.Sprintf("memory cgroup of task %d: %v", task.TID, err))
		}
		return nil
	}
	ms.CgroupID = task.CgroupID
	if l.Cgroups != nil && ms.From == "proc" && sameHierarchy(l.Cgroups.Hierarchy(), ms.Version) {
		// The id's path from the task's own /proc line, in case its
		// cgroup is removed before the resolver walks to it.
		l.Cgroups.Learn(task.CgroupID, ms.Path)
	}
	inner := ms.Levels[0].Path
	if _, ok := m.watched[inner]; ok || len(m.watched) < memcgMaxWatched {
		m.watched[inner] = memcgWatch{failed: now, last: ms.Levels}
	}
	return ms
}

// rereadMemcg reads again, once a tick, the memory cgroups that failed in
// the last memcgWatchFor and emits those whose limits or refusal counters
// changed: the reading before the next failure of a crash-looping start.
func (l *Live) rereadMemcg(st *liveState, now time.Time, emit func(event.Event)) {
	m := &st.memcg
	if l.Memcg == nil || len(m.watched) == 0 {
		return
	}
	paths := slices.Sorted(maps.Keys(m.watched))
	for _, p := range paths {
		w := m.watched[p]
		if now.Sub(w.failed) > memcgWatchFor {
			delete(m.watched, p)
			continue
		}
		ms, err := l.Memcg.ReadPath(p, now)
		if err != nil || len(ms.Levels) == 0 {
			delete(m.watched, p) // removed: a failed start's cgroup is
			continue
		}
		if slices.EqualFunc(ms.Levels, w.last, sameCounters) {
			continue
		}
		emit(ms)
		w.last = ms.Levels
		m.watched[p] = w
	}
}

// sameCounters: no limit or refusal counter moved (usage alone does not
// make a reading worth recording).
func sameCounters(a, b event.MemcgLevel) bool {
	return a.Path == b.Path && a.Limit == b.Limit && a.Failcnt == b.Failcnt && a.KmemLimit == b.KmemLimit &&
		a.KmemFailcnt == b.KmemFailcnt && a.EventsMax == b.EventsMax && a.EventsOOM == b.EventsOOM &&
		a.EventsOOMKill == b.EventsOOMKill
}

// sameHierarchy: the resolver's ids are of the hierarchy the memory
// controller's version reads (cgroup v1 memory ids with --cgroup-mode v1).
func sameHierarchy(resolver string, version int) bool {
	return (resolver == cgroup.HierarchyMemory && version == 1) || (resolver == cgroup.HierarchyV2 && version == 2)
}
