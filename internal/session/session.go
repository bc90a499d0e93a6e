// Package session is the one model of a session that every consumer of the
// event stream reads: the recording kernel's metadata and tables (Start, gfp
// flags, migratetype names, which hooks attached), the cgroup ids resolved so
// far with their container and pod identity, and the latest free-memory
// snapshots. The aggregator, the correlator, the views, the metrics exporter
// and the flight recorder's segment preamble all read it instead of keeping
// their own copies, so a name or a table cannot differ between two views.
package session

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Session folds the metadata events of a stream. Add it first, before the
// aggregator and the correlator see the same event. Not safe for concurrent
// use: a source emits from one goroutine.
type Session struct {
	start *event.Start
	gfp   *gfp.Table
	hooks map[string]event.HookStatus // nil before Start

	seq   uint64 // events added: stream order
	first time.Time
	last  time.Time

	cgroups map[uint64]Cgroup

	latest, failure Snapshot
	// atFailure is the latest picture the kernel captured at a failure:
	// one node's zones, kept apart so latest stays a whole /proc picture.
	atFailure Snapshot

	// memcg holds, per memory cgroup path, its latest readings (newest
	// last), so a reading can be compared with the one before a call.
	memcg map[string][]MemcgReading
}

// MemcgReading is one reading of one memory cgroup.
type MemcgReading struct {
	Time  time.Time
	Level event.MemcgLevel
}

// memcgKeep is how many readings of a cgroup are kept: enough to find the
// one before a syscall that was read again during it.
const memcgKeep = 4

// maxMemcgPaths bounds the cgroups with readings; past it the map starts
// over (readings are a few per failure, so it takes a node of crash-looping
// containers to get there).
const maxMemcgPaths = 4096

// Cgroup is what is known of one cgroup id. A removed cgroup keeps its last
// path and pod: the fragmenting cgroup of the last minute may be a pod that
// is gone by the failure.
type Cgroup struct {
	Path    string
	Removed bool
	// Container is parsed from Path, with the runtime and id a runtime
	// confirmed while recording where the path alone was ambiguous.
	Container container.Identity
	// PodName and PodNamespace are the CRI's, when it was reachable while
	// recording.
	PodName, PodNamespace string
	// ContainerName is the runtime's name for the container (docker's,
	// the CRI's, a ctr or runc id); RuntimeNamespace a ctr container's
	// containerd namespace. "" when no runtime answered while recording.
	ContainerName, RuntimeNamespace string
	// Confirmed is set when the runtime, not the path, said whose it is.
	Confirmed bool
}

// Snapshot is a kept free-memory snapshot and its stream position. The
// snapshot is a private deep copy that is never modified: holders may keep
// the pointer.
type Snapshot struct {
	*event.MemSnapshot
	Seq uint64
}

// New returns an empty Session. Before the Start event its gfp table is the
// built-in one and every hook counts as attached.
func New() *Session {
	return &Session{gfp: gfp.NewTable(nil), cgroups: map[uint64]Cgroup{}}
}

