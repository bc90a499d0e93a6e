/* Who suffers: direct compaction and direct/memcg reclaim stalls, timed per
 * task and counted per (cgroup, kind, order) in log2 nanosecond buckets.
 * Only the counters cross to userspace (polled every tick); the per-task
 * ring of recent stalls crosses only when that task's allocation fails,
 * copied by pagealloc.bpf.c (bpf/taskstalls.bpf.h).
 *
 * Direct compaction starts at compaction:mm_compaction_try_to_compact_pages
 * (the first statement of try_to_compact_pages) and ends at an fexit or
 * kretprobe on try_to_compact_pages, with its compact_result. Where neither
 * attaches it ends at the first thing the allocator does after it: the
 * task's mm_page_alloc (the slowpath returning, success or not), its next
 * direct reclaim, compact_retry or reclaim_retry_zone; the result is then
 * the largest mm_compaction_end status of the run, as try_to_compact_pages
 * itself computes rc = max(status, rc) over the zones.
 *
 * Twins per tracepoint: raw_tp (positional arguments, checked against the
 * kernel's BTF by the loader) and the classic tracepoint (fields at offsets
 * the loader reads from the format files). */
#include "common.bpf.h"
#include "taskstalls.bpf.h"

KEEP_TYPE(struct stall_key, stall_key);
KEEP_TYPE(struct stall_hist, stall_hist);
KEEP_TYPE(struct zone_compact_key, zone_compact_key);
KEEP_TYPE(struct zone_compact, zone_compact);

/* Not per-CPU: a stall is microseconds to seconds, an atomic add is noise
 * beside it, and a 472-byte value per CPU per key would cost megabytes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct stall_key);
	__type(value, struct stall_hist);
} stall_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct zone_compact_key);
	__type(value, struct zone_compact);
} zone_compacts SEC(".maps");

/* kcompactd wake-ups by order. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_ORDERS);
	__type(key, __u32);
	__type(value, __u64);
} kcompactd_wakes SEC(".maps");

/* Stalls not counted because stall_hists was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} stall_overflow SEC(".maps");


/* Direct compactions in flight that only a later tracepoint can close: the
 * mm_page_alloc closer returns at once while this is 0, so the page
 * allocation hot path pays an inlined array load, not a hash lookup. A map,
 * not a global, because the reclaim hook's object closes them too. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} open_compactions SEC(".maps");

static __always_inline bool any_open(void)
{
	__u32 k0 = 0;
	__u64 *n = bpf_map_lookup_elem(&open_compactions, &k0);

	return n && *n;
}

static __always_inline void add_open(__s64 d)
{
	__u32 k0 = 0;
	__u64 *n = bpf_map_lookup_elem(&open_compactions, &k0);

	if (n)
		__sync_fetch_and_add(n, d);
}

/* Set by the loader: try_to_compact_pages has an exit probe, so the
 * fallback closers leave direct compactions alone. */
const volatile bool exit_probe = false;

/* Classic tracepoint field offsets and sizes, indexed by enum tp_field. */
enum tp_field {
	F_TTCP_ORDER,
	F_TTCP_GFP,
	F_ZBEGIN_START,
	F_ZEND_START,
	F_ZEND_STATUS,
	F_WAKE_ORDER,
	F_RECLAIM_ORDER,
	F_RECLAIM_GFP,
	F_RECLAIM_NR,
	F_CRETRY_ORDER,
	F_CRETRY_RET,
	F_RRZ_ORDER,
	F_RRZ_WMARK,
	F_MEMCG_ORDER,
	F_MEMCG_GFP,
	F_MEMCG_NR,
	NR_TP_FIELDS,
};
const volatile __u32 tp_off[NR_TP_FIELDS] = {};
const volatile __u32 tp_size[NR_TP_FIELDS] = {};

