package kmsg

import "time"

// Kind says which kernel message opened a report.
type Kind string

const (
	// KindPageAllocFailure: "<comm>: page allocation failure: order:N, mode:0x..."
	// (2.6: "page allocation failure. order:N, mode:0x...").
	KindPageAllocFailure Kind = "page_alloc_failure"
	// KindPageAllocStall: "<comm>: page allocation stalls for Nms, order:N, mode:..." (4.9-4.14).
	KindPageAllocStall Kind = "page_alloc_stall"
	// KindOOM: "<comm> invoked oom-killer: gfp_mask=..., order=N, oom_score_adj=N"
	// through the "Killed process" line.
	KindOOM Kind = "oom"
	// KindSlabCreateFailure: "kmem_cache_create(NAME) failed with error -12" (3.10
	// follows it with dump_stack) and its later spellings (kmem_cache_create_usercopy,
	// __kmem_cache_create_args), or the SLAB_PANIC "Failed to create slab 'NAME'".
	KindSlabCreateFailure Kind = "slab_create_failure"
	// KindConntrackSlab: nf_conntrack's own "Unable to create nf_conn slab cache".
	KindConntrackSlab Kind = "conntrack_slab"
	// KindSLUBAllocFailure: "SLUB: Unable to allocate memory on node N, gfp=..."
	// with its "cache:" and "node N: slabs:" lines.
	KindSLUBAllocFailure Kind = "slub_alloc_failure"
	// KindSLABAllocFailure: the same from the SLAB allocator ("SLAB: Unable to allocate memory").
	KindSLABAllocFailure Kind = "slab_alloc_failure"
	// KindVmallocFailure: "vmalloc: allocation failure, allocated X of Y bytes",
	// "vmalloc error: size N, ...", "vmap allocation for size N failed".
	// On kernels before 4.9 the vmalloc line is printed just before a
	// "page allocation failure: order:0" of the same call; the parser merges
	// the two into this one report (Order 0, the gfp from the second line).
	KindVmallocFailure Kind = "vmalloc_failure"
	// KindCallbacksSuppressed: "<func>: N callbacks suppressed" (printk
	// ratelimit): N reports of <func> (warn_alloc, warn_alloc_failed, ...) were dropped.
	KindCallbacksSuppressed Kind = "callbacks_suppressed"
	// KindMemInfo: a Mem-Info dump with no report header before it (an
	// excerpt that starts at "Mem-Info:", SysRq-m "Show Memory").
	KindMemInfo Kind = "mem_info"
)

// Report is one kernel report found in the input.
type Report struct {
	Kind Kind `json:"kind"`
	// Time is when the report's first line was logged, as far as the log says.
	Time Timestamp `json:"time"`
	// Lines is the range of input lines (1-based, inclusive) the report was
	// read from; lines of other messages interleaved in it are inside the range.
	Lines LineRange `json:"lines"`
	// Header is the report's first message line, without the log prefix.
	Header string `json:"header"`

	// Task is the failing task, from the header and the "CPU: N PID: M Comm: X" line.
	Task Task `json:"task"`
	// Kernel is the release and taint from the "CPU:" (or 2.6 "Pid:") line.
	Kernel Kernel `json:"kernel"`

	// Order is the allocation order; -1 when the report does not say.
	Order int `json:"order"`
	// GFP is the printed mode (page allocation failure) or gfp_mask (OOM, SLUB);
	// HaveGFP is false when none was printed or it could not be read.
	GFP     uint64 `json:"gfp"`
	HaveGFP bool   `json:"have_gfp"`
	// GFPNames are the flag names the kernel printed in parentheses after
	// the mask (4.9+), e.g. ["GFP_KERNEL", "__GFP_COMP"]; nil when none were.
	GFPNames []string `json:"gfp_names,omitempty"`
	// Nodemask, Cpuset and MemsAllowed are as printed ("(null)", "0-1", "/").
	Nodemask    string `json:"nodemask,omitempty"`
	Cpuset      string `json:"cpuset,omitempty"`
	MemsAllowed string `json:"mems_allowed,omitempty"`

	// Trace is the call trace, innermost frame first.
	Trace []Frame `json:"trace,omitempty"`
	// MemInfo is the Mem-Info dump printed for this report; nil when none was.
	MemInfo *MemInfo `json:"mem_info,omitempty"`

	OOM       *OOM       `json:"oom,omitempty"`
	Slab      *SlabCache `json:"slab,omitempty"`       // KindSlabCreateFailure
	SlabAlloc *SlabAlloc `json:"slab_alloc,omitempty"` // KindSLUBAllocFailure, KindSLABAllocFailure
	Vmalloc   *Vmalloc   `json:"vmalloc,omitempty"`    // KindVmallocFailure

	// Suppressed is N of "<func>: N callbacks suppressed" and SuppressedBy
	// is <func> (KindCallbacksSuppressed).
	Suppressed   int    `json:"suppressed,omitempty"`
	SuppressedBy string `json:"suppressed_by,omitempty"`

	// Unreadable lists, one entry per problem, what belonged to this report
	// but could not be read, each naming the input line: "line 41: zone
	// Normal free list: order 3: unreadable "11x*32kB"". Empty when all was read.
	Unreadable []string `json:"unreadable,omitempty"`
}

