package event

import "time"

// KindMemcgState is a reading of a task's memory cgroup, taken when a
// failure that a memcg charge can cause was seen (and again at intervals
// for the cgroups that failed recently, so the next failure has a reading
// from before it).
const KindMemcgState Kind = 10

// MemcgState is what the memory cgroup files of a task's cgroup and its
// ancestors said at Time. It is recorded as read, so a replay judges the
// same numbers (internal/memcg.Judge); nothing derived is stored.
type MemcgState struct {
	Time time.Time `json:"time"`
	// TID and CgroupID name the task it was read for (CgroupID is the
	// task's cgroup2 id, as BPF reports it); both 0 for an interval
	// reading of a cgroup that failed earlier.
	TID      uint32 `json:"tid,omitempty"`
	CgroupID uint64 `json:"cgroup_id,omitempty"`
	// Reason is "failure" (read for a failure event that follows) or
	// "interval".
	Reason string `json:"reason"`
	// Version is the memory controller's hierarchy: 1 or 2.
	Version int `json:"version"`
	// From says how the task's memory cgroup was found: "proc" (its
	// /proc/<tid>/cgroup line) or "v2_path" (the task had exited: its
	// cgroup2 path, looked up in the memory hierarchy, which runtimes
	// create under the same relative path in every hierarchy).
	From string `json:"from"`
	// Levels are the task's memory cgroup first, then each ancestor below
	// the hierarchy's root.
	Levels []MemcgLevel `json:"levels"`
}

func (e *MemcgState) Kind() Kind      { return KindMemcgState }
func (e *MemcgState) When() time.Time { return e.Time }

// MemcgLevel is one memory cgroup's counters. Limits are bytes, -1 when
// unlimited ("max", or v1's PAGE_COUNTER_MAX).
type MemcgLevel struct {
	Path  string `json:"path"` // relative to the hierarchy's root
	Limit int64  `json:"limit"`
	Usage uint64 `json:"usage"`
	// v1: memory.failcnt, and memory.kmem.* where the kernel has them
	// (HaveKmem: configs and eras differ; cgroup v1 itself is optional).
	Failcnt     uint64 `json:"failcnt,omitempty"`
	HaveKmem    bool   `json:"have_kmem,omitempty"`
	KmemLimit   int64  `json:"kmem_limit,omitempty"`
	KmemUsage   uint64 `json:"kmem_usage,omitempty"`
	KmemFailcnt uint64 `json:"kmem_failcnt,omitempty"`
	// v2: memory.events (hierarchical: a child's events count in its
	// ancestors' too).
	EventsMax     uint64 `json:"events_max,omitempty"`
	EventsOOM     uint64 `json:"events_oom,omitempty"`
	EventsOOMKill uint64 `json:"events_oom_kill,omitempty"`
}
