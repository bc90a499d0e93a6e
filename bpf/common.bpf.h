/* Maps and helpers every hook shares. Each hook is its own object so one that
 * fails to load never stops the others; the loader creates these maps once and
 * hands the same instances to every object (MapReplacements). */
#ifndef FRAGSCOPE_COMMON_BPF_H
#define FRAGSCOPE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "fragscope.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Keeps a record type in the object's BTF so bpf2go -type can generate its Go
 * twin; records built only inside inlined helpers would otherwise vanish. */
#define KEEP_TYPE(T, n) const T *keep_##n __attribute__((unused))

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 21);
} events SEC(".maps");

/* Ringbuf reserve failures, per CPU: every lost record is counted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

/* Tasks inside a watched namespace syscall, by tid, so failures deeper in the
 * kernel carry the syscall's identity. Written by nssyscall.bpf.c only. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct syscall_ref);
} inflight SEC(".maps");

/* Wake the reader once this many bytes are pending. Below it, a record may
 * wake the reader if none of this CPU's records did in the last
 * wakeup_gap_ns, so an isolated failure reaches userspace (and its
 * free-memory snapshot is taken) at once, while a storm costs at most one
 * wakeup per gap per CPU. Never one wakeup per record. */
const volatile __u64 wakeup_bytes = 64 * 1024;
const volatile __u64 wakeup_gap_ns = 10 * 1000 * 1000;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wakeup SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);

	if (n)
		*n += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline void *reserve_event(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		count_drop();
	return e;
}

static __always_inline void submit_event(void *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP, now;
	__u32 zero = 0;
	__u64 *last;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else {
		last = bpf_map_lookup_elem(&last_wakeup, &zero);
		now = bpf_ktime_get_ns();
		if (last && now - *last >= wakeup_gap_ns) {
			*last = now;
			flags = 0; /* the kernel wakes the reader only if it waits */
		}
	}
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void fill_header(struct event_header *h, __u8 type)
{
	h->type = type;
	h->ts_ns = bpf_ktime_get_ns();
}

/* Which cgroup events are attributed to, set by the loader from the host's
 * cgroup mode: 0 = the cgroup v2 (unified) id, 1 = the v1 memory cgroup's
 * id. On v1 and hybrid hosts most tasks sit in the v2 root, so the v2 id
 * says nothing there; the memory cgroup is the one the kernel charges. */
const volatile __u32 cgroup_mode = 0;

/* Before Linux 5.5 (commit 67c0496e87d1 "kernfs: convert kernfs_node->id
 * from union kernfs_node_id to u64") the id was a union of ino+generation. */
union kernfs_node_id___old {
	struct {
		__u32 ino;
		__u32 generation;
	};
	__u64 id;
};

struct kernfs_node___old {
	union kernfs_node_id___old id;
};

static __always_inline __u64 kernfs_id(struct kernfs_node *kn)
{
	if (bpf_core_type_exists(union kernfs_node_id___old)) {
		struct kernfs_node___old *old = (void *)kn;

		return BPF_CORE_READ(old, id.id);
	}
	return BPF_CORE_READ(kn, id);
}

/* The v1 memory cgroup's id through BTF-typed loads: no helper call per
 * pointer, ~5x cheaper than the bpf_probe_read_kernel chain below. Needs
 * bpf_get_current_task_btf (Linux 5.11) and the u64 kernfs id (5.5). */
static __always_inline __u64 memcg_id_btf(int memcg)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct cgroup_subsys_state *css = task->cgroups->subsys[memcg];

	if (!css)
		return 0;
	return css->cgroup->kn->id;
}

static __always_inline __u64 current_cgroup_id(void)
{
	struct task_struct *task;
	struct kernfs_node *kn;
	int memcg;

	if (cgroup_mode == 0)
		return bpf_get_current_cgroup_id();
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0; /* kernel without CONFIG_MEMCG */
	memcg = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (memcg < 0 || memcg >= 16)
		return 0;
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf) &&
	    !bpf_core_type_exists(union kernfs_node_id___old))
		return memcg_id_btf(memcg);
	task = (struct task_struct *)bpf_get_current_task();
	kn = BPF_CORE_READ(task, cgroups, subsys[memcg], cgroup, kn);
	return kernfs_id(kn);
}

static __always_inline void fill_task(struct task_info *t)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	t->pid = pid_tgid >> 32;
	t->tid = (__u32)pid_tgid;
	t->cgroup_id = current_cgroup_id();
	t->netns_ino = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	bpf_get_current_comm(t->comm, sizeof(t->comm));
}

static __always_inline void fill_syscall_ref(struct syscall_ref *ref)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct syscall_ref *r = bpf_map_lookup_elem(&inflight, &tid);

	if (r)
		*ref = *r;
}

#endif
