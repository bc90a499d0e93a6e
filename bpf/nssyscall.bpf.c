/* Namespace syscalls: syscalls:sys_{enter,exit}_{clone,clone3,unshare,setns}.
 * These per-syscall tracepoints fire only for their syscall, unlike
 * raw_syscalls:*. Entry records the task in `inflight` so failures deeper in
 * the kernel carry the syscall's identity, and in `ns_calls` with who made
 * it, which userspace scans for calls running past the stall threshold; exit
 * streams failed calls, and successful ones that took stall_ns or longer
 * (the end of a stall: the latency is judged here, so the successes of the
 * normal case stay in the kernel). */
#include "common.bpf.h"

KEEP_TYPE(struct ns_syscall_event, ns_syscall_event);
KEEP_TYPE(struct ns_call, ns_call);

/* Stall threshold in ns, set by the loader; 0: stalls are not reported. */
const volatile __u64 stall_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* a task that never exits its call must not hold a place for good */
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct ns_call);
} ns_calls SEC(".maps");

/* CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET, and
 * CLONE_NEWTIME (0x80, unshare and clone3 only: in clone's flags the low
 * byte is the exit signal). Forks and threads without them are not
 * namespace syscalls: skipping them keeps thread creation cheap and keeps
 * their failures (EAGAIN from pids.max) out of the namespace view. */
#define NS_FLAGS 0x7e020000ULL
#define CLONE_NEWTIME_FLAG 0x80ULL

static __always_inline int ns_enter(__u8 sc, __u64 flags)
{
	__u64 ns = NS_FLAGS;

	if (sc != NS_SYSCALL_CLONE)
		ns |= CLONE_NEWTIME_FLAG;
	if (sc != NS_SYSCALL_SETNS && !(flags & ns))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_ref ref = {
		.enter_ns = bpf_ktime_get_ns(),
		.syscall = sc,
	};
	struct ns_call call = {
		.enter_ns = ref.enter_ns,
		.flags = flags,
		.cgroup_id = current_cgroup_id(),
		.pid = pid_tgid >> 32,
		.syscall = sc,
	};

	bpf_get_current_comm(call.comm, sizeof(call.comm));
	bpf_map_update_elem(&inflight, &tid, &ref, BPF_ANY);
	bpf_map_update_elem(&ns_calls, &tid, &call, BPF_ANY);
	return 0;
}

/* Failures of process creation an SRE must see whatever the flags: memory
 * (ENOMEM, ENOBUFS: runc's own clone of its second child under a memcg at
 * its limit carries no CLONE_NEW* flag), limits (ENOSPC, EUSERS: namespace
 * counts; EAGAIN: pids.max, RLIMIT_NPROC). Untracked calls are tested only
 * on their failing exit, so forks and threads stay as cheap as before. */
static __always_inline bool worth_reporting(__s64 ret)
{
	switch (ret) {
	case -12:  /* ENOMEM */
	case -28:  /* ENOSPC */
	case -11:  /* EAGAIN */
	case -105: /* ENOBUFS */
	case -87:  /* EUSERS */
		return true;
	}
	return false;
}

static __always_inline int ns_exit(__u8 sc, __s64 ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct syscall_ref *ref = bpf_map_lookup_elem(&inflight, &tid);
	struct ns_call *call = bpf_map_lookup_elem(&ns_calls, &tid);
	struct ns_syscall_event *e;
	__u64 now;

	/* A new child returns from clone too, with ret 0 and no entry: skip.
	 * A call not tracked at entry (no CLONE_NEW* flag) is reported only
	 * when it failed with an errno worth it, without an entry time. */
	if (!ref && (ret >= 0 || !worth_reporting(ret)))
		return 0;
	now = bpf_ktime_get_ns();
	if (ret < 0 || (ref && stall_ns && now - ref->enter_ns >= stall_ns)) {
		e = reserve_event(sizeof(*e));
		if (e) {
			__builtin_memset(e, 0, sizeof(*e));
			fill_header(&e->hdr, EVENT_NS_SYSCALL);
			fill_task(&e->task);
			e->syscall = sc;
			e->enter_ns = ref ? ref->enter_ns : 0;
			e->ret = ret;
			if (call && ref)
				e->flags = call->flags;
			submit_event(e);
		}
	}
	if (ref) {
		bpf_map_delete_elem(&inflight, &tid);
		bpf_map_delete_elem(&ns_calls, &tid);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_clone")
int ns_enter_clone(struct trace_event_raw_sys_enter *ctx)
{
	return ns_enter(NS_SYSCALL_CLONE, ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_clone")
int ns_exit_clone(struct trace_event_raw_sys_exit *ctx)
{
	return ns_exit(NS_SYSCALL_CLONE, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_clone3")
int ns_enter_clone3(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;

	/* struct clone_args starts with the u64 flags. */
	bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[0]);
	return ns_enter(NS_SYSCALL_CLONE3, flags);
}

SEC("tracepoint/syscalls/sys_exit_clone3")
int ns_exit_clone3(struct trace_event_raw_sys_exit *ctx)
{
	return ns_exit(NS_SYSCALL_CLONE3, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_unshare")
int ns_enter_unshare(struct trace_event_raw_sys_enter *ctx)
{
	return ns_enter(NS_SYSCALL_UNSHARE, ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_unshare")
int ns_exit_unshare(struct trace_event_raw_sys_exit *ctx)
{
	return ns_exit(NS_SYSCALL_UNSHARE, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_setns")
int ns_enter_setns(struct trace_event_raw_sys_enter *ctx)
{
	/* setns(fd, nstype): the namespace type is the flag word. */
	return ns_enter(NS_SYSCALL_SETNS, ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_setns")
int ns_exit_setns(struct trace_event_raw_sys_exit *ctx)
{
	return ns_exit(NS_SYSCALL_SETNS, ctx->ret);
}

/* fork(2) and vfork(2) take no flags: only their failing exits, with an
 * errno worth reporting, are of interest (ns_exit finds no entry). */
SEC("tracepoint/syscalls/sys_exit_fork")
int ns_exit_fork(struct trace_event_raw_sys_exit *ctx)
{
	return ns_exit(NS_SYSCALL_FORK, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_vfork")
int ns_exit_vfork(struct trace_event_raw_sys_exit *ctx)
{
	return ns_exit(NS_SYSCALL_VFORK, ctx->ret);
}
