// Package event defines the typed events that flow from a source (the live
// ringbuf and counter polls, or a recorded trace) into the aggregator and the
// views. Everything downstream of a source sees only these types, which is what
// lets a recording replay through exactly the code a live session runs.
package event

import (
	"context"
	"time"
)

// Kind identifies an event type. Values are part of the trace format: never renumber.
type Kind uint8

const (
	KindStart       Kind = 1 // session metadata, always first
	KindAllocFail   Kind = 2 // a page allocation returned NULL
	KindSlabCreate  Kind = 3 // kmem_cache_create family returned
	KindNetnsCreate Kind = 4 // copy_net_ns returned
	KindNsSyscall   Kind = 5 // a namespace syscall failed
	KindTick        Kind = 6 // interval boundary with in-kernel counter deltas
	KindMemSnapshot Kind = 7 // free-memory picture
	KindCgroupPath  Kind = 8 // cgroup id -> path learned
)

func (k Kind) String() string {
	switch k {
	case KindStart:
		return "start"
	case KindAllocFail:
		return "alloc_fail"
	case KindSlabCreate:
		return "slab_create"
	case KindNetnsCreate:
		return "netns_create"
	case KindNsSyscall:
		return "ns_syscall"
	case KindTick:
		return "tick"
	case KindMemSnapshot:
		return "mem_snapshot"
	case KindCgroupPath:
		return "cgroup_path"
	case KindKernelReport:
		return "kernel_report"
	case KindStall:
		return "stall"
	case KindMemcgState:
		return "memcg_state"
	case KindMemStalls:
		return "mem_stalls"
	case KindTaskMemStalls:
		return "task_mem_stalls"
	}
	return "unknown"
}

// Event is implemented by every event type.
type Event interface {
	Kind() Kind
	When() time.Time
}

// Source produces events in order until the context ends or the input is
// exhausted. emit is called from one goroutine only; it must not retain ev
// beyond the call unless it copies it.
type Source interface {
	Run(ctx context.Context, emit func(ev Event)) error
}

// Orders and Migratetypes bound the in-kernel counter arrays. x86_64 has 11
// orders (NR_PAGE_ORDERS); 16 leaves room for CONFIG_ARCH_FORCE_MAX_ORDER.
const (
	Orders       = 16
	Migratetypes = 8
)

// Task identifies who was running when the event fired.
type Task struct {
	PID      uint32 `json:"pid"`
	TID      uint32 `json:"tid"`
	Comm     string `json:"comm"`
	CgroupID uint64 `json:"cgroup_id"`
	NetnsIno uint32 `json:"netns_ino"`
}

// SyscallRef ties an event to the watched namespace syscall the task was
// inside when it fired. Zero when the task was in none.
type SyscallRef struct {
	Syscall string    `json:"syscall,omitempty"`
	Enter   time.Time `json:"enter,omitempty"`
}

// Inside reports whether the reference names a syscall.
func (r SyscallRef) Inside() bool { return r.Syscall != "" }

// HookStatus says how one hook attached, or why it did not.
type HookStatus struct {
	Hook      string `json:"hook"`
	Mechanism string `json:"mechanism,omitempty"` // tp_btf, raw_tp, tracepoint, fentry, kprobe...
	Target    string `json:"target,omitempty"`    // symbol or tracepoint name
	Attached  bool   `json:"attached"`
	Reason    string `json:"reason,omitempty"` // why not attached, or why better mechanisms were not used: one line (probes.Reason)
}

// Flag is one named bit pattern of a flag table read from the running kernel.
type Flag struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Start carries the session's metadata. It is the first event of every source.
type Start struct {
	Time           time.Time    `json:"time"`
	Hostname       string       `json:"hostname"`
	KernelRelease  string       `json:"kernel_release"`
	BootID         string       `json:"boot_id"`
	PageSize       uint32       `json:"page_size"`
	PageblockOrder uint8        `json:"pageblock_order"`
	Version        string       `json:"fragscope_version"`
	Hooks          []HookStatus `json:"hooks"`
	GFPFlags       []Flag       `json:"gfp_flags"`    // the running kernel's gfp table
	Migratetypes   []string     `json:"migratetypes"` // index = kernel value
	// Preamble is set on the Start that opens a flight-recorder segment:
	// the number of records after it that restate the session's state
	// (cgroup paths, the latest snapshot), which a reader joining segments
	// skips when it has seen them already. Zero everywhere else.
	Preamble int `json:"preamble,omitempty"`
}

func (e *Start) Kind() Kind      { return KindStart }
func (e *Start) When() time.Time { return e.Time }