// LineRange is a 1-based inclusive range of input lines.
type LineRange struct {
	First int `json:"first"`
	Last  int `json:"last"`
}

// Timestamp is what a log line says about when it was written. A line can
// carry both kinds (syslog "Nov 12 15:15:41 host kernel: [ 123.456]").
type Timestamp struct {
	// Uptime is the printk timestamp (time since boot); HaveUptime says it was printed.
	Uptime     time.Duration `json:"uptime_ns,omitempty"`
	HaveUptime bool          `json:"have_uptime,omitempty"`
	// Wall is the date the log's prefix gave (syslog, journalctl, dmesg -T,
	// ISO 8601). Syslog and journalctl dates carry no year: Options.Year is
	// used, else the year is 0. Zero when the line had no date.
	Wall time.Time `json:"wall,omitzero"`
	// Caller is printk's caller id ("T2438" task, "C3" CPU) when printed
	// (CONFIG_PRINTK_CALLER), or a logcat/vendor "[pid:..,cpu..,name]" tag.
	Caller string `json:"caller,omitempty"`
}

// Task is the task the kernel names in a report.
type Task struct {
	Comm string `json:"comm,omitempty"`
	PID  int    `json:"pid"` // -1 when not printed
	CPU  int    `json:"cpu"` // -1 when not printed
}

// Kernel is what the "CPU: 1 PID: 18377 Comm: exe Not tainted
// 3.10.0-514.el7.x86_64 #1" and "Hardware name:" lines say.
type Kernel struct {
	Release  string `json:"release,omitempty"` // "3.10.0-514.el7.x86_64"
	Tainted  string `json:"tainted,omitempty"` // taint letters, "" for "Not tainted"
	Build    string `json:"build,omitempty"`   // "#1", "#1 SMP PREEMPT_DYNAMIC"...
	Hardware string `json:"hardware,omitempty"`
}

// Frame is one call-trace entry: "[<ffffffff811869a0>] warn_alloc_failed+0x110/0x180",
// " ? __alloc_pages_slowpath+0x6b7/0x725 [mod]", arm32 "(show_stack+0x10/0x14)".
type Frame struct {
	Func   string `json:"func"`
	Offset uint64 `json:"offset"`
	Size   uint64 `json:"size,omitempty"`
	Module string `json:"module,omitempty"`
	Addr   uint64 `json:"addr,omitempty"`
	// Unreliable is the "? " mark: an address found on the stack that the
	// unwinder could not prove to be a return address.
	Unreliable bool `json:"unreliable,omitempty"`
}

// MemInfo is one Mem-Info dump. Global counters are in pages, as printed;
// node and zone counters are in kB, as printed.
type MemInfo struct {
	Lines LineRange `json:"lines"`
	// Global is the first block ("active_anon:44762 ... free:113585
	// free_pcp:39 free_cma:0"), name to value in pages.
	Global map[string]uint64 `json:"global,omitempty"`
	// Nodes are the per-node lines of 4.8+ ("Node 0 active_anon:...kB ...").
	Nodes []MemInfoNode `json:"nodes,omitempty"`
	Zones []MemInfoZone `json:"zones,omitempty"`
	// Hugepages are the "Node N hugepages_total=..." lines.
	Hugepages []Hugepages `json:"hugepages,omitempty"`
	// Summary holds the closing lines of show_mem, under these keys (absent
	// when not printed): "pagecache_pages" (N total pagecache pages),
	// "swap_cache_pages", "free_swap_kB", "total_swap_kB", "ram_pages",
	// "highmem_pages" (HighMem/MovableOnly), "reserved_pages",
	// "cma_reserved_pages", "hwpoisoned_pages", "shared_pages", "nonshared_pages".
	Summary map[string]uint64 `json:"summary,omitempty"`
	// PageKB is the base page size in kB, from the first free-list column
	// ("4kB", "16kB", "64kB"); 0 when no free-list line was read.
	PageKB uint64 `json:"page_kb,omitempty"`
}

