/* Slab cache creation: entry and exit of the kmem_cache_create family, so a
 * failed creation (NULL) is seen with its name, size and latency.
 *
 * The loader resolves one symbol for the running kernel and attaches one
 * entry/exit pair to it, never two (the family calls itself):
 *   6.12+      __kmem_cache_create_args(name, size, args, flags)
 *   4.16-6.11  kmem_cache_create_usercopy(name, size, align, flags, ...)
 *   older      kmem_cache_create(name, size, align, flags, ctor)
 *   3.10       kmem_cache_create_memcg(memcg, name, size, align, flags, ...)
 * name_arg is 1 for the 3.10 form and 0 otherwise; the other args follow it. */
#include "common.bpf.h"

KEEP_TYPE(struct slab_create_event, slab_create_event);

const volatile __u32 name_arg = 0;

struct slab_call {
	__u64 start_ns;
	__u64 name;
	__u64 size;
	__u64 flags;
};

/* Calls in progress, by tid. Creation may sleep, so per-CPU state would not do. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* an entry whose exit was missed (kretprobe maxactive) must not fill it for good */
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct slab_call);
} slab_calls SEC(".maps");

static __always_inline void slab_enter(__u64 name, __u64 size, __u64 flags)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct slab_call c = {
		.start_ns = bpf_ktime_get_ns(),
		.name = name,
		.size = size,
		.flags = flags,
	};

	bpf_map_update_elem(&slab_calls, &tid, &c, BPF_ANY);
}

static __always_inline void slab_exit(__u64 ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct slab_call *c = bpf_map_lookup_elem(&slab_calls, &tid);
	struct slab_create_event *e;

	if (!c)
		return;
	e = reserve_event(sizeof(*e));
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		fill_header(&e->hdr, EVENT_SLAB_CREATE);
		fill_task(&e->task);
		fill_syscall_ref(&e->in);
		e->flags = c->flags;
		e->size = c->size;
		e->latency_ns = e->hdr.ts_ns - c->start_ns;
		e->failed = ret == 0;
		bpf_probe_read_kernel_str(e->name, sizeof(e->name), (void *)c->name);
		submit_event(e);
	}
	bpf_map_delete_elem(&slab_calls, &tid);
}

/* Typed arguments (no bpf_get_func_arg/ret, 5.17+): every fentry/fexit
 * target starts (name, size, align or args, flags), and fexit finds the
 * return value after the last argument, so there is one fexit per arity;
 * the loader picks it from the target's BTF prototype. The 3.10 form
 * (name_arg 1) has no BTF and is left to the kprobe. */
SEC("fentry")
int BPF_PROG(slab_create_fentry, const char *name, unsigned int size, __u64 arg2, __u64 flags)
{
	slab_enter((__u64)name, size, flags);
	return 0;
}

SEC("fexit") /* __kmem_cache_create_args(name, size, args, flags): 6.12+ */
int BPF_PROG(slab_create_fexit4, __u64 a0, __u64 a1, __u64 a2, __u64 a3, void *ret)
{
	slab_exit((__u64)ret);
	return 0;
}

SEC("fexit") /* kmem_cache_create(name, size, align, flags, ctor): before 4.16 */
int BPF_PROG(slab_create_fexit5, __u64 a0, __u64 a1, __u64 a2, __u64 a3, __u64 a4, void *ret)
{
	slab_exit((__u64)ret);
	return 0;
}

/* kmem_cache_create_usercopy(name, size, align, flags, useroffset,
 * usersize, ctor): 4.16..6.11. Seven arguments: x86 trampolines take more
 * than six from Linux 6.6 ("bpf, x86: allow function arguments up to 12
 * for TRACING"); before, the load fails and the kprobe twin is used. */
SEC("fexit")
int BPF_PROG(slab_create_fexit7, __u64 a0, __u64 a1, __u64 a2, __u64 a3, __u64 a4, __u64 a5, __u64 a6, void *ret)
{
	slab_exit((__u64)ret);
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(slab_create_kprobe)
{
	if (name_arg == 1)
		slab_enter(PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM5(ctx));
	else
		slab_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM4(ctx));
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(slab_create_kretprobe, void *ret)
{
	slab_exit((__u64)ret);
	return 0;
}