// AllocFail is a page allocation that returned NULL.
type AllocFail struct {
	Time        time.Time  `json:"time"`
	Task        Task       `json:"task"`
	Order       uint8      `json:"order"`
	GFP         uint64     `json:"gfp"`
	Migratetype int8       `json:"migratetype"` // -1 when the hook cannot see it (fexit)
	Stack       []string   `json:"stack,omitempty"`
	Hook        string     `json:"hook"` // "tracepoint" or "fexit": fexit also sees injected failures; "kmsg": the kernel log
	In          SyscallRef `json:"in"`
	// Duplicate marks a failure read from the kernel log that a BPF hook
	// already reported (same task and order within a second): the
	// aggregator does not count it again; the correlator takes it as more
	// evidence of the same failure.
	Duplicate bool `json:"duplicate,omitempty"`
}

func (e *AllocFail) Kind() Kind      { return KindAllocFail }
func (e *AllocFail) When() time.Time { return e.Time }

// SlabCreate is one return from the kmem_cache_create family.
type SlabCreate struct {
	Time    time.Time     `json:"time"`
	Task    Task          `json:"task"`
	Name    string        `json:"name"`
	Size    uint32        `json:"size"`
	Flags   uint64        `json:"flags"`
	Failed  bool          `json:"failed"`
	Latency time.Duration `json:"latency_ns"`
	In      SyscallRef    `json:"in"`
}

func (e *SlabCreate) Kind() Kind      { return KindSlabCreate }
func (e *SlabCreate) When() time.Time { return e.Time }

// NetnsCreate is one return from copy_net_ns.
type NetnsCreate struct {
	Time    time.Time     `json:"time"`
	Task    Task          `json:"task"`
	Errno   int32         `json:"errno"` // 0 on success
	Inode   uint32        `json:"inode"` // the new netns inode on success
	Latency time.Duration `json:"latency_ns"`
	In      SyscallRef    `json:"in"`
}

func (e *NetnsCreate) Kind() Kind      { return KindNetnsCreate }
func (e *NetnsCreate) When() time.Time { return e.Time }

// NsSyscall is a failed clone, clone3, unshare or setns.
type NsSyscall struct {
	Time    time.Time     `json:"time"`
	Task    Task          `json:"task"`
	Syscall string        `json:"syscall"`
	Flags   uint64        `json:"flags"` // clone/unshare flags; setns nstype
	Errno   int32         `json:"errno"`
	Enter   time.Time     `json:"enter"`
	Latency time.Duration `json:"latency_ns"`
	// Sandbox is the pod sandbox a container runtime was most likely
	// creating when a network namespace creation failed in the runtime's
	// own process (containerd's CRI, CRI-O's pinns), as the live source
	// guessed it from the CRI and kubelet's pod log directories; recorded
	// because replay cannot ask. Nil for every other failure.
	Sandbox *SandboxGuess `json:"sandbox,omitempty"`
	// Runc names the runc container of a failing runc init stage by the
	// `runc run|create` command that started it, read live where the
	// cgroup names no container (runc in a user namespace skips cgroups
	// it cannot write); recorded because replay cannot ask.
	Runc *RuncTask `json:"runc,omitempty"`
}

// RuncTask is the runc container a task belonged to, from its runc
// ancestor's command line.
type RuncTask struct {
	ID        string `json:"id"`
	StateRoot string `json:"state_root"` // runc --root: whose runc it is (docker, containerd, CRI-O)
}

// SandboxGuess names the pod a failed runtime-made namespace was most
// likely for. It is a guess: the failing task is the runtime's.
type SandboxGuess struct {
	PodUID       string `json:"pod_uid,omitempty"`
	PodName      string `json:"pod_name,omitempty"`
	PodNamespace string `json:"pod_namespace,omitempty"`
	SandboxID    string `json:"sandbox_id,omitempty"`
	Candidates   int    `json:"candidates"` // pods that fitted; this is the newest
	Why          string `json:"why"`
}

func (e *NsSyscall) Kind() Kind      { return KindNsSyscall }
func (e *NsSyscall) When() time.Time { return e.Time }

// ExtfragKey is one bucket of the in-kernel extfrag counters.
type ExtfragKey struct {
	CgroupID      uint64 `json:"cgroup_id"`
	AllocOrder    uint8  `json:"alloc_order"`
	FallbackOrder uint8  `json:"fallback_order"`
	AllocMT       uint8  `json:"alloc_migratetype"`
	FallbackMT    uint8  `json:"fallback_migratetype"`
	Fragmenting   bool   `json:"fragmenting"`
}

// ExtfragCount is a counter delta for one key.
type ExtfragCount struct {
	ExtfragKey
	Count uint64 `json:"count"`
}

