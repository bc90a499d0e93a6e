package incident

import (
	"time"

	"github.com/fragscope/fragscope/internal/memcg"
)

// Cause is the verdict's one-word answer. Values are part of the JSON
// output: never rename.
type Cause string

const (
	// CauseFragmentation: enough memory was free, but no eligible zone had a
	// free block of the order asked for.
	CauseFragmentation Cause = "fragmentation"
	// CauseExhaustion: the eligible zones were at or below their min
	// watermark, or had so little free that compaction could not help.
	CauseExhaustion Cause = "exhaustion"
	// CauseMemcgLimit: a memory cgroup's limit refused a charge: its
	// failcnt (v1) or memory.events max (v2) rose during the call or it was
	// at its limit, or the page allocator could have served a
	// memcg-accounted (__GFP_ACCOUNT) allocation that failed.
	CauseMemcgLimit Cause = "memcg_limit"
	// CauseNamespaceLimit: a user.max_*_namespaces limit (ENOSPC).
	CauseNamespaceLimit Cause = "namespace_limit"
	// CauseUnknown: the evidence does not decide; Reasons say what is
	// missing.
	CauseUnknown Cause = "unknown"
)

// Closers: what ended an incident. A watched syscall's failed exit is the
// normal case; the other two only when the ns_syscall hook is not attached.
const (
	ClosedBySyscall    = "ns_syscall"
	ClosedByNetns      = "netns_create"
	ClosedBySlabCreate = "slab_create"
)

// Incident is one explained failure.
type Incident struct {
	Time     time.Time `json:"time"`      // the failure's time: the syscall exit (or the closing event)
	ClosedBy string    `json:"closed_by"` // ClosedBySyscall, ClosedByNetns or ClosedBySlabCreate
	// Syscall is the failed namespace syscall; its Name is empty when the
	// incident was closed by another event because the ns_syscall hook was
	// not attached.
	Syscall Syscall  `json:"syscall"`
	Task    Task     `json:"task"`
	Chain   []string `json:"chain"` // outermost first: "clone(CLONE_NEWNET)", "copy_net_ns", ...
	Allocs  []Alloc  `json:"allocs,omitempty"`
	Slabs   []Slab   `json:"slab_failures,omitempty"`
	Netns   []Netns  `json:"netns_failures,omitempty"`
	Memory  *Memory  `json:"memory,omitempty"` // nil when no snapshot had been taken
	// Memcg is the memory cgroup whose limit refused charges, as read for
	// this failure (internal/memcg.Judge); nil when none was at its limit
	// or none was read.
	Memcg   *memcg.Finding `json:"memcg,omitempty"`
	Verdict Verdict        `json:"verdict"`
	Top     TopCgroup      `json:"fragmenting_cgroups"`
	// NextSteps name the knobs that apply to the cause and what each trades.
	NextSteps []string `json:"next_steps"`
	// Kernel is what the kernel log said about this failure; nil when no
	// kernel report was part of it (kernellog.go).
	Kernel *KernelLog `json:"kernel_log,omitempty"`
	// Stalls is the task's and its cgroup's direct compaction and reclaim
	// stalls before the failure; nil when none were seen (stalls.go).
	Stalls *Stalls `json:"stalls,omitempty"`
}

// Syscall is the failed namespace syscall.
type Syscall struct {
	Name      string        `json:"name,omitempty"`       // clone, clone3, unshare, setns
	Flags     uint64        `json:"flags"`                // raw flags (setns: nstype)
	FlagsText string        `json:"flags_text,omitempty"` // "CLONE_NEWNS|CLONE_NEWNET"; namespace bits only
	Errno     int32         `json:"errno"`                // positive
	ErrnoName string        `json:"errno_name,omitempty"` // "ENOMEM"
	Enter     time.Time     `json:"enter,omitempty"`
	Latency   time.Duration `json:"latency_ns"`
}

// Task is who failed.
type Task struct {
	PID        uint32 `json:"pid"`
	TID        uint32 `json:"tid"`
	Comm       string `json:"comm"`
	CgroupID   uint64 `json:"cgroup_id"`
	CgroupPath string `json:"cgroup_path,omitempty"`
	// Container is who the cgroup belongs to, from its path (runtime,
	// container id, pod UID) and the CRI (pod name and namespace, when it
	// was reachable while recording); nil outside containers.
	Container *Container `json:"container,omitempty"`
}

// Container names the container and pod of the failing task.
type Container struct {
	Runtime string `json:"runtime,omitempty"`
	ID      string `json:"id,omitempty"`
	// Name is the runtime's name for the container (docker's, the
	// CRI's, a ctr or runc id), when it answered while recording.
	Name string `json:"name,omitempty"`
	// RuntimeNamespace is a ctr container's containerd namespace.
	RuntimeNamespace string `json:"runtime_namespace,omitempty"`
	PodUID           string `json:"pod_uid,omitempty"`
	PodName          string `json:"pod_name,omitempty"`
	PodNamespace     string `json:"pod_namespace,omitempty"`
	QoS              string `json:"qos,omitempty"`
	// Attribution says how the container was found: AttributedPath,
	// AttributedRuntime or AttributedSandbox (a guess: see Guess).
	Attribution string `json:"attribution"`
	// Guess explains a guessed attribution: what it was chosen from and
	// how many pods fitted.
	Guess string `json:"guess,omitempty"`
	// SandboxID is the guessed sandbox's id, when the runtime listed it.
	SandboxID string `json:"sandbox_id,omitempty"`
}