// MemInfoNode is a 4.8+ per-node line: counters in kB (or pages where the
// kernel printed no unit, e.g. pages_scanned), and yes/no flags.
type MemInfoNode struct {
	Node     int               `json:"node"`
	Counters map[string]uint64 `json:"counters"`
	Flags    map[string]bool   `json:"flags,omitempty"` // "all_unreclaimable"
}

// MemInfoZone is one zone of a Mem-Info dump: the stats line, the
// lowmem_reserve line printed after it and the zone's free-list line.
// Values are kB as printed unless named otherwise.
type MemInfoZone struct {
	Node int    `json:"node"` // -1 when the kernel printed no "Node N" (no CONFIG_NUMA)
	Zone string `json:"zone"`
	// HaveStats says the "Node N ZONE free:...kB min:..." line was read.
	HaveStats bool   `json:"have_stats"`
	FreeKB    uint64 `json:"free_kb"`
	BoostKB   uint64 `json:"boost_kb,omitempty"` // 5.0+
	MinKB     uint64 `json:"min_kb"`
	LowKB     uint64 `json:"low_kb"`
	HighKB    uint64 `json:"high_kb"`
	// ReservedHighatomicKB is 4.4+'s reserved_highatomic (printed "KB").
	ReservedHighatomicKB uint64 `json:"reserved_highatomic_kb,omitempty"`
	PresentKB            uint64 `json:"present_kb,omitempty"`
	ManagedKB            uint64 `json:"managed_kb,omitempty"` // 3.8+
	MlockedKB            uint64 `json:"mlocked_kb,omitempty"`
	FreePCPKB            uint64 `json:"free_pcp_kb,omitempty"`
	LocalPCPKB           uint64 `json:"local_pcp_kb,omitempty"`
	FreeCMAKB            uint64 `json:"free_cma_kb,omitempty"`
	// Counters holds every counter of the stats line, the named ones above
	// included ("active_anon", "isolated(anon)", "pages_scanned", ...).
	Counters map[string]uint64 `json:"counters,omitempty"`
	// Flags holds the yes/no fields ("all_unreclaimable").
	Flags map[string]bool `json:"flags,omitempty"`
	// Protection is the lowmem_reserve[] line printed after the zone, in
	// pages: Protection[i] is what this zone keeps back from a request whose
	// highest usable zone is the i-th zone of the node. nil when not printed.
	Protection []uint64 `json:"protection,omitempty"`
	// FreeList is the zone's free-list line; nil when not printed or not read.
	FreeList *FreeList `json:"free_list,omitempty"`
}

// FreeList is "Node 0 Normal: 34178*4kB (UEM) 20118*8kB (UEM) ... = 311640kB".
type FreeList struct {
	// PageKB is the size of the order-0 column in kB.
	PageKB uint64 `json:"page_kb"`
	// Count[o] is the number of free blocks of order o. The number of
	// orders is what the kernel printed (11 on x86_64, 14 on some 64 kB arm64).
	Count []uint64 `json:"count"`
	// Types[o] are the migratetype letters printed after Count[o] (3.x+):
	// which free lists of that order hold at least one block: U Unmovable,
	// M Movable, E Reclaimable, H HighAtomic (4.4+), C CMA, I Isolate,
	// R Reserve (before 4.4). The letters do not say how the count splits
	// between the lists; "" when none were printed (zero count, or 2.6).
	Types []string `json:"types,omitempty"`
	// Known[o] is false when order o's column could not be read (elided,
	// cut, garbled); Count[o] is then 0. nil when every column was read.
	Known []bool `json:"known,omitempty"`
	// TotalKB is the "= NkB" total as printed, under the zone lock; it is not
	// the zone's free: counter, which also counts per-cpu lists and drifts.
	// HaveTotal is false when the line was cut before it.
	TotalKB   uint64 `json:"total_kb"`
	HaveTotal bool   `json:"have_total"`
}

// Hugepages is "Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB".
type Hugepages struct {
	Node   int    `json:"node"`
	Total  uint64 `json:"total"`
	Free   uint64 `json:"free"`
	Surp   uint64 `json:"surp"`
	SizeKB uint64 `json:"size_kb"`
}