// CgroupAlloc is one cgroup's allocation counters: unmovable and
// reclaimable allocations by order, high-order allocations (any
// migratetype) and failed allocations.
type CgroupAlloc struct {
	CgroupID    uint64         `json:"cgroup_id"`
	Unmovable   [Orders]uint64 `json:"unmovable"`
	Reclaimable [Orders]uint64 `json:"reclaimable"`
	HighOrder   uint64         `json:"high_order"`
	Failures    uint64         `json:"failures"`
}

// Zero reports whether every counter is zero.
func (c *CgroupAlloc) Zero() bool {
	if c.HighOrder != 0 || c.Failures != 0 {
		return false
	}
	for o := range c.Unmovable {
		if c.Unmovable[o] != 0 || c.Reclaimable[o] != 0 {
			return false
		}
	}
	return true
}

// Tick closes an interval. Counts are deltas since the previous Tick.
type Tick struct {
	Time     time.Time                    `json:"time"`
	Interval time.Duration                `json:"interval_ns"`
	Allocs   [Orders][Migratetypes]uint64 `json:"-"`
	Extfrag  []ExtfragCount               `json:"extfrag,omitempty"`
	Drops    uint64                       `json:"drops"`            // ringbuf reserve failures in the interval
	Overflow uint64                       `json:"extfrag_overflow"` // extfrag keys lost because the map was full
	// Cgroups are the per-cgroup allocation counter deltas, cgroups with
	// no change left out, sorted by id.
	Cgroups        []CgroupAlloc `json:"cgroups,omitempty"`
	CgroupOverflow uint64        `json:"cgroup_overflow"` // allocations not attributed: the cgroup map was full
}

func (e *Tick) Kind() Kind      { return KindTick }
func (e *Tick) When() time.Time { return e.Time }

// CgroupPath records what a cgroup id resolved to.
type CgroupPath struct {
	Time    time.Time `json:"time"`
	ID      uint64    `json:"id"`
	Path    string    `json:"path"`
	Removed bool      `json:"removed"`
	// PodName and PodNamespace come from the CRI when it was reachable
	// while recording; recordings carry them because replay cannot ask.
	PodName      string `json:"pod_name,omitempty"`
	PodNamespace string `json:"pod_namespace,omitempty"`
	// Runtime and ContainerID are set when the container runtime's state
	// or API confirmed a layout the path alone cannot tell (plain runc, ctr,
	// docker's --cgroup-parent); ContainerName is the runtime's name for
	// it, RuntimeNamespace a ctr container's containerd namespace.
	// Recorded for the same reason as the pod names.
	Runtime          string `json:"runtime,omitempty"`
	ContainerID      string `json:"container_id,omitempty"`
	ContainerName    string `json:"container_name,omitempty"`
	RuntimeNamespace string `json:"runtime_namespace,omitempty"`
}

func (e *CgroupPath) Kind() Kind      { return KindCgroupPath }
func (e *CgroupPath) When() time.Time { return e.Time }

// KindKernelReport is a report the kernel printed to its log (a page
// allocation failure, an OOM kill, a failed kmem_cache_create...), read from
// a log file or /dev/kmsg by internal/kernlog.
const KindKernelReport Kind = 9

// KernelReport is one report the kernel printed, as internal/kmsg read it.
// The evidence it carries also arrives as the ordinary events before it (an
// AllocFail with Hook "kmsg", a "failure" MemSnapshot of its Mem-Info, a
// SlabCreate), in the same stream; this event says what the log said and
// what of it could not be read, and it ends the incident of its task, since
// no syscall exit will: the correlator closes with "kernel_log".
type KernelReport struct {
	Time time.Time `json:"time"`
	Task Task      `json:"task"`
	// Kind is kmsg.Kind: page_alloc_failure, oom, slab_create_failure,
	// conntrack_slab, slub_alloc_failure, vmalloc_failure, mem_info, ...
	ReportKind string `json:"kind"`
	Header     string `json:"header"`
	// Source names the log ("/dev/kmsg", a file name, "-" for stdin);
	// FirstLine and LastLine are the report's input lines (1-based).
	Source    string `json:"source,omitempty"`
	FirstLine int    `json:"first_line"`
	LastLine  int    `json:"last_line"`
	// KernelRelease is what the report's "CPU: ... Comm:" line printed.
	KernelRelease string `json:"kernel_release,omitempty"`
	// Order is -1 when the report does not say; GFP is valid with HaveGFP;
	// GFPNames are the flag names the kernel printed after the mask.
	Order    int      `json:"order"`
	GFP      uint64   `json:"gfp"`
	HaveGFP  bool     `json:"have_gfp"`
	GFPNames []string `json:"gfp_names,omitempty"`
	// Trace is the call trace, innermost first, "func+0xoff/0xsize [module]".
	Trace []string `json:"trace,omitempty"`
	// HaveMemInfo says a Mem-Info dump was read with the report (and sent
	// as a "failure" MemSnapshot just before this event).
	HaveMemInfo bool `json:"have_mem_info"`
	// Slab is the cache a failed kmem_cache_create named.
	Slab string `json:"slab,omitempty"`
	// Suppressed is N of "<SuppressedBy>: N callbacks suppressed".
	Suppressed   int    `json:"suppressed,omitempty"`
	SuppressedBy string `json:"suppressed_by,omitempty"`
	OOM          *OOM   `json:"oom,omitempty"`
	// Unreadable names, per input line, what belonged to the report but
	// could not be read.
	Unreadable []string `json:"unreadable,omitempty"`
	// More says another report of the same failure follows in this stream
	// (a kmem_cache_create failure after its page allocation failure): the
	// incident stays open until the last one.
	More bool `json:"more,omitempty"`
}

