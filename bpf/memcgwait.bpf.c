/* Candidates for the cgroup v1 memcg OOM wait: vmscan:mm_vmscan_memcg_reclaim_end.
 *
 * With memory.oom_control's oom_kill_disable set, a task whose page fault
 * cannot be charged sleeps in mem_cgroup_oom_synchronize (since Linux 3.12,
 * commit 3812c8c8f395) until the cgroup has room again, outside any syscall:
 * this is where `runc init` hangs under a small memory cgroup parent. Every
 * such charge first reclaims against the cgroup (try_charge_memcg ->
 * try_to_free_mem_cgroup_pages), which is what this program sees: it notes
 * the task and when it last reclaimed. Userspace looks only at tasks that
 * have not reclaimed for the stall threshold and asks their wchan whether
 * they wait in the OOM wait. Memcg reclaim costs microseconds to
 * milliseconds; one map update beside it is noise, and nothing is streamed. */
#include "common.bpf.h"

KEEP_TYPE(struct memcg_wait, memcg_wait);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct memcg_wait);
} memcg_waits SEC(".maps");

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_reclaim_end(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct memcg_wait *old = bpf_map_lookup_elem(&memcg_waits, &tid);
	struct memcg_wait w = {
		.last_ns = bpf_ktime_get_ns(),
		.cgroup_id = current_cgroup_id(),
		.pid = pid_tgid >> 32,
	};

	if (old) {
		/* A task reclaiming again: refreshed in place, which skips the
		 * LRU map's element replacement (the costly part of an update
		 * on every reclaim of a task at its limit). */
		old->last_ns = w.last_ns;
		old->cgroup_id = w.cgroup_id;
		bpf_get_current_comm(old->comm, sizeof(old->comm));
		return 0;
	}
	bpf_get_current_comm(w.comm, sizeof(w.comm));
	bpf_map_update_elem(&memcg_waits, &tid, &w, BPF_ANY);
	return 0;
}

/* A candidate that exits is no longer one. Without host pids userspace
 * cannot ask a task's wchan and takes a cgroup's latest reclaimer for its
 * sleeper: a short-lived reclaimer that exited after the sleeper went to
 * sleep would stand for it (a CI run named an exited runc process). One
 * hash delete per thread exit, nothing for tasks that never reclaimed
 * against a limit beyond the failed lookup. */
SEC("tracepoint/sched/sched_process_exit")
int memcg_wait_exit(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&memcg_waits, &tid);
	return 0;
}
