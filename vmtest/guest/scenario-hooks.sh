# Scenario 1: every hook, every mechanism. One fragscope session per line of
# SESSIONS, each forcing one mechanism per hook, so that over the sessions
# every mechanism of every hook is used; in each the same workload runs:
# nf_conntrack load (slab_create), unshare -n (netns), an ENOSPC unshare in a
# limited user namespace (ns_syscall, netns failure), 64 MiB of order-6
# AF_PACKET ring blocks (page_alloc counts, extfrag fallbacks; kept until
# the end, so that every session's blocks must be taken from fresh
# pageblocks: freed ones would serve the next session without fallback) and one
# 8 MiB block, order 11, which __alloc_pages refuses before the tracepoint
# (only alloc_fexit sees that failure).
. /vmtest/lib.sh
set -u

session_attach() {
	case $1 in
	raw_tp) echo page_alloc=raw_tp,extfrag=raw_tp,slab_create=fentry,netns=fentry,alloc_fexit=fentry,ns_syscall=tracepoint ;;
	tp_btf) echo page_alloc=tp_btf,extfrag=tp_btf,slab_create=kprobe,netns=kprobe,alloc_fexit=fentry,ns_syscall=tracepoint ;;
	tracepoint) echo page_alloc=tracepoint,extfrag=tracepoint,slab_create=kprobe,netns=fentry,alloc_fexit=fentry,ns_syscall=tracepoint ;;
	esac
}

fragscope doctor >/tmp/doctor.txt 2>&1
echo "rc=$?" >>/tmp/doctor.txt
emit doctor.txt /tmp/doctor.txt

for name in ${FRAGSCOPE_SESSIONS:-raw_tp tp_btf tracepoint}; do
	watch_start "$name" all "$(session_attach "$name")"
	run "$name-conntrack" load_conntrack
	run "$name-netns" fsworkload netns
	run "$name-nsfail" fsworkload nsfail
	# The kernel's own count of extfrag events during the rings, from
	# tracefs: what the extfrag hook is compared with.
	ev=/sys/kernel/tracing/events/kmem/mm_page_alloc_extfrag
	echo >/sys/kernel/tracing/trace
	echo 1 >$ev/enable
	run_held "$name-rings" fsworkload rings 64 256 hold
	echo 0 >$ev/enable
	grep -vc '^#' /sys/kernel/tracing/trace >"/tmp/$name-extfrag-tracefs.out"
	emit "$name-extfrag-tracefs.out" "/tmp/$name-extfrag-tracefs.out"
	run "$name-bigring" fsworkload rings 8 8192
	watch_stop "$name"
	rmmod nf_conntrack 2>/dev/null || say "rmmod nf_conntrack failed"
done