func (e *KernelReport) Kind() Kind      { return KindKernelReport }
func (e *KernelReport) When() time.Time { return e.Time }

// OOM is what an OOM-killer report says beyond its gfp and order.
type OOM struct {
	// Constraint is "CONSTRAINT_MEMCG", "CONSTRAINT_NONE", ... as printed
	// or inferred from the kill line.
	Constraint string `json:"constraint,omitempty"`
	// Memcg is the cgroup whose limit was hit, when the report names one.
	Memcg    string         `json:"memcg,omitempty"`
	Counters []MemcgCounter `json:"counters,omitempty"`
	// KilledPID and KilledComm are the victim; 0 and "" when not printed.
	KilledPID  int    `json:"killed_pid,omitempty"`
	KilledComm string `json:"killed_comm,omitempty"`
}

// MemcgCounter is "memory: usage 1048576kB, limit 1048576kB, failcnt 1234".
type MemcgCounter struct {
	Name    string `json:"name"`
	UsageKB uint64 `json:"usage_kb"`
	LimitKB uint64 `json:"limit_kb"`
	Failcnt uint64 `json:"failcnt"`
}

// KindStall is a task stuck past the stall threshold in a watched call.
const KindStall Kind = 11

// CallMemcgOOMWait is Stall.Call for a task in the cgroup v1 memcg OOM wait.
const CallMemcgOOMWait = "memcg_oom_wait"

// Stall ends, as Stall.End names them ("" while the call still runs).
const (
	StallReturned = "returned" // the syscall returned (Errno says how)
	StallResumed  = "resumed"  // the task left the memcg OOM wait
	StallExited   = "exited"   // the task is gone: it died inside the call
	StallLost     = "lost"     // the call's exit was not seen (ringbuf drop, evicted entry)
)

// Stall is a task inside a namespace syscall (clone, clone3, unshare,
// setns) or in the cgroup v1 memcg OOM wait ("memcg_oom_wait") for longer
// than the session's stall threshold. The live source reports it once
// while it still runs (End empty), and again when it ends; a call that
// crossed the threshold and ended between two scans gets only the end.
type Stall struct {
	Time time.Time `json:"time"`
	Task Task      `json:"task"`
	// Call is the syscall's name, or "memcg_oom_wait".
	Call  string `json:"call"`
	Flags uint64 `json:"flags,omitempty"` // the syscall's flags (setns: nstype)
	// Enter is when the call began; for the memcg OOM wait, the end of the
	// task's last reclaim against the cgroup's limit, just before it slept.
	Enter time.Time `json:"enter"`
	// Duration is Time - Enter: how long it has run so far, or in all.
	Duration time.Duration `json:"duration_ns"`
	// End is "" while running, else one of the Stall* ends.
	End string `json:"end,omitempty"`
	// Errno is the syscall's result when End is "returned": 0 for success.
	Errno int32 `json:"errno,omitempty"`
	// Wchan is where the task slept when the running stall was reported
	// (/proc/<pid>/task/<tid>/wchan), "" when unreadable or at the end.
	Wchan string `json:"wchan,omitempty"`
	// Memcg is, for a running memcg OOM wait, the memory cgroup whose
	// limit the task waits on (often an ancestor of its own); nil when it
	// could not be read.
	Memcg *StallMemcg `json:"memcg,omitempty"`
}

// StallMemcg is the v1 memory cgroup at its limit that holds a task in
// the OOM wait, read when the stall was reported.
type StallMemcg struct {
	Path       string `json:"path"` // in the memory hierarchy
	LimitBytes uint64 `json:"limit_bytes"`
	UsageBytes uint64 `json:"usage_bytes"`
}

func (e *Stall) Kind() Kind      { return KindStall }
func (e *Stall) When() time.Time { return e.Time }

// Running reports whether the stall was still going on when reported.
func (e *Stall) Running() bool { return e.End == "" }
