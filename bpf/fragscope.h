/* Event records shared by the BPF programs and the Go decoders.
 *
 * Fixed-width fields, explicit padding, no packed structs: the Go types are
 * generated from this header's BTF by bpf2go (-type), never written by hand.
 * The first byte of every ringbuf record is its type (struct event_header).
 */
#ifndef FRAGSCOPE_H
#define FRAGSCOPE_H

#define TASK_COMM_LEN 16
#define SLAB_NAME_LEN 64

/* Bounds of the per-CPU allocation counters: index = order * MAX_MIGRATETYPES + mt. */
#define MAX_ORDERS 16
#define MAX_MIGRATETYPES 8

enum event_type {
	EVENT_ALLOC_FAIL = 1,
	EVENT_SLAB_CREATE = 2,
	EVENT_NETNS_CREATE = 3,
	EVENT_NS_SYSCALL = 4,
	EVENT_FAILURE_STALLS = 5, /* just before an alloc_fail of a task that stalled */
	EVENT_ZONE_CAPTURE = 6,   /* just before an alloc_fail: its node's free lists */
};

/* Watched namespace syscalls; 0 = none. */
enum ns_syscall {
	NS_SYSCALL_NONE = 0,
	NS_SYSCALL_CLONE = 1,
	NS_SYSCALL_CLONE3 = 2,
	NS_SYSCALL_UNSHARE = 3,
	NS_SYSCALL_SETNS = 4,
	NS_SYSCALL_FORK = 5,  /* exit only: never creates namespaces */
	NS_SYSCALL_VFORK = 6, /* exit only; dash and busybox spawn with it */
};

/* Which program saw an allocation failure. */
enum alloc_hook {
	ALLOC_HOOK_TRACEPOINT = 1, /* kmem:mm_page_alloc, any mechanism */
	ALLOC_HOOK_FEXIT = 2,      /* fexit on the __alloc_pages* function */
};

struct event_header {
	__u8 type;
	__u8 _pad[7];
	__u64 ts_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
};

struct task_info {
	__u64 cgroup_id;
	__u32 pid;
	__u32 tid;
	__u32 netns_ino;
	__u32 _pad;
	char comm[TASK_COMM_LEN];
};

/* The namespace syscall the task was inside when the event fired. */
struct syscall_ref {
	__u64 enter_ns;
	__u8 syscall; /* enum ns_syscall */
	__u8 _pad[7];
};

struct alloc_fail_event {
	struct event_header hdr;
	struct task_info task;
	struct syscall_ref in;
	__u64 gfp;
	__s32 stack_id; /* negative: no stack (errno) */
	__u8 order;
	__s8 migratetype; /* -1 where the hook cannot see it */
	__u8 hook;        /* enum alloc_hook */
	__u8 _pad;
};

struct slab_create_event {
	struct event_header hdr;
	struct task_info task;
	struct syscall_ref in;
	__u64 flags;
	__u64 latency_ns;
	__u32 size;
	__u8 failed;
	__u8 _pad[3];
	char name[SLAB_NAME_LEN];
};

struct netns_create_event {
	struct event_header hdr;
	struct task_info task;
	struct syscall_ref in;
	__u64 latency_ns;
	__s32 err; /* negative errno, 0 on success */
	__u32 inum;
};

struct ns_syscall_event {
	struct event_header hdr;
	struct task_info task;
	__u64 flags;
	__u64 enter_ns;
	__s64 ret;
	__u8 syscall; /* enum ns_syscall */
	__u8 _pad[7];
};

/* A namespace syscall in flight, by tid (nssyscall.bpf.c's ns_calls map):
 * who made it, captured at entry, so userspace can report a call that runs
 * past the stall threshold while it is still running, without asking the
 * task (it may be stuck for good). */
struct ns_call {
	__u64 enter_ns;
	__u64 flags;     /* clone/unshare flags; setns nstype */
	__u64 cgroup_id; /* as task_info's: v2 id or v1 memory cgroup id */
	__u32 pid;       /* tgid */
	__u8 syscall;    /* enum ns_syscall */
	__u8 _pad[3];
	char comm[TASK_COMM_LEN];
};

/* A task whose memory charge reclaimed against its memory cgroup's limit
 * (memcgwait.bpf.c's memcg_waits map), by tid: the candidates for the
 * cgroup v1 memcg OOM wait, which userspace confirms by the task's wchan. */
struct memcg_wait {
	__u64 last_ns;   /* the end of the latest memcg reclaim */
	__u64 cgroup_id;
	__u32 pid;
	__u32 _pad;
	char comm[TASK_COMM_LEN];
};

/* Key of the extfrag counters. */
struct extfrag_key {
	__u64 cgroup_id;
	__u8 alloc_order;
	__u8 fallback_order;
	__u8 alloc_mt;
	__u8 fallback_mt;
	__u8 fragmenting;
	__u8 _pad[3];
};

/* Per-cgroup allocation counters: what a cgroup does that fragments memory
 * or suffers from it. Movable low-order allocations are not counted: they
 * are the bulk of all allocations and compaction can move them. */
