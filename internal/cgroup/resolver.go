package cgroup

import (
	"cmp"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Hierarchy names NewResolver accepts.
const (
	HierarchyV2     = "v2"
	HierarchyMemory = "memory"
)

const (
	// DefaultCacheSize bounds the ids a Resolver keeps. A busy Kubernetes
	// node has a few thousand cgroups; 65536 entries cost about 8 MiB with
	// their paths and leave room for the removed ones we keep for reports.
	DefaultCacheSize = 65536
	// DefaultMinWalkInterval is the least time between two walks started by
	// misses, so a burst of unknown ids (a storm of short-lived cgroups, or
	// ids that never resolve) costs one walk per second, not one per id.
	DefaultMinWalkInterval = time.Second
)

// Update says that an id resolved for the first time (Removed false), was
// renamed (Removed false, new Path) or disappeared (Removed true, last Path).
type Update struct {
	ID      uint64
	Path    string
	Removed bool
}

// Stats describes a Resolver's work, for --debug output and benchmarks.
type Stats struct {
	Walks          uint64        // hierarchy walks done
	LastWalk       time.Duration // duration of the last walk
	LastWalkDirs   int           // cgroups the last walk found
	Entries        int           // ids cached, live and removed
	Removed        int           // cached ids whose cgroup is gone
	Evicted        uint64        // entries dropped to stay within the cache size
	DroppedUpdates uint64        // updates lost because nobody called Updates
	LastErr        error         // error of the last walk, nil if it succeeded
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithCacheSize sets the most ids the Resolver keeps (DefaultCacheSize).
func WithCacheSize(n int) Option {
	return func(r *Resolver) {
		if n > 0 {
			r.limit = n
		}
	}
}

// WithMinWalkInterval sets the least time between walks caused by misses
// (DefaultMinWalkInterval).
func WithMinWalkInterval(d time.Duration) Option {
	return func(r *Resolver) { r.minInterval = d }
}

// WithMountRoot prefixes every path with the mount's root inside its
// hierarchy (Mounts.V2Root, Mounts.MemoryRoot), so that inside a container
// whose cgroupfs shows a subtree the paths are still the host's.
func WithMountRoot(root string) Option {
	return func(r *Resolver) { r.prefix = root }
}

type entry struct {
	path      string
	removed   bool
	removedAt uint64 // walk number that found it gone; orders eviction
	queried   bool   // Path asked for it: keep it over never-asked ones
	reported  bool   // an Update announced it, so its removal is announced too
}

// Resolver maps cgroup ids, as the BPF side reports them, to cgroup paths.
// It is safe for concurrent use. Walks run under its lock: lookups wait for
// a running walk rather than start a second one.
type Resolver struct {
	root, hierarchy, prefix string
	limit                   int
	minInterval             time.Duration
	now                     func() time.Time // replaced by tests

	mu       sync.Mutex
	cache    map[uint64]*entry
	walked   bool
	lastWalk time.Time
	walkSeq  uint64
	pending  []Update
	stats    Stats
}

// NewResolver returns a Resolver for the hierarchy mounted at root;
// hierarchy is HierarchyV2 or HierarchyMemory and only names it. No walk
// happens until the first lookup or Refresh.
func NewResolver(root, hierarchy string, opts ...Option) *Resolver {
	r := &Resolver{
		root:        filepath.Clean(root),
		hierarchy:   hierarchy,
		prefix:      "/",
		limit:       DefaultCacheSize,
		minInterval: DefaultMinWalkInterval,
		now:         time.Now,
		cache:       make(map[uint64]*entry),
	}
	for _, o := range opts {
		o(r)
	}
	if r.prefix == "" {
		r.prefix = "/"
	}
	return r
}

// Root returns the mount point the Resolver walks.
func (r *Resolver) Root() string { return r.root }

// Hierarchy returns the hierarchy name given to NewResolver.
func (r *Resolver) Hierarchy() string { return r.hierarchy }

// Path returns the path of cgroup id relative to the hierarchy's root ("/"
// for the root itself, "/kubepods.slice/..." below it). removed is true when
// the cgroup no longer exists and path is its last known one. ok is false
// when the id is unknown even after a walk, or when the id is not cached
// and the last walk is too recent to walk again (see WithMinWalkInterval).
func (r *Resolver) Path(id uint64) (path string, removed, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.cache[id]
	if e == nil && r.mayWalkLocked() {
		r.walkLocked()
		e = r.cache[id]
	}
	if e == nil {
		return "", false, false
	}
	e.queried = true
	if !e.reported {
		e.reported = true
		r.pushLocked(Update{ID: id, Path: e.path, Removed: e.removed})
	}
	return e.path, e.removed, true
}

// mayWalkLocked reports whether a miss may walk now: not before the
// minimum interval, and not before walkCostFactor times the last walk's
// duration, so that on a host where a walk is slow (tens of ms for a few
// thousand cgroups, see BenchmarkWalk) misses cannot spend more than about
// 1/walkCostFactor of a CPU on walking.
func (r *Resolver) mayWalkLocked() bool {
	if !r.walked {
		return true
	}
	wait := max(r.minInterval, walkCostFactor*r.stats.LastWalk)
	return r.now().Sub(r.lastWalk) >= wait
}

const walkCostFactor = 20

// Sweep notices removed cgroups cheaply: it checks, with one lstat each,
// that the cgroups announced by Updates still exist at their path with
// their id, and walks the hierarchy only when one does not (to tell a
// removal from a rename). With nothing removed it costs one path lookup per
// announced cgroup (about 15 us each on this project's machines, see
// BenchmarkSweep) instead of a walk of every cgroup on the host; the live
// source calls it once per reporting interval.
func (r *Resolver) Sweep() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.cache {
		if !e.reported || e.removed {
			continue
		}
		if ino, ok := r.statLocked(e.path); !ok || ino != id {
			r.walkLocked()
			return r.stats.LastErr
		}
	}
	return nil
}

// statLocked returns the id of the cgroup at a hierarchy path.
func (r *Resolver) statLocked(p string) (uint64, bool) {
	rel, ok := strings.CutPrefix(p, r.prefix)
	if !ok {
		return 0, false
	}
	fi, err := os.Lstat(filepath.Join(r.root, rel))
	if err != nil || !fi.IsDir() {
		return 0, false
	}
	return inode(fi)
}

// Dir returns where the cgroup at hierarchy path p is on this mount, for
// reading its files; false when the mount does not show it (a path outside
// the subtree a cgroup namespace shows).
func (r *Resolver) Dir(p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, r.prefix)
	if !ok {
		return "", false
	}
	return filepath.Join(r.root, rel), true
}

