package probes

// One object per hook, so a hook that fails to load never stops the others.
// CC and CFLAGS come from the Makefile (make generate).
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type alloc_fail_event -type failure_stalls_event -type zone_capture_event -type alloc_counts -type cgroup_alloc pagealloc ../../bpf/pagealloc.bpf.c -- -I../../bpf -I../../bpf/headers/x86
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type extfrag_key extfrag ../../bpf/extfrag.bpf.c -- -I../../bpf -I../../bpf/headers/x86
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type slab_create_event slabcreate ../../bpf/slabcreate.bpf.c -- -I../../bpf -I../../bpf/headers/x86
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type netns_create_event netns ../../bpf/netns.bpf.c -- -I../../bpf -I../../bpf/headers/x86
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type ns_syscall_event -type ns_call nssyscall ../../bpf/nssyscall.bpf.c -- -I../../bpf -I../../bpf/headers/x86
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type memcg_wait memcgwait ../../bpf/memcgwait.bpf.c -- -I../../bpf -I../../bpf/headers/x86
//go:generate go tool bpf2go -cc $BPF_CLANG -cflags "$BPF_CFLAGS" -target amd64 -type stall_key -type stall_hist -type zone_compact_key -type zone_compact -type task_stalls memstall ../../bpf/memstall.bpf.c -- -I../../bpf -I../../bpf/headers/x86
