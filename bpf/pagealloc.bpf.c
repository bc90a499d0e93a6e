/* kmem:mm_page_alloc: count every allocation per CPU by order x migratetype;
 * stream only failures (page == NULL) to the ringbuf.
 *
 * Three twins of the same program, one loaded per run (the loader picks):
 * tp_btf (typed args, ~14 ns/event here), raw_tp (~0 ns here), and the
 * classic tracepoint (~45 ns), whose record layout differs across kernels and
 * is therefore read at offsets the loader takes from the tracefs format file.
 * An optional fexit on the __alloc_pages* function also sees failures injected
 * by should_fail_alloc_page, which return before the tracepoint fires. */
#include "common.bpf.h"
#include "taskstalls.bpf.h"

KEEP_TYPE(struct alloc_fail_event, alloc_fail_event);
KEEP_TYPE(struct failure_stalls_event, failure_stalls_event);
KEEP_TYPE(struct zone_capture_event, zone_capture_event);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct alloc_counts);
} page_alloc_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cgroup_alloc);
} cgroup_allocs SEC(".maps");

/* Allocations not attributed because cgroup_allocs was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cgroup_overflow SEC(".maps");

const volatile bool attribute = true;
const volatile __u32 high_order_min = 3;
/* MIGRATE_RECLAIMABLE: 2 since Linux 4.4 (MOVABLE and RECLAIMABLE swapped in
 * commit 016c13daa5c9 "mm, page_alloc: use masks and shifts when converting
 * GFP flags to migrate types"), 1 before. UNMOVABLE is 0 on every kernel. */
const volatile __u32 mt_reclaimable = 2;

/* Failures the tracepoint already streamed, by tid, so the fexit twin does
 * not report them twice. Only written when the fexit program is attached. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} tp_failed SEC(".maps");

const volatile bool fexit_attached = false;

/* Classic tracepoint layout, from events/kmem/mm_page_alloc/format. Before
 * Linux 4.3 (commit "mm, tracing: unify mm flags handling"... era) the record
 * held `struct page *page` (NULL = failure) rather than `pfn` (-1 = failure);
 * gfp_flags widened from unsigned int to unsigned long in 4.x. */
const volatile __u32 tp_off_page = 8;
const volatile __u32 tp_page_is_pfn = 1;
const volatile __u32 tp_off_order = 16;
const volatile __u32 tp_off_gfp = 24;
const volatile __u32 tp_gfp_size = 8;
const volatile __u32 tp_off_mt = 32;

static __always_inline void count_alloc(__u32 order, int mt)
{
	__u32 zero = 0, o, m, idx;
	struct alloc_counts *c = bpf_map_lookup_elem(&page_alloc_counts, &zero);

	if (!c)
		return;
	/* Out-of-range values land in the last bucket. The empty asm stops
	 * clang from folding the final bound check into the clamps, which
	 * leaves an index the verifier cannot prove bounded. */
	o = order < MAX_ORDERS ? order : MAX_ORDERS - 1;
	m = (__u32)mt < MAX_MIGRATETYPES ? (__u32)mt : MAX_MIGRATETYPES - 1;
	idx = o * MAX_MIGRATETYPES + m;
	asm volatile("" : "+r"(idx));
	if (idx >= MAX_ORDERS * MAX_MIGRATETYPES)
		return;
	c->n[idx] += 1;
}

static __always_inline void count_cgroup(__u32 order, int mt, bool failed)
{
	__u64 id = current_cgroup_id();
	struct cgroup_alloc *c = bpf_map_lookup_elem(&cgroup_allocs, &id);
	__u32 o = order < MAX_ORDERS ? order : MAX_ORDERS - 1;

	if (!c) {
		struct cgroup_alloc zero = {};
		__u32 key0 = 0;
		__u64 *over;

		/* EEXIST: another CPU added it meanwhile; anything else: full. */
		if (bpf_map_update_elem(&cgroup_allocs, &id, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&cgroup_allocs, &id)) {
			over = bpf_map_lookup_elem(&cgroup_overflow, &key0);
			if (over)
				*over += 1;
			return;
		}
		c = bpf_map_lookup_elem(&cgroup_allocs, &id);
		if (!c)
			return;
	}
	/* Opaque to clang, so the mask survives for the verifier (o < 16
	 * already holds; MAX_ORDERS is a power of two). */
	asm volatile("" : "+r"(o));
	o &= MAX_ORDERS - 1;
	if (mt == 0)
		c->unmovable[o] += 1;
	else if ((__u32)mt == mt_reclaimable)
		c->reclaimable[o] += 1;
	if (order >= high_order_min)
		c->high_order += 1;
	if (failed)
		c->failures += 1;
}

