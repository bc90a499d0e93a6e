/* The per-task stall state both bpf/memstall.bpf.c (which writes it) and
 * bpf/pagealloc.bpf.c (which copies it into the ringbuf when the task's
 * allocation fails) see: one map, created once by the loader and shared. */
#ifndef TASKSTALLS_BPF_H
#define TASKSTALLS_BPF_H

/* Each task's stall in flight, zone run and recent stalls, by tid.
 *
 * One entry per task that stays when its stall ends: each begin and end is
 * a lookup, only a task's first stall inserts. A hash entry made at each
 * begin and deleted at each end, with the ring in a second map, measured
 * 545-584 ns per memcg reclaim begin and 724-804 per end
 * (BenchmarkStallHooks, 6.18 development VM); this shape 544-620 and
 * 420-455, the begin being its cold lookup. Task storage (5.11+) measured
 * no better (593-629 per begin). LRU, so exited tasks' entries make room,
 * yet a ring outlives its task for the incident that reads it. An entry
 * evicted mid-stall (8192 other tasks stalled meanwhile) loses that stall;
 * without an exit probe it also leaves open_compactions one high, which
 * costs the mm_page_alloc closer a lookup, never a wrong count. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct task_stalls);
} stalls_by_task SEC(".maps");

static __always_inline __u32 result_index(int result)
{
	__u32 r = result < 0 || result >= STALL_RESULTS - 1 ? STALL_RESULTS - 1 : (__u32)result;

	asm volatile("" : "+r"(r));
	return r & (STALL_RESULTS - 1);
}

#endif
