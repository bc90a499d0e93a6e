package event

import "time"

// Kinds of the compaction and reclaim stall events (trace format: never
// renumber).
const (
	KindMemStalls     Kind = 12 // per-interval stall counters, before the Tick that closes the interval
	KindTaskMemStalls Kind = 13 // the recent stalls of a task whose allocation failed
)

// Stall kinds: what the task was stalled in.
const (
	StallDirectCompaction = "direct_compaction" // try_to_compact_pages
	StallDirectReclaim    = "direct_reclaim"    // vmscan direct reclaim
	StallMemcgReclaim     = "memcg_reclaim"     // a memory cgroup's limit or memory.high reclaim
)

// StallBuckets is the number of log2 latency buckets: bucket i counts the
// stalls of [2^i, 2^(i+1)) ns, the last one everything longer.
const StallBuckets = 40

// ResultCount is how often a compaction ended with a result, named as the
// kernel's enum compact_result ("success", "complete", "skipped", ...;
// "unknown" where the hook could not see it).
type ResultCount struct {
	Result string `json:"result"`
	Count  uint64 `json:"count"`
}

// StallHist is one cgroup's stalls of one kind and order in an interval.
type StallHist struct {
	CgroupID  uint64 `json:"cgroup_id"`
	Kind      string `json:"kind"`
	Order     uint8  `json:"order"`
	Count     uint64 `json:"count"`
	TotalNs   uint64 `json:"total_ns"`
	Reclaimed uint64 `json:"reclaimed_pages,omitempty"`
	// Retries and GiveUps are the allocator's decisions after an attempt
	// (oom:compact_retry, oom:reclaim_retry_zone) in the cgroup's tasks.
	Retries uint64               `json:"retries,omitempty"`
	GiveUps uint64               `json:"give_ups,omitempty"`
	Results []ResultCount        `json:"results,omitempty"`
	Buckets [StallBuckets]uint64 `json:"buckets"`
}

// ZoneCompaction is one zone's compaction runs (mm_compaction_begin/end) in
// an interval: direct ones inside a task's stall, the others kcompactd's or
// proactive compaction's.
type ZoneCompaction struct {
	Node      int                  `json:"node"`
	Zone      string               `json:"zone"`
	ZoneStart uint64               `json:"zone_start_pfn"`
	Direct    bool                 `json:"direct"`
	Count     uint64               `json:"count"`
	TotalNs   uint64               `json:"total_ns"`
	Results   []ResultCount        `json:"results,omitempty"`
	Buckets   [StallBuckets]uint64 `json:"buckets"`
}

// PSIDelta is a cgroup's memory pressure stall time in an interval
// (memory.pressure some/full "total", microseconds). CgroupID 0 is the
// whole system (/proc/pressure/memory).
type PSIDelta struct {
	CgroupID uint64 `json:"cgroup_id"`
	SomeUs   uint64 `json:"some_us"`
	FullUs   uint64 `json:"full_us"`
}

// MemStalls is the interval's stall counter deltas, emitted just before the
// Tick that closes the interval; only intervals with something in them.
type MemStalls struct {
	Time   time.Time        `json:"time"`
	Stalls []StallHist      `json:"stalls,omitempty"` // sorted by cgroup, kind, order
	Zones  []ZoneCompaction `json:"zones,omitempty"`
	// KcompactdWakes counts kcompactd wake-ups by the order asked for.
	KcompactdWakes [Orders]uint64 `json:"kcompactd_wakes"`
	PSI            []PSIDelta     `json:"psi,omitempty"`
	Overflow       uint64         `json:"overflow"` // stalls not counted: the kernel map was full
}

func (e *MemStalls) Kind() Kind      { return KindMemStalls }
func (e *MemStalls) When() time.Time { return e.Time }

// Empty reports whether the interval had nothing to say.
func (e *MemStalls) Empty() bool {
	if len(e.Stalls) > 0 || len(e.Zones) > 0 || e.Overflow > 0 {
		return false
	}
	for _, n := range e.KcompactdWakes {
		if n > 0 {
			return false
		}
	}
	for _, p := range e.PSI {
		if p.SomeUs > 0 || p.FullUs > 0 {
			return false
		}
	}
	return true
}

// RecentStall is one stall a task went through.
type RecentStall struct {
	End       time.Time     `json:"end"`
	Duration  time.Duration `json:"duration_ns"`
	Kind      string        `json:"kind"`
	Order     uint8         `json:"order"`
	GFP       uint64        `json:"gfp"`
	Reclaimed uint64        `json:"reclaimed_pages,omitempty"`
	Result    string        `json:"result,omitempty"` // direct compaction only
}

// TaskMemStalls is the stalls a task went through in the seconds before a
// failure (a failed allocation, slab cache, netns or namespace syscall),
// emitted just before that failure's event.
type TaskMemStalls struct {
	Time   time.Time     `json:"time"`
	Task   Task          `json:"task"`
	Stalls []RecentStall `json:"stalls"` // oldest first
	// Cgroup is the task's cgroup's stalls since the last Tick: the
	// interval the next MemStalls closes, which an incident closed by
	// this failure would not see.
	Cgroup []StallHist `json:"cgroup,omitempty"`
}

func (e *TaskMemStalls) Kind() Kind      { return KindTaskMemStalls }
func (e *TaskMemStalls) When() time.Time { return e.Time }