struct cgroup_alloc {
	__u64 unmovable[MAX_ORDERS];
	__u64 reclaimable[MAX_ORDERS];
	__u64 high_order; /* allocations of order >= high_order_min, any migratetype */
	__u64 failures;
};

struct alloc_counts {
	__u64 n[MAX_ORDERS * MAX_MIGRATETYPES];
};

/* Direct compaction and reclaim stalls (bpf/memstall.bpf.c). Counted in the
 * kernel per (cgroup, kind, order); nothing is streamed. */
#define STALL_BUCKETS 40 /* bucket i counts stalls of [2^i, 2^(i+1)) ns; the last, longer */
#define STALL_RESULTS 16 /* compact_result by kernel value; the last: not known */
#define RECENT_STALLS 8  /* per task, for the incident of a failure that follows */

enum stall_kind {
	STALL_DIRECT_COMPACTION = 1, /* try_to_compact_pages */
	STALL_DIRECT_RECLAIM = 2,    /* vmscan direct reclaim */
	STALL_MEMCG_RECLAIM = 3,     /* try_to_free_mem_cgroup_pages (limit or memory.high) */
};

struct stall_key {
	__u64 cgroup_id;
	__u8 kind; /* enum stall_kind */
	__u8 order;
	__u8 _pad[6];
};

struct stall_hist {
	__u64 count;
	__u64 total_ns;
	__u64 reclaimed; /* pages, reclaim kinds */
	__u64 retries;   /* compact_retry / reclaim_retry_zone decided to retry */
	__u64 giveups;   /* compact_retry decided to give up */
	__u64 results[STALL_RESULTS];
	__u64 buckets[STALL_BUCKETS];
};

/* One zone's compaction runs (mm_compaction_begin/end), direct or not. */
struct zone_compact_key {
	__u64 zone_start; /* pfn; userspace names the zone from zoneinfo */
	__u8 direct;
	__u8 _pad[7];
};

struct zone_compact {
	__u64 count;
	__u64 total_ns;
	__u64 results[STALL_RESULTS];
	__u64 buckets[STALL_BUCKETS];
};

struct recent_stall {
	__u64 end_ns;
	__u64 dur_ns;
	__u64 reclaimed;
	__u64 gfp;
	__u8 kind;
	__u8 order;
	__u8 result; /* index into stall_hist.results */
	__u8 _pad[5];
};

/* Everything one task's stalls need, in one map value, so a stall's begin
 * and end each cost one lookup of an entry that stays (bpf/memstall.bpf.c). */
struct task_stalls {
	/* The stall in flight; kind 0: none. */
	__u64 start_ns;
	__u64 cgroup_id;
	__u64 gfp;
	__u64 zone_begin_ns; /* the task's mm_compaction_begin; 0: none */
	__u8 kind;
	__u8 order;
	__s8 result; /* largest mm_compaction_end status so far; -1 none */
	__u8 failure_next; /* low byte of next at the task's last failure_stalls_event */
	__u8 _pad[4];
	/* The ring of recent stalls, for the incident of a failure that follows. */
	__u64 next;
	struct recent_stall s[RECENT_STALLS];
};

/* A failing task's recent stalls, copied by the program that reports the
 * failure (bpf/pagealloc.bpf.c) and streamed just before its alloc_fail:
 * read from userspace later, the task's ring would already hold the stalls
 * of its next allocations. A compaction no exit probe has closed yet (the
 * mm_page_alloc closer runs after this) is put in the copy's ring, ending
 * now. */
struct failure_stalls_event {
	struct event_header hdr;
	__u32 tid;
	__u32 _pad;
	struct task_stalls t;
};

/* The free lists of the failing allocation's node, read by the program
 * that reports the failure (bpf/pagealloc.bpf.c) and streamed just before
 * its alloc_fail: /proc read when userspace gets to the failure already
 * shows what kcompactd (woken by that failure) or frees assembled since.
 * Bounds, not the kernel's counts: MAX_NR_ZONES is 5 on x86-64 Debian
 * kernels (DMA, DMA32, Normal, Movable, Device), NR_PAGE_ORDERS 11; the
 * record says how many of each the kernel has (its BTF array lengths). */
#define CAPTURE_ZONES 6
#define CAPTURE_ORDERS MAX_ORDERS

struct zone_free {
	__u64 free_pages; /* vm_stat[NR_FREE_PAGES] */
	__u64 wmark[3];   /* _watermark[WMARK_MIN, LOW, HIGH], without the boost */
	__u64 boost;      /* watermark_boost; 0 where the kernel has none */
	__u64 nr_free[CAPTURE_ORDERS]; /* free_area[o].nr_free */
};

struct zone_capture_event {
	struct event_header hdr;
	__u32 tid;
	__s32 node;
	__u8 nr_zones;  /* zones of the node the kernel has (<= CAPTURE_ZONES read) */
	__u8 nr_orders; /* free_area orders the kernel has (<= CAPTURE_ORDERS read) */
	__u8 _pad[6];
	struct zone_free z[CAPTURE_ZONES];
};

#endif