// Add folds one event. The caller may reuse ev after Add returns: what is
// kept is copied.
func (s *Session) Add(ev event.Event) {
	if ms, ok := ev.(*event.MemSnapshot); ok && ms.Snapshot == nil {
		return // When would dereference it; a snapshot of nothing says nothing
	}
	s.seq++
	when := ev.When()
	if s.first.IsZero() {
		s.first = when
	}
	if when.After(s.last) {
		s.last = when
	}
	switch e := ev.(type) {
	case *event.Start:
		st := *e
		st.Hooks = slices.Clone(e.Hooks)
		st.GFPFlags = slices.Clone(e.GFPFlags)
		st.Migratetypes = slices.Clone(e.Migratetypes)
		s.start = &st
		flags := st.GFPFlags
		if len(flags) == 0 {
			// A recording made where the kernel's own table could not be
			// read (no tracefs, no BTF): the table of its kernel's era,
			// generated from that era's headers, beats raw numbers.
			flags, _, _ = gfp.ForRelease(st.KernelRelease)
		}
		s.gfp = gfp.NewTable(flags)
		s.hooks = make(map[string]event.HookStatus, len(st.Hooks))
		for _, h := range st.Hooks {
			s.hooks[h.Hook] = h
		}
	case *event.CgroupPath:
		c, ok := s.cgroups[e.ID]
		if !ok || c.Path != e.Path {
			c.Container = container.Parse(e.Path)
			c.ContainerName, c.RuntimeNamespace, c.Confirmed = "", "", false
		}
		if e.ContainerID != "" {
			c.Container.Runtime, c.Container.ContainerID, c.Confirmed = e.Runtime, e.ContainerID, true
		}
		if e.ContainerName != "" {
			c.ContainerName, c.RuntimeNamespace = e.ContainerName, e.RuntimeNamespace
		}
		c.Path, c.Removed = e.Path, e.Removed
		if e.PodName != "" {
			// A removal may come without the names the CRI no longer
			// has: keep the last ones known.
			c.PodName, c.PodNamespace = e.PodName, e.PodNamespace
		}
		s.cgroups[e.ID] = c
	case *event.MemSnapshot:
		kept := Snapshot{&event.MemSnapshot{Reason: e.Reason, Snapshot: cloneSnapshot(e.Snapshot)}, s.seq}
		switch e.Reason {
		case snapshot.ReasonAtFailure:
			s.atFailure = kept
		case "failure":
			s.latest, s.failure = kept, kept
		default:
			s.latest = kept
		}
	case *event.MemcgState:
		if s.memcg == nil || len(s.memcg) >= maxMemcgPaths {
			s.memcg = map[string][]MemcgReading{}
		}
		for _, l := range e.Levels {
			rs := append(s.memcg[l.Path], MemcgReading{e.Time, l})
			if len(rs) > memcgKeep {
				rs = slices.Delete(rs, 0, len(rs)-memcgKeep)
			}
			s.memcg[l.Path] = rs
		}
	}
}

// MemcgBefore returns the latest reading of the memory cgroup at path taken
// before t.
func (s *Session) MemcgBefore(path string, t time.Time) (MemcgReading, bool) {
	rs := s.memcg[path]
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Time.Before(t) {
			return rs[i], true
		}
	}
	return MemcgReading{}, false
}

// Start returns the session's metadata, nil before the Start event.
func (s *Session) Start() *event.Start { return s.start }

// Seq is the number of events added: the stream position of the latest.
func (s *Session) Seq() uint64 { return s.seq }

// First and Last are the earliest and the newest event times seen.
func (s *Session) First() time.Time { return s.first }
func (s *Session) Last() time.Time  { return s.last }

// GFP is the session kernel's gfp table (the built-in one before Start).
func (s *Session) GFP() *gfp.Table { return s.gfp }

// FormatGFP decodes gfp flags with the session kernel's table,
// "GFP_KERNEL|__GFP_COMP"; before the Start event it is the number in hex.
func (s *Session) FormatGFP(mask uint64) string {
	if s.start == nil {
		return "0x" + strconv.FormatUint(mask, 16)
	}
	return s.gfp.Format(mask)
}

// GFPClass is the short class of gfp flags, "GFP_KERNEL", "GFP_ATOMIC",
// "other"; "unknown" before the Start event. It does not allocate.
func (s *Session) GFPClass(mask uint64) string {
	if s.start == nil {
		return "unknown"
	}
	return s.gfp.Class(mask)
}

// MigratetypeName names a migratetype with the session kernel's table:
// "unknown" for -1 (the hook could not see it), "mt<N>" for values the
// table lacks.
func (s *Session) MigratetypeName(mt int) string {
	if mt < 0 {
		return "unknown"
	}
	if s.start != nil && mt < len(s.start.Migratetypes) && s.start.Migratetypes[mt] != "" {
		return s.start.Migratetypes[mt]
	}
	return "mt" + strconv.Itoa(mt)
}

// Attached reports whether a hook attached. Without a Start event (a
// truncated recording) nothing is known and every hook counts as attached.
func (s *Session) Attached(hook string) bool {
	if s.hooks == nil {
		return true
	}
	return s.hooks[hook].Attached
}

