# Scenario 1: every hook, every mechanism. One fragscope session per word of
# SESSIONS (name:attach, from /vmtest/sessions.sh, which the host's
# TestVMHooks writes), each forcing one mechanism per hook, so that over the
# sessions every mechanism of every hook is used; in each the same workload
# runs: nf_conntrack load (slab_create), unshare -n (netns), an ENOSPC
# unshare in a limited user namespace (ns_syscall, netns failure), 64 MiB of
# order-6 AF_PACKET ring blocks (page_alloc counts, extfrag fallbacks; kept
# until the end, so that every session's blocks must be taken from fresh
# pageblocks: freed ones would serve the next session without fallback) and
# one 8 MiB block, order 11, which __alloc_pages refuses before the
# tracepoint (only alloc_fexit sees that failure), and a proactive memcg
# reclaim (the reclaim hook).
. /vmtest/lib.sh
set -u
. /vmtest/sessions.sh

# One doctor run: -v adds the verifier's logs, indented, after the report.
fragscope doctor -v >/tmp/doctor.txt 2>&1
echo "rc=$?" >>/tmp/doctor.txt
emit doctor.txt /tmp/doctor.txt
say "doctor done"

for s in $SESSIONS; do
	name=${s%%:*}
	watch_start "$name" all "${s#*:}" --verbose
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
	# Memcg reclaim (the reclaim hook): proactive reclaim through the root's
	# memory.reclaim (5.19+), written from the cgroup /reclaimer, runs in
	# the writer. With no swap and no disk there is little to take: it
	# gives up with EAGAIN after its retries, each one a reclaim stall.
	run "$name-memreclaim" sh -c 'mkdir -p /sys/fs/cgroup/reclaimer && echo $$ >/sys/fs/cgroup/reclaimer/cgroup.procs &&
		if [ -e /sys/fs/cgroup/memory.reclaim ]; then echo 16M >/sys/fs/cgroup/memory.reclaim; echo "memory_reclaim=rc$?"; else echo memory_reclaim=absent; fi'
	watch_stop "$name"
	rmmod nf_conntrack 2>/dev/null || say "rmmod nf_conntrack failed"
done

# The probes package's own tests on this kernel: the one-line reason of a
# program calling a helper the kernel lacks (bpf_get_func_ret before 5.17).
CI=true probes.test -test.v -test.count=1 -test.run 'TestRefusedHelperIsOneLine|TestMissingHelperReason' >/tmp/probes-reasons.txt 2>&1
echo "rc=$?" >>/tmp/probes-reasons.txt
emit probes-reasons.txt /tmp/probes-reasons.txt