/* Set by the loader when the compaction or reclaim hook shares its
 * stalls_by_task map with this object. */
const volatile bool stalls_shared = false;

/* Streams the failing task's stalls, if it has had new ones since its last
 * failure: a storm of failures without stalls between them costs a lookup
 * each, and one with stalls is bounded by the stalls, microseconds each. */
static __always_inline void emit_failure_stalls(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct task_stalls *t = bpf_map_lookup_elem(&stalls_by_task, &tid);
	struct failure_stalls_event *e;
	struct recent_stall *r;
	__u64 now;

	if (!t || (t->kind == 0 && (__u8)t->next == t->failure_next))
		return;
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	now = bpf_ktime_get_ns();
	fill_header(&e->hdr, EVENT_FAILURE_STALLS);
	e->tid = tid;
	e->_pad = 0;
	__builtin_memcpy(&e->t, t, sizeof(e->t));
	t->failure_next = (__u8)t->next;
	if (t->kind == STALL_DIRECT_COMPACTION) {
		/* Open: without an exit probe, the mm_page_alloc closer (attached
		 * after this program) ends it at this very failure. */
		r = &e->t.s[e->t.next & (RECENT_STALLS - 1)];
		r->end_ns = now;
		r->dur_ns = now - t->start_ns;
		r->reclaimed = 0;
		r->gfp = t->gfp;
		r->kind = t->kind;
		r->order = t->order;
		r->result = result_index(t->result);
		__builtin_memset(r->_pad, 0, sizeof(r->_pad));
		e->t.next++;
	}
	submit_event(e);
}

/* The nodes' pglist_data, found by kallsyms (the loader resolves untyped
 * __ksym variables): node_data[], an array of pointers, on CONFIG_NUMA
 * kernels (every x86 Debian kernel), the one contig_page_data without NUMA.
 * Weak: a kernel with neither (or kallsyms hidden by kptr_restrict) still
 * loads, its failures go without a capture. */
extern void node_data __ksym __weak;
extern void contig_page_data __ksym __weak;

#define CAPTURE_MAX_NODES 1024 /* MAX_NUMNODES of CONFIG_NODES_SHIFT=10, Debian's */

/* At most one capture per CPU per capture_gap_ns: a storm's failures on
 * one CPU within 10 ms meet the same free lists give or take what
 * kcompactd, woken by the first, did since, and a capture costs 16 probe
 * reads a populated zone (11 orders), one an empty one: +6.3 us on an
 * 8.8 us failure path in the TCG guest (BenchmarkVMFailureCapture). 100
 * captures a second per CPU at 1040 bytes each stay far below the 2 MiB
 * ringbuf. A failure without a capture is judged on the /proc
 * snapshot as before. */
const volatile __u64 capture_gap_ns = 10 * 1000 * 1000;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_capture SEC(".maps");

static __always_inline __u64 read_ulong(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), p);
	return v;
}

/* Streams the free lists, free pages and watermarks of every zone of the
 * node the failing allocation preferred. bpf_get_numa_node_id is the CPU's
 * node, the preferred node of a local allocation (what nearly every
 * failing caller makes); an allocation for another node is captured on
 * the CPU's. Offsets and counts are CO-RE relocations against the running
 * kernel's BTF: zones = sizeof(node_zones) / sizeof(struct zone), orders =
 * sizeof(free_area) / sizeof(struct free_area), which is MAX_ORDER before
 * Linux 6.8 and NR_PAGE_ORDERS after (commit 23baf831a32c made MAX_ORDER
 * inclusive), without naming either. Read without zone->lock
 * (which /proc/buddyinfo takes): a count another CPU changes meanwhile may
 * be off by that change. */