// Hook returns how a hook attached, as Start said; ok is false when Start
// did not name it or before Start.
func (s *Session) Hook(name string) (h event.HookStatus, ok bool) {
	h, ok = s.hooks[name]
	return h, ok
}

// Hooks lists the Start's hook statuses sorted by name; nil before Start.
func (s *Session) Hooks() []event.HookStatus {
	if s.start == nil {
		return nil
	}
	hs := slices.Clone(s.start.Hooks)
	slices.SortFunc(hs, func(a, b event.HookStatus) int { return cmp.Compare(a.Hook, b.Hook) })
	return hs
}

// Cgroup returns what is known of a cgroup id; ok is false for ids never
// resolved.
func (s *Session) Cgroup(id uint64) (c Cgroup, ok bool) {
	c, ok = s.cgroups[id]
	return c, ok
}

// CgroupPath returns the last known path of a cgroup id ("" when never
// resolved).
func (s *Session) CgroupPath(id uint64) string { return s.cgroups[id].Path }

// LiveCgroups returns the CgroupPath events that describe every cgroup not
// removed, sorted by id: what a reader starting mid-stream needs to name
// the cgroups that counters will mention.
func (s *Session) LiveCgroups(at time.Time) []event.CgroupPath {
	out := make([]event.CgroupPath, 0, len(s.cgroups))
	for _, id := range slices.Sorted(maps.Keys(s.cgroups)) {
		c := s.cgroups[id]
		if c.Removed {
			continue
		}
		cp := event.CgroupPath{Time: at, ID: id, Path: c.Path, PodName: c.PodName, PodNamespace: c.PodNamespace,
			ContainerName: c.ContainerName, RuntimeNamespace: c.RuntimeNamespace}
		if c.Confirmed {
			// What the runtime said, as it said it: replay parses the
			// path again and takes these over it.
			cp.Runtime, cp.ContainerID = c.Container.Runtime, c.Container.ContainerID
		}
		out = append(out, cp)
	}
	return out
}

// Snapshot returns the latest /proc (or kernel-log) snapshot of any reason
// but at_failure (AtFailureSnapshot); its MemSnapshot is nil before the
// first.
func (s *Session) Snapshot() Snapshot { return s.latest }

// AtFailureSnapshot returns the latest picture the kernel captured at an
// allocation failure (reason snapshot.ReasonAtFailure), emitted just before
// that failure's AllocFail; its MemSnapshot is nil when none came yet.
func (s *Session) AtFailureSnapshot() Snapshot { return s.atFailure }

// FailureSnapshot returns the latest snapshot taken because of a failure:
// the free-block picture closest to the moment an allocation failed.
func (s *Session) FailureSnapshot() Snapshot { return s.failure }

// cloneSnapshot deep-copies a snapshot so that a source reusing its buffers
// cannot change the one kept here.
func cloneSnapshot(src *snapshot.Snapshot) *snapshot.Snapshot {
	c := *src
	c.Zones = slices.Clone(src.Zones)
	for i := range c.Zones {
		z := &c.Zones[i]
		z.FreeBlocks = slices.Clone(z.FreeBlocks)
		z.Protection = slices.Clone(z.Protection)
		z.FreeTypeLetters = slices.Clone(z.FreeTypeLetters)
		if z.FreeByMigratetype != nil {
			m := make(map[string][]uint64, len(z.FreeByMigratetype))
			for k, v := range z.FreeByMigratetype {
				m[k] = slices.Clone(v)
			}
			z.FreeByMigratetype = m
		}
		z.PageblocksByMigratetype = maps.Clone(z.PageblocksByMigratetype)
	}
	if src.ExtfragThreshold != nil {
		th := *src.ExtfragThreshold
		c.ExtfragThreshold = &th
	}
	if src.Compaction != nil {
		cs := *src.Compaction
		c.Compaction = &cs
	}
	if src.CompactionProactiveness != nil {
		p := *src.CompactionProactiveness
		c.CompactionProactiveness = &p
	}
	return &c
}
