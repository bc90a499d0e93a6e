/* kmem:mm_page_alloc_extfrag: an allocation fell back to a free block of
 * another migratetype. Counted in the kernel by (cgroup, orders, migratetypes,
 * fragmenting); nothing is streamed. "Fragmenting" is only computed in the
 * tracepoint's print format: fallback_order < pageblock_order. */
#include "common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct extfrag_key);
	__type(value, __u64);
} extfrag_counts SEC(".maps");

/* Keys lost because extfrag_counts was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} extfrag_overflow SEC(".maps");

/* Read by the loader from /proc/pagetypeinfo: 9 on most x86_64, 10 on some. */
const volatile __u32 pageblock_order = 9;

/* Classic tracepoint layout from events/kmem/mm_page_alloc_extfrag/format. */
const volatile __u32 tp_off_alloc_order = 16;
const volatile __u32 tp_off_fallback_order = 20;
const volatile __u32 tp_off_alloc_mt = 24;
const volatile __u32 tp_off_fallback_mt = 28;

static __always_inline void on_extfrag(int alloc_order, int fallback_order, int alloc_mt, int fallback_mt)
{
	struct extfrag_key key = {};
	__u64 one = 1, *n;

	key.cgroup_id = current_cgroup_id();
	key.alloc_order = alloc_order;
	key.fallback_order = fallback_order;
	key.alloc_mt = alloc_mt;
	key.fallback_mt = fallback_mt;
	key.fragmenting = (__u32)fallback_order < pageblock_order;

	n = bpf_map_lookup_elem(&extfrag_counts, &key);
	if (n) {
		*n += 1;
		return;
	}
	if (bpf_map_update_elem(&extfrag_counts, &key, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU may have created the key meanwhile: retry the lookup
	 * before calling it an overflow. */
	n = bpf_map_lookup_elem(&extfrag_counts, &key);
	if (n) {
		*n += 1;
		return;
	}
	__u32 zero = 0;
	__u64 *o = bpf_map_lookup_elem(&extfrag_overflow, &zero);
	if (o)
		*o += 1;
}

SEC("tp_btf/mm_page_alloc_extfrag")
int BPF_PROG(extfrag_btf, struct page *page, int alloc_order, int fallback_order, int alloc_mt, int fallback_mt)
{
	on_extfrag(alloc_order, fallback_order, alloc_mt, fallback_mt);
	return 0;
}

SEC("raw_tp/mm_page_alloc_extfrag")
int BPF_PROG(extfrag_raw, struct page *page, int alloc_order, int fallback_order, int alloc_mt, int fallback_mt)
{
	on_extfrag(alloc_order, fallback_order, alloc_mt, fallback_mt);
	return 0;
}

SEC("tracepoint/kmem/mm_page_alloc_extfrag")
int extfrag_tp(void *ctx)
{
	int ao = 0, fo = 0, am = 0, fm = 0;

	bpf_probe_read_kernel(&ao, sizeof(ao), ctx + tp_off_alloc_order);
	bpf_probe_read_kernel(&fo, sizeof(fo), ctx + tp_off_fallback_order);
	bpf_probe_read_kernel(&am, sizeof(am), ctx + tp_off_alloc_mt);
	bpf_probe_read_kernel(&fm, sizeof(fm), ctx + tp_off_fallback_mt);
	on_extfrag(ao, fo, am, fm);
	return 0;
}