static __always_inline void emit_zone_capture(void)
{
	__u32 zero = 0, nzones, norders, i, o;
	__u64 *last = bpf_map_lookup_elem(&last_capture, &zero);
	__u64 now = bpf_ktime_get_ns(), zsize, fsize, off_zones, off_area, off_nr_free, off_stat, off_wmark;
	__u64 stat_free, w_min, w_low, w_high, off_present, off_boost = 0;
	struct zone_capture_event *e;
	const void *pgdat = 0, *z;
	int nid;

	if (!last || (*last && now - *last < capture_gap_ns))
		return;
	nid = bpf_get_numa_node_id();
	if (&node_data) {
		if (nid < 0 || nid >= CAPTURE_MAX_NODES)
			return;
		pgdat = (const void *)read_ulong((const void *)&node_data + (__u64)nid * sizeof(void *));
	} else if (&contig_page_data) {
		pgdat = &contig_page_data;
	}
	if (!pgdat)
		return;
	*last = now;
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	/* Too large for __builtin_memset: every byte is written below (a
	 * reserved record is not zeroed). */
	__builtin_memset(e, 0, offsetof(struct zone_capture_event, z));
	fill_header(&e->hdr, EVENT_ZONE_CAPTURE);
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->node = nid;

	zsize = bpf_core_type_size(struct zone);
	fsize = bpf_core_type_size(struct free_area);
	nzones = zsize ? bpf_core_field_size(struct pglist_data, node_zones) / zsize : 0;
	norders = fsize ? bpf_core_field_size(struct zone, free_area) / fsize : 0;
	e->nr_zones = nzones;
	e->nr_orders = norders;
	off_zones = bpf_core_field_offset(struct pglist_data, node_zones);
	off_area = bpf_core_field_offset(struct zone, free_area);
	off_nr_free = bpf_core_field_offset(struct free_area, nr_free);
	off_stat = bpf_core_field_offset(struct zone, vm_stat);
	off_wmark = bpf_core_field_offset(struct zone, _watermark);
	off_present = bpf_core_field_offset(struct zone, present_pages);
	stat_free = bpf_core_enum_value(enum zone_stat_item, NR_FREE_PAGES);
	w_min = bpf_core_enum_value(enum zone_watermarks, WMARK_MIN);
	w_low = bpf_core_enum_value(enum zone_watermarks, WMARK_LOW);
	w_high = bpf_core_enum_value(enum zone_watermarks, WMARK_HIGH);
	/* watermark_boost: Linux 5.0 (commit 1c30844d2dfe), every kernel of
	 * the matrix has it; checked so an older one reads 0. */
	if (bpf_core_field_exists(struct zone, watermark_boost))
		off_boost = bpf_core_field_offset(struct zone, watermark_boost);

	for (i = 0; i < CAPTURE_ZONES; i++) {
		struct zone_free *f = &e->z[i];

		z = pgdat + off_zones + i * zsize;
		/* An unpopulated zone (Movable, Device, small machines' Normal)
		 * has empty lists: one read instead of sixteen. */
		if (i >= nzones || !read_ulong(z + off_present)) {
			__builtin_memset(f, 0, sizeof(*f));
			continue;
		}
		f->free_pages = read_ulong(z + off_stat + stat_free * sizeof(long));
		f->wmark[0] = read_ulong(z + off_wmark + w_min * sizeof(long));
		f->wmark[1] = read_ulong(z + off_wmark + w_low * sizeof(long));
		f->wmark[2] = read_ulong(z + off_wmark + w_high * sizeof(long));
		f->boost = off_boost ? read_ulong(z + off_boost) : 0;
		for (o = 0; o < CAPTURE_ORDERS; o++)
			f->nr_free[o] = o < norders ? read_ulong(z + off_area + o * fsize + off_nr_free) : 0;
	}
	submit_event(e);
}

static __always_inline void emit_failure(void *ctx, __u32 order, __u64 gfp, int mt, __u8 hook)
{
	struct alloc_fail_event *e;

	if (stalls_shared)
		emit_failure_stalls();
	emit_zone_capture();
	e = reserve_event(sizeof(*e));

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, EVENT_ALLOC_FAIL);
	fill_task(&e->task);
	fill_syscall_ref(&e->in);
	e->gfp = gfp;
	e->order = order;
	e->migratetype = mt;
	e->hook = hook;
	e->stack_id = bpf_get_stackid(ctx, &stacks, 0);
	submit_event(e);
}

static __always_inline void on_alloc(void *ctx, bool failed, __u32 order, __u64 gfp, int mt)
{
	count_alloc(order, mt);
	/* Attribution only for what fragments or suffers: movable order-0..2
	 * allocations, the bulk, skip the per-cgroup lookup entirely. */
	if (attribute && (mt == 0 || (__u32)mt == mt_reclaimable || order >= high_order_min || failed))
		count_cgroup(order, mt, failed);
	if (!failed)
		return;
	emit_failure(ctx, order, gfp, mt, ALLOC_HOOK_TRACEPOINT);
	if (fexit_attached) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		__u8 one = 1;

		bpf_map_update_elem(&tp_failed, &tid, &one, BPF_ANY);
	}
}

