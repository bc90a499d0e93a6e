# Scenario 3: the failing clone, caught live (fault-injection kernel).
# fail_page_alloc fails every page allocation of tasks marked make-it-fail
# (task-filter); fsworkload moves into a cgroup, marks its own thread and
# calls unshare(CLONE_NEWNET) with nothing else running on that thread: the
# first allocation needing new pages fails (seen: setup_net ->
# ip6_route_net_init -> kmemdup -> new_slab) and the unshare returns ENOMEM.
# min-order is 0: with 1, SLUB absorbs the failures by falling back to
# order-0 slabs (net_namespace's 3392-byte objects fit one page), and
# whether some other order >= 1 allocation is needed depends on what the
# slabs hold: not deterministic. alloc_fexit sees the injected failures (the
# tracepoint does not: should_fail_alloc_page runs before it).
. /vmtest/lib.sh
set -u

F=/sys/kernel/debug/fail_page_alloc
echo Y >$F/task-filter
echo 100 >$F/probability
echo 1 >$F/interval
echo -1 >$F/times
echo 0 >$F/space
echo 0 >$F/min-order
echo N >$F/ignore-gfp-wait
echo N >$F/ignore-gfp-highmem
echo 0 >$F/verbose
mkdir -p /sys/fs/cgroup/vmtest
# Warm-up: one namespace created and destroyed leaves free objects in the
# slabs unshare needs before copy_net_ns (nsproxy), so that the first
# allocation needing new pages, the one that fails, is inside copy_net_ns.
fsworkload netns
fsworkload netns
sleep 1

# An injected unshare can fail before copy_net_ns (SLUB needing a fresh page
# for nsproxy) or, rarely, spin in the kernel: each attempt is bounded and
# runs in its own session, and only the attempt whose incident reaches
# copy_net_ns is reported (at most 8). An injected failure can also hit the
# workload's own page faults first (it dies with SIGSEGV, rc 139): in one
# CI boot three attempts in a row did.
attempt=1
while :; do
	watch_start inject all auto
	rc=0
	timeout 30 fsworkload inject /sys/fs/cgroup/vmtest/victim </dev/null >/tmp/inject-workload.out 2>&1 || rc=$?
	echo "rc=$rc" >>/tmp/inject-workload.out
	sleep 1.5
	kill -INT "$WATCH_PID" 2>/dev/null
	wrc=0
	wait "$WATCH_PID" || wrc=$?
	echo "$wrc" >/tmp/inject.rc
	if [ $rc -eq 0 ] && fragscope incidents --json /tmp/inject.trace 2>/dev/null | grep -q copy_net_ns; then
		break
	fi
	say "inject attempt $attempt: workload rc=$rc, no copy_net_ns failure in the incident"
	attempt=$((attempt + 1))
	[ $attempt -le 8 ] || break
	fsworkload netns
done
say "inject-workload: $(tr '\n' ' ' </tmp/inject-workload.out) (attempt $attempt)"
emit inject-workload.out /tmp/inject-workload.out
emit inject.ndjson /tmp/inject.ndjson
emit inject.stderr /tmp/inject.stderr
emit inject.rc /tmp/inject.rc
[ -f /tmp/inject.trace ] && emit inject.trace /tmp/inject.trace
if fragscope incidents --help >/dev/null 2>&1; then
	fragscope incidents --json /tmp/inject.trace >/tmp/incidents.ndjson 2>&1 ||
		fragscope incidents /tmp/inject.trace >/tmp/incidents.ndjson 2>&1
	emit incidents.txt /tmp/incidents.ndjson
fi
