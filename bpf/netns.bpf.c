/* Network namespace creation: copy_net_ns returns the new struct net * or an
 * ERR_PTR (-ENOMEM from a failed allocation, -ENOSPC from
 * user.max_net_namespaces). Entry is hooked too, for the latency. */
#include "common.bpf.h"

KEEP_TYPE(struct netns_create_event, netns_create_event);

#define MAX_ERRNO 4095

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* an entry whose exit was missed (kretprobe maxactive) must not fill it for good */
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} netns_calls SEC(".maps");

static __always_inline void netns_enter(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&netns_calls, &tid, &now, BPF_ANY);
}

static __always_inline void netns_exit(__u64 ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *start = bpf_map_lookup_elem(&netns_calls, &tid);
	struct netns_create_event *e;
	__u64 start_ns;

	if (!start)
		return;
	start_ns = *start;
	bpf_map_delete_elem(&netns_calls, &tid);

	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, EVENT_NETNS_CREATE);
	fill_task(&e->task);
	fill_syscall_ref(&e->in);
	e->latency_ns = e->hdr.ts_ns - start_ns;
	if (ret >= (__u64)-MAX_ERRNO) {
		e->err = (__s32)(__s64)ret;
	} else {
		struct net *net = (struct net *)ret;

		e->inum = BPF_CORE_READ(net, ns.inum);
	}
	submit_event(e);
}

SEC("fentry/copy_net_ns")
int netns_fentry(void *ctx)
{
	netns_enter();
	return 0;
}

/* copy_net_ns(flags, user_ns, old_net) has had these three arguments since
 * 2.6.24; fexit gets the return value after them, typed, so no
 * bpf_get_func_ret (5.17+): this loads on every kernel with fexit (5.5+). */
SEC("fexit/copy_net_ns")
int BPF_PROG(netns_fexit, unsigned long flags, void *user_ns, void *old_net, struct net *ret)
{
	netns_exit((__u64)ret);
	return 0;
}

SEC("kprobe/copy_net_ns")
int netns_kprobe(void *ctx)
{
	netns_enter();
	return 0;
}

SEC("kretprobe/copy_net_ns")
int BPF_KRETPROBE(netns_kretprobe, void *ret)
{
	netns_exit((__u64)ret);
	return 0;
}
