// Package incident turns the evidence of one failed namespace syscall into
// the explanation an operator needs: what failed (clone(CLONE_NEWNET) by
// exe[18377], ENOMEM), through which chain (copy_net_ns ->
// kmem_cache_create(nf_conntrack_<ptr>) -> an order-6 allocation), what the
// free lists of every zone looked like at that second, why it failed
// (fragmentation, exhaustion, a memcg limit, a namespace limit, or unknown
// with the missing evidence named), which cgroups had been fragmenting
// memory just before, and which knobs apply and what each one costs.
//
// A Correlator consumes the event stream a live session or a replay
// produces. Inside a failing syscall the task's AllocFail, SlabCreate and
// NetnsCreate events come first, each tagged with the syscall and its enter
// time (event.SyscallRef) and the task's TID; a MemSnapshot with Reason
// "failure" follows a failure event; the NsSyscall failure (the syscall's
// exit) comes last and closes the incident. Evidence is kept per TID and
// enter time, so two tasks failing at once are not mixed up, and is bounded
// in age and count, so a stream of failures inside syscalls that then
// succeed (no NsSyscall is emitted for a success) cannot grow memory.
//
// Any hook may be missing (no fentry/kprobe on some machines, so no
// slab_create or netns evidence): the Correlator uses what exists and the
// verdict says what could not be seen. When the ns_syscall hook itself did
// not attach, nothing carries a SyscallRef and no NsSyscall ever closes an
// incident; then a failed copy_net_ns (or, without the netns hook, a failed
// slab cache creation) closes one instead, see Correlator.
//
// Like the aggregator, the Correlator is deterministic: it never reads the
// clock, times come from events, and every list it returns is sorted.
package incident