// OOM is what an OOM-killer report adds to the header's gfp_mask and order.
type OOM struct {
	OOMScoreAdj     int  `json:"oom_score_adj"`
	HaveOOMScoreAdj bool `json:"have_oom_score_adj"`
	// Memcg is the memory cgroup part (mem_cgroup_print_oom_info); nil for a
	// global OOM that printed none.
	Memcg *MemcgOOM `json:"memcg,omitempty"`
	// Constraint is from "oom-kill:constraint=CONSTRAINT_MEMCG,..." (4.19+)
	// or inferred from the kill line's wording ("Memory cgroup out of memory").
	Constraint string `json:"constraint,omitempty"`
	// OOMMemcg and TaskMemcg are the oom-kill line's oom_memcg= and task_memcg=.
	OOMMemcg  string `json:"oom_memcg,omitempty"`
	TaskMemcg string `json:"task_memcg,omitempty"`
	// Killed is the victim; nil when the kill line was not in the input.
	Killed *Killed `json:"killed,omitempty"`
}

// MemcgOOM is mem_cgroup_print_oom_info's part of an OOM report.
type MemcgOOM struct {
	// Path is the cgroup ("Task in /a killed as a result of limit of /b":
	// /b; 4.19+: oom_memcg=).
	Path     string `json:"path,omitempty"`
	TaskPath string `json:"task_path,omitempty"`
	// Counters are the "memory:", "memory+swap:", "kmem:", "swap:" lines.
	Counters []MemcgCounter `json:"counters,omitempty"`
}

// MemcgCounter is "memory: usage 1048576kB, limit 1048576kB, failcnt 1234".
type MemcgCounter struct {
	Name    string `json:"name"` // "memory", "memory+swap", "kmem", "swap"
	UsageKB uint64 `json:"usage_kb"`
	LimitKB uint64 `json:"limit_kb"`
	Failcnt uint64 `json:"failcnt"`
}

// Killed is "Killed process 1234 (java) total-vm:...kB, anon-rss:...kB, ...".
type Killed struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Score is from the older "Kill process N (x) score S or sacrifice child".
	Score int `json:"score,omitempty"`
	// Counters are the kB fields of the kill line (total-vm, anon-rss,
	// file-rss, shmem-rss, pgtables).
	Counters map[string]uint64 `json:"counters,omitempty"`
}

// SlabCache is a failed slab cache creation.
type SlabCache struct {
	// Name is the cache name as printed: "nf_conntrack_ffff8803eef66180" or
	// 3.10's per-memcg "nf_conntrack_ffff8803eef66180(5:docker-1234.scope)".
	Name string `json:"name"`
	// Base, MemcgID and Cgroup split 3.10's per-memcg name "base(ID:cgroup)";
	// MemcgID is -1 for an ordinary name.
	Base    string `json:"base,omitempty"`
	MemcgID int    `json:"memcg_id"`
	Cgroup  string `json:"cgroup,omitempty"`
	// Func is the printing function ("kmem_cache_create", "kmem_cache_create_usercopy", ...).
	Func  string `json:"func,omitempty"`
	Errno int    `json:"errno"` // -12 (ENOMEM)
}

// SlabAlloc is "SLUB: Unable to allocate memory on node -1, gfp=0x8020(__GFP_ZERO)"
// and the lines after it.
type SlabAlloc struct {
	Node   int             `json:"node"` // -1: any node (NUMA_NO_NODE)
	Caches []SlabCacheStat `json:"caches,omitempty"`
}

// SlabCacheStat is "  cache: kmalloc-2048, object size: 2048, buffer size:
// 2048, default order: 3, min order: 0" and its "  node 0: slabs: 25, objs:
// 400, free: 0" lines (SLAB prints "slabs: a/b, objs: c/d").
type SlabCacheStat struct {
	Name         string         `json:"name"`
	ObjectSize   int            `json:"object_size"`
	BufferSize   int            `json:"buffer_size,omitempty"`
	DefaultOrder int            `json:"default_order"`
	MinOrder     int            `json:"min_order"`
	Nodes        []SlabNodeStat `json:"nodes,omitempty"`
}

// SlabNodeStat is one "node N: slabs: ..., objs: ..., free: ..." line.
type SlabNodeStat struct {
	Node  int    `json:"node"`
	Slabs uint64 `json:"slabs"`
	Objs  uint64 `json:"objs"`
	Free  uint64 `json:"free"`
}

// Vmalloc is what a vmalloc failure message says.
type Vmalloc struct {
	// AllocatedBytes and SizeBytes are "allocated X of Y bytes"; SizeBytes is
	// also "size N" of the 5.13+ "vmalloc error:" and of "vmap allocation for size N".
	AllocatedBytes uint64 `json:"allocated_bytes,omitempty"`
	SizeBytes      uint64 `json:"size_bytes"`
	// Reason is the text after the size ("vm_struct allocation failed",
	// "failed to allocate pages", ...).
	Reason string `json:"reason,omitempty"`
}