SEC("tp_btf/mm_page_alloc")
int BPF_PROG(page_alloc_btf, struct page *page, unsigned int order, gfp_t gfp, int mt)
{
	on_alloc(ctx, !page, order, gfp, mt);
	return 0;
}

SEC("raw_tp/mm_page_alloc")
int BPF_PROG(page_alloc_raw, struct page *page, unsigned int order, gfp_t gfp, int mt)
{
	on_alloc(ctx, !page, order, gfp, mt);
	return 0;
}

SEC("tracepoint/kmem/mm_page_alloc")
int page_alloc_tp(void *ctx)
{
	__u64 page = 0, gfp = 0;
	__u32 order = 0;
	int mt = 0;
	bool failed;

	bpf_probe_read_kernel(&page, sizeof(page), ctx + tp_off_page);
	bpf_probe_read_kernel(&order, sizeof(order), ctx + tp_off_order);
	if (tp_gfp_size == 8)
		bpf_probe_read_kernel(&gfp, 8, ctx + tp_off_gfp);
	else
		bpf_probe_read_kernel(&gfp, 4, ctx + tp_off_gfp);
	bpf_probe_read_kernel(&mt, sizeof(mt), ctx + tp_off_mt);
	failed = tp_page_is_pfn ? page == (__u64)-1 : page == 0;
	on_alloc(ctx, failed, order, gfp, mt);
	return 0;
}

static __always_inline void on_alloc_return(void *ctx, bool failed, __u32 order, __u64 gfp)
{
	__u32 tid;

	if (!failed)
		return;
	tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_lookup_elem(&tp_failed, &tid)) {
		bpf_map_delete_elem(&tp_failed, &tid);
		return;
	}
	if (attribute)
		count_cgroup(order, -1, true);
	emit_failure(ctx, order, gfp, -1, ALLOC_HOOK_FEXIT);
}

/* Attached by the loader to __alloc_frozen_pages_noprof (6.15+),
 * __alloc_pages_noprof (6.10+), __alloc_pages (5.13+) or
 * __alloc_pages_nodemask (5.10): (gfp, order, preferred_nid, nodemask), and
 * from 7.x __alloc_frozen_pages_noprof takes alloc_flags after them. Typed
 * arguments, the return value after the last one: no bpf_get_func_arg/ret,
 * which only Linux 5.17 has, so these load wherever fexit does (5.5+). One
 * program per arity; the loader checks the prototype in the kernel's BTF. */
SEC("fexit")
int BPF_PROG(page_alloc_fexit4, gfp_t gfp, unsigned int order, __u64 a2, __u64 a3, struct page *ret)
{
	on_alloc_return(ctx, !ret, order, gfp);
	return 0;
}

SEC("fexit")
int BPF_PROG(page_alloc_fexit5, gfp_t gfp, unsigned int order, __u64 a2, __u64 a3, __u64 a4, struct page *ret)
{
	on_alloc_return(ctx, !ret, order, gfp);
	return 0;
}

/* The kprobe twin, for kernels without trampolines: the entry keeps the
 * arguments by tid, the return looks at the page. An allocation from an
 * interrupt on the same task's CPU overwrites the entry, so the outer
 * failure may be reported with the inner call's arguments: rare, and the
 * opt-in fexit is exact. */
struct alloc_args {
	__u64 gfp;
	__u32 order;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct alloc_args);
} alloc_calls SEC(".maps");

SEC("kprobe")
int BPF_KPROBE(page_alloc_kprobe, gfp_t gfp, unsigned int order)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct alloc_args a = { .gfp = gfp, .order = order };

	bpf_map_update_elem(&alloc_calls, &tid, &a, BPF_ANY);
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(page_alloc_kretprobe, void *ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct alloc_args *a = bpf_map_lookup_elem(&alloc_calls, &tid);
	struct alloc_args args;

	if (!a)
		return 0;
	args = *a;
	bpf_map_delete_elem(&alloc_calls, &tid);
	on_alloc_return(ctx, !ret, args.order, args.gfp);
	return 0;
}