// Container.Attribution values.
const (
	// AttributedPath: the cgroup path alone names the container.
	AttributedPath = "cgroup_path"
	// AttributedRuntime: the runtime's state or API confirmed whose
	// cgroup it is (plain runc, ctr, docker's --cgroup-parent).
	AttributedRuntime = "runtime"
	// AttributedSandbox: the failing task is the runtime's own (containerd
	// making a pod's netns); the pod is the sandbox it was most likely
	// creating at that time. A guess.
	AttributedSandbox = "sandbox_being_created"
	// AttributedRuncCommand: the failing task is a runc init stage whose
	// cgroup names nothing (rootless runc); its runc ancestor's
	// `run|create ID` command line names the container.
	AttributedRuncCommand = "runc_command"
)

// Alloc is one failed page allocation inside the syscall.
type Alloc struct {
	Time            time.Time `json:"time"`
	Order           uint8     `json:"order"`
	GFP             uint64    `json:"gfp"`
	GFPText         string    `json:"gfp_text"`
	Migratetype     int8      `json:"migratetype"` // -1: not seen by the hook (fexit)
	MigratetypeName string    `json:"migratetype_name"`
	Stack           []string  `json:"stack,omitempty"` // innermost frame first, as the kernel prints it
	Hook            string    `json:"hook"`
	// Primary marks the allocation the verdict is about (see Correlator).
	Primary bool `json:"primary,omitempty"`
}

// Slab is one slab cache that could not be created.
type Slab struct {
	Name  string `json:"name"`
	Group string `json:"group"` // slabname.Group: "nf_conntrack_<ptr>"
	Size  uint32 `json:"object_size"`
}

// Netns is one failed copy_net_ns.
type Netns struct {
	Errno     int32  `json:"errno"` // positive
	ErrnoName string `json:"errno_name"`
}

// Memory is the free-memory picture closest to the failure.
type Memory struct {
	Time time.Time `json:"time"`
	// Reason is the snapshot's: "at_failure" (the kernel's reading of the
	// failing node's free lists at the failure), "failure" (/proc read
	// after it, or a log's Mem-Info), "interval", "start".
	Reason           string `json:"reason"`
	PageSize         uint32 `json:"page_size"`
	ExtfragThreshold int    `json:"extfrag_threshold"`
	// Order is the order of the primary failed allocation, -1 without one.
	Order int `json:"order"`
	// TargetZone is the highest zone the primary allocation may use, from
	// its gfp zone modifiers; the allocator falls back from it to the zones
	// below (Zone.Eligible).
	TargetZone string `json:"target_zone,omitempty"`
	Zones      []Zone `json:"zones"`
}

// Zone is one zone of the picture.
type Zone struct {
	Node       int      `json:"node"`
	Name       string   `json:"zone"`
	FreeBlocks []uint64 `json:"free_blocks"` // index = order
	FreeKB     uint64   `json:"free_kb"`     // the zone's free counter (lists' sum when unknown)
	// LargestFreeOrder is the highest order with a free block, -1 if none.
	LargestFreeOrder int `json:"largest_free_order"`
	// FragIndex is the kernel fragmentation index per order in thousandths
	// (-1000: a block that size is free; near 1000: fragmentation; near 0:
	// lack of memory), as /sys/kernel/debug/extfrag/extfrag_index shows it.
	FragIndex      []int  `json:"frag_index"`
	HaveWatermarks bool   `json:"have_watermarks"`
	MinKB          uint64 `json:"min_kb"`
	LowKB          uint64 `json:"low_kb"`
	HighKB         uint64 `json:"high_kb"`
	// Eligible: the primary allocation may be served from this zone.
	Eligible bool `json:"eligible"`
	// ReserveKB is the lowmem_reserve this zone keeps back from an
	// allocation whose highest zone is TargetZone (estimated, see reserve).
	ReserveKB uint64 `json:"reserve_kb,omitempty"`
	// Verdict for the primary allocation's order in this zone: the
	// snapshot package's ok, fragmentation, exhaustion or none, or
	// "reserved" when only lowmem_reserve stands in the way; empty when the
	// zone is not eligible.
	Verdict string `json:"verdict,omitempty"`
}

// Verdict is the classification with the reasons behind it.
type Verdict struct {
	Cause   Cause    `json:"cause"`
	Reasons []string `json:"reasons"`
}

// TopCgroup lists the cgroups with the most fragmenting extfrag fallbacks
// (an allocation stealing part of a pageblock of another migratetype) in
// the window before the failure.
type TopCgroup struct {
	Window  time.Duration `json:"window_ns"`
	Ticks   int           `json:"ticks"` // intervals summed
	Total   uint64        `json:"total"` // fragmenting fallbacks of every cgroup
	Cgroups []CgroupFrag  `json:"cgroups,omitempty"`
}

// CgroupFrag is one cgroup's fragmenting fallbacks in the window.
type CgroupFrag struct {
	ID          uint64 `json:"id"`
	Path        string `json:"path,omitempty"`
	Fragmenting uint64 `json:"fragmenting"`
}