// Refresh walks the hierarchy now, whatever the time since the last walk,
// noticing new, renamed and removed cgroups. Sweep is the cheaper way to
// notice removals.
func (r *Resolver) Refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.walkLocked()
	return r.stats.LastErr
}

// Updates returns the changes to ids that Path has resolved, in the order
// they happened, since the last call: each id's first resolution, renames,
// and its removal once.
func (r *Resolver) Updates() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.pending
	r.pending = nil
	return u
}

// Stats returns counters about the Resolver's work.
func (r *Resolver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Entries = len(r.cache)
	s.Removed = 0
	for _, e := range r.cache {
		if e.removed {
			s.Removed++
		}
	}
	return s
}

func (r *Resolver) pushLocked(u Update) {
	// Bounded like the cache: a caller that never drains must not grow
	// memory without limit; what is lost is counted.
	if len(r.pending) >= r.limit {
		r.stats.DroppedUpdates++
		return
	}
	r.pending = append(r.pending, u)
}

// walkLocked walks the hierarchy and merges what it finds into the cache.
func (r *Resolver) walkLocked() {
	start := r.now()
	r.walked, r.lastWalk = true, start
	r.stats.Walks++
	seen, err := walk(r.root)
	r.stats.LastWalk = r.now().Sub(start)
	r.stats.LastErr = err
	if err != nil {
		// The mount itself is unreadable: that says nothing about the
		// cgroups, so none is marked removed.
		return
	}
	r.stats.LastWalkDirs = len(seen)
	r.walkSeq++
	for id, e := range r.cache {
		rel, ok := seen[id]
		if !ok {
			if !e.removed {
				e.removed, e.removedAt = true, r.walkSeq
				if e.reported {
					r.pushLocked(Update{ID: id, Path: e.path, Removed: true})
				}
			}
			continue
		}
		delete(seen, id)
		p := r.full(rel)
		// A removed id seen again is not expected (kernfs ids are not
		// reused on 64-bit), but if it happens the live cgroup wins.
		if p != e.path || e.removed {
			e.path, e.removed = p, false
			if e.reported {
				r.pushLocked(Update{ID: id, Path: p})
			}
		}
	}
	for id, rel := range seen {
		r.cache[id] = &entry{path: r.full(rel)}
	}
	r.evictLocked()
}

// evictLocked brings the cache back to its limit: removed cgroups go first,
// the longest gone first, then live ones no lookup asked for. Ids that
// lookups asked for and that still exist are kept: there are never more of
// them than the limit, since each was in the cache when asked for.
func (r *Resolver) evictLocked() {
	over := len(r.cache) - r.limit
	if over <= 0 {
		return
	}
	type victim struct {
		id   uint64
		rank uint64 // removed: walk number it vanished; unqueried live: max
	}
	var vs []victim
	for id, e := range r.cache {
		switch {
		case e.removed:
			vs = append(vs, victim{id, e.removedAt})
		case !e.queried:
			vs = append(vs, victim{id, ^uint64(0)})
		}
	}
	slices.SortFunc(vs, func(a, b victim) int { return cmp.Compare(a.rank, b.rank) })
	for _, v := range vs[:min(over, len(vs))] {
		delete(r.cache, v.id)
		r.stats.Evicted++
	}
}

// full turns a path relative to the mount point into one relative to the
// hierarchy's root.
func (r *Resolver) full(rel string) string {
	return path.Join(r.prefix, rel)
}