static __always_inline __u64 tp_read(void *ctx, int f)
{
	__u64 v = 0;
	__u32 off = tp_off[f];

	switch (tp_size[f]) {
	case 8:
		bpf_probe_read_kernel(&v, 8, ctx + off);
		break;
	case 4:
		bpf_probe_read_kernel(&v, 4, ctx + off);
		break;
	case 1:
		bpf_probe_read_kernel(&v, 1, ctx + off);
		break;
	}
	return v;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

static __always_inline __u32 bucket_of(__u64 ns)
{
	__u32 b = log2_u64(ns);

	b = b < STALL_BUCKETS ? b : STALL_BUCKETS - 1;
	asm volatile("" : "+r"(b));
	return b & 63;
}

static __always_inline struct stall_hist *hist_of(__u64 cgroup_id, __u8 kind, __u32 order)
{
	struct stall_key key = {.cgroup_id = cgroup_id, .kind = kind,
				.order = order < MAX_ORDERS ? order : MAX_ORDERS - 1};
	struct stall_hist *h = bpf_map_lookup_elem(&stall_hists, &key);
	static const struct stall_hist zero = {};

	if (h)
		return h;
	/* EEXIST: another CPU added it meanwhile; anything else: full. */
	if (bpf_map_update_elem(&stall_hists, &key, &zero, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&stall_hists, &key)) {
		__u32 k0 = 0;
		__u64 *over = bpf_map_lookup_elem(&stall_overflow, &k0);

		if (over)
			__sync_fetch_and_add(over, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&stall_hists, &key);
}

static __always_inline struct task_stalls *task_state(bool create)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct task_stalls *t = bpf_map_lookup_elem(&stalls_by_task, &tid);
	static const struct task_stalls zero = {};

	if (t || !create)
		return t;
	bpf_map_update_elem(&stalls_by_task, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stalls_by_task, &tid);
}

/* Counts the task's stall in flight, remembers it and ends it; result < 0:
 * not known here. */
static __always_inline void finish(struct task_stalls *t, __u64 reclaimed, int result)
{
	__u64 now = bpf_ktime_get_ns(), dur = now - t->start_ns;
	struct stall_hist *h = hist_of(t->cgroup_id, t->kind, t->order);
	__u32 ri = result_index(result);
	struct recent_stall *r;

	if (h) {
		__sync_fetch_and_add(&h->count, 1);
		__sync_fetch_and_add(&h->total_ns, dur);
		if (reclaimed)
			__sync_fetch_and_add(&h->reclaimed, reclaimed);
		if (t->kind == STALL_DIRECT_COMPACTION)
			__sync_fetch_and_add(&h->results[ri], 1);
		__sync_fetch_and_add(&h->buckets[bucket_of(dur)], 1);
	}
	/* Only this task writes its entry: no lock, a reader may see a torn
	 * newest element, which its end_ns (written last) dates. */
	r = &t->s[t->next & (RECENT_STALLS - 1)];
	r->dur_ns = dur;
	r->reclaimed = reclaimed;
	r->gfp = t->gfp;
	r->kind = t->kind;
	r->order = t->order;
	r->result = ri;
	r->end_ns = now;
	t->next++;
	if (t->kind == STALL_DIRECT_COMPACTION && !exit_probe)
		add_open(-1);
	t->kind = 0;
}

static __always_inline void begin(__u8 kind, __u32 order, __u64 gfp)
{
	struct task_stalls *t = task_state(true);

	if (!t)
		return;
	/* A direct compaction no exit probe closed ends where the next stall
	 * of its task begins. */
	if (t->kind == STALL_DIRECT_COMPACTION && !exit_probe)
		finish(t, 0, t->result);
	t->start_ns = bpf_ktime_get_ns();
	t->cgroup_id = current_cgroup_id();
	t->gfp = gfp;
	t->order = order < MAX_ORDERS ? order : MAX_ORDERS - 1;
	t->result = -1;
	t->kind = kind;
	if (kind == STALL_DIRECT_COMPACTION && !exit_probe)
		add_open(1);
}

static __always_inline void end_reclaim(__u8 kind, __u64 nr_reclaimed)
{
	struct task_stalls *t = task_state(false);

	if (t && t->kind == kind)
		finish(t, nr_reclaimed, -1);
}

/* The fallback end of a direct compaction: the allocator moved on. The
 * page allocation hot path runs this: while no compaction is open it costs
 * an inlined array load, not a hash lookup. */
static __always_inline void close_compaction(void)
{
	struct task_stalls *t;

	if (exit_probe || !any_open())
		return;
	t = task_state(false);
	if (t && t->kind == STALL_DIRECT_COMPACTION)
		finish(t, 0, t->result);
}

static __always_inline void end_compaction(int result)
{
	struct task_stalls *t = task_state(false);

	if (t && t->kind == STALL_DIRECT_COMPACTION)
		finish(t, 0, result);
}

static __always_inline void zone_started(void)
{
	struct task_stalls *t = task_state(true);

	if (t)
		t->zone_begin_ns = bpf_ktime_get_ns();
}

static __always_inline void zone_ended(__u64 zone_start, int status)
{
	struct task_stalls *t = task_state(false);
	struct zone_compact_key key = {.zone_start = zone_start};
	struct zone_compact *z;
	__u64 dur;

	if (!t)
		return;
	if (t->kind == STALL_DIRECT_COMPACTION) {
		key.direct = 1;
		if (status > t->result)
			t->result = status;
	}
	if (!t->zone_begin_ns)
		return;
	dur = bpf_ktime_get_ns() - t->zone_begin_ns;
	t->zone_begin_ns = 0;
	z = bpf_map_lookup_elem(&zone_compacts, &key);
	if (!z) {
		static const struct zone_compact zero = {};

		bpf_map_update_elem(&zone_compacts, &key, &zero, BPF_NOEXIST);
		z = bpf_map_lookup_elem(&zone_compacts, &key);
		if (!z)
			return;
	}
	__sync_fetch_and_add(&z->count, 1);
	__sync_fetch_and_add(&z->total_ns, dur);
	__sync_fetch_and_add(&z->results[result_index(status)], 1);
	__sync_fetch_and_add(&z->buckets[bucket_of(dur)], 1);
}

static __always_inline void kcompactd_woken(__u32 order)
{
	__u32 o = order < MAX_ORDERS ? order : MAX_ORDERS - 1;
	__u64 *n = bpf_map_lookup_elem(&kcompactd_wakes, &o);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The allocator's decision after a compaction or reclaim attempt. */
static __always_inline void decided(__u8 kind, __u32 order, bool retry)
{
	struct stall_hist *h = hist_of(current_cgroup_id(), kind, order);

	if (!h)
		return;
	if (retry)
		__sync_fetch_and_add(&h->retries, 1);
	else
		__sync_fetch_and_add(&h->giveups, 1);
}

/* --- raw_tp twins: arguments as in TP_PROTO (checked against the kernel's
 * BTF by the loader, which picks the twin whose arguments fit) --- */

SEC("raw_tp/mm_compaction_try_to_compact_pages")
int BPF_PROG(compact_begin_raw, int order, gfp_t gfp, int prio)
{
	begin(STALL_DIRECT_COMPACTION, order, gfp);
	return 0;
}

SEC("raw_tp/mm_page_alloc")
int BPF_PROG(compact_close_raw)
{
	close_compaction();
	return 0;
}

SEC("raw_tp/mm_compaction_begin")
int BPF_PROG(zone_begin_raw)
{
	zone_started();
	return 0;
}

SEC("raw_tp/mm_compaction_end")
int BPF_PROG(zone_end_raw, void *cc, unsigned long zone_start, unsigned long zone_end, bool sync, int status)
{
	zone_ended(zone_start, status);
	return 0;
}

/* Up to 5.15: (zone_start, migrate_pfn, free_pfn, zone_end, sync, status). */
SEC("raw_tp/mm_compaction_end")
int BPF_PROG(zone_end_raw515, unsigned long zone_start, unsigned long migrate_pfn, unsigned long free_pfn,
	     unsigned long zone_end, bool sync, int status)
{
	zone_ended(zone_start, status);
	return 0;
}

SEC("raw_tp/mm_compaction_kcompactd_wake")
int BPF_PROG(kcompactd_wake_raw, int nid, int order)
{
	kcompactd_woken(order);
	return 0;
}

SEC("raw_tp/compact_retry")
int BPF_PROG(compact_retry_raw, int order, int priority, int result, int retries, int max_retries, bool ret)
{
	close_compaction();
	decided(STALL_DIRECT_COMPACTION, order, ret);
	return 0;
}

SEC("raw_tp/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(direct_reclaim_begin_raw, int order, gfp_t gfp)
{
	begin(STALL_DIRECT_RECLAIM, order, gfp);
	return 0;
}

/* 7.3: (gfp_flags, order, memcg); 6.18 and before: (order, gfp_flags). */
SEC("raw_tp/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(direct_reclaim_begin_raw7, gfp_t gfp, int order)
{
	begin(STALL_DIRECT_RECLAIM, order, gfp);
	return 0;
}

SEC("raw_tp/mm_vmscan_direct_reclaim_end")
int BPF_PROG(direct_reclaim_end_raw, unsigned long nr_reclaimed)
{
	end_reclaim(STALL_DIRECT_RECLAIM, nr_reclaimed);
	return 0;
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memcg_reclaim_begin_raw, int order, gfp_t gfp)
{
	begin(STALL_MEMCG_RECLAIM, order, gfp);
	return 0;
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memcg_reclaim_begin_raw7, gfp_t gfp, int order)
{
	begin(STALL_MEMCG_RECLAIM, order, gfp);
	return 0;
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(memcg_reclaim_end_raw, unsigned long nr_reclaimed)
{
	end_reclaim(STALL_MEMCG_RECLAIM, nr_reclaimed);
	return 0;
}

/* Only a zone that passed the check is a decision to retry; a give-up is
 * the absence of one, which no single event shows. */
SEC("raw_tp/reclaim_retry_zone")
int BPF_PROG(reclaim_retry_raw, void *zoneref, int order, unsigned long reclaimable, unsigned long available,
	     unsigned long min_wmark, int no_progress_loops, bool wmark_check)
{
	close_compaction();
	if (wmark_check)
		decided(STALL_DIRECT_RECLAIM, order, true);
	return 0;
}

/* --- classic tracepoint twins --- */

SEC("tracepoint/compaction/mm_compaction_try_to_compact_pages")
int compact_begin_tp(void *ctx)
{
	begin(STALL_DIRECT_COMPACTION, tp_read(ctx, F_TTCP_ORDER), tp_read(ctx, F_TTCP_GFP));
	return 0;
}

SEC("tracepoint/kmem/mm_page_alloc")
int compact_close_tp(void *ctx)
{
	close_compaction();
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_begin")
int zone_begin_tp(void *ctx)
{
	zone_started();
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_end")
int zone_end_tp(void *ctx)
{
	zone_ended(tp_read(ctx, F_ZEND_START), (int)tp_read(ctx, F_ZEND_STATUS));
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_kcompactd_wake")
int kcompactd_wake_tp(void *ctx)
{
	kcompactd_woken(tp_read(ctx, F_WAKE_ORDER));
	return 0;
}

SEC("tracepoint/oom/compact_retry")
int compact_retry_tp(void *ctx)
{
	close_compaction();
	decided(STALL_DIRECT_COMPACTION, tp_read(ctx, F_CRETRY_ORDER), tp_read(ctx, F_CRETRY_RET) != 0);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_reclaim_begin_tp(void *ctx)
{
	begin(STALL_DIRECT_RECLAIM, tp_read(ctx, F_RECLAIM_ORDER), tp_read(ctx, F_RECLAIM_GFP));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_reclaim_end_tp(void *ctx)
{
	end_reclaim(STALL_DIRECT_RECLAIM, tp_read(ctx, F_RECLAIM_NR));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_reclaim_begin_tp(void *ctx)
{
	begin(STALL_MEMCG_RECLAIM, tp_read(ctx, F_MEMCG_ORDER), tp_read(ctx, F_MEMCG_GFP));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_reclaim_end_tp(void *ctx)
{
	end_reclaim(STALL_MEMCG_RECLAIM, tp_read(ctx, F_MEMCG_NR));
	return 0;
}

SEC("tracepoint/oom/reclaim_retry_zone")
int reclaim_retry_tp(void *ctx)
{
	close_compaction();
	if (tp_read(ctx, F_RRZ_WMARK))
		decided(STALL_DIRECT_RECLAIM, tp_read(ctx, F_RRZ_ORDER), true);
	return 0;
}

/* --- exit probes on try_to_compact_pages: the compact_result --- */

/* Typed arguments, the result after the last one: no bpf_get_func_ret
 * (5.17+), so this loads wherever fexit does (5.5+). try_to_compact_pages
 * is (gfp_mask, order, alloc_flags, ac, prio, capture) since Linux 5.1
 * ("mm, compaction: capture a page under direct compaction"; `capc` in 7.x);
 * the loader checks the count in the kernel's BTF. */
SEC("fexit")
int BPF_PROG(compact_fexit6, gfp_t gfp, unsigned int order, unsigned int alloc_flags, void *ac, int prio,
	     void *capture, int ret)
{
	end_compaction(ret);
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(compact_kretprobe, int ret)
{
	end_compaction(ret);
	return 0;
}
