# Scenario "bench" (BenchmarkVMCompactionHooks): what the compaction
# programs cost per event where direct compaction happens. The probes
# package's BenchmarkCompactionHooks attaches every mechanism's programs and
# their empty twins, then starts the fragmenter of scenario-stalls.sh
# (FRAGSCOPE_BENCH_FRAGMENTER), which holds its memory and 12 MiB of ring
# blocks (the free blocks left after its holes: without them the rounds'
# blocks, freed after each round, were served without compacting), and
# asks for 4 MiB of order-6 ring blocks round after round.
. /vmtest/lib.sh
set -u

sysctl -w vm.compact_unevictable_allowed=0
sysctl -w vm.compaction_proactiveness=0 2>/dev/null || true
sysctl -w vm.watermark_boost_factor=0
echo never >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true
mkdir -p /sys/fs/cgroup/fragmenter

FRAGSCOPE_BENCH_FRAGMENTER='echo $$ >/sys/fs/cgroup/fragmenter/cgroup.procs && exec fsworkload fragment 8 12 hold' \
	CI=true probes.test -test.v -test.run '^$' -test.bench '^BenchmarkCompactionHooks$' -test.benchtime 1x \
	>/tmp/bench.txt 2>&1
echo "rc=$?" >>/tmp/bench.txt
emit bench.txt /tmp/bench.txt
# BenchmarkVMFailureCapture: the page_alloc failure path with and without
# reading the free lists (BPF_PROG_TEST_RUN, no fragmentation needed; this
# host's kernel has no node_data in kallsyms, the guest's has).
CI=true probes.test -test.v -test.run '^$' -test.bench '^BenchmarkFailureCapture$' -test.benchtime 5x \
	>/tmp/capture-bench.txt 2>&1
echo "rc=$?" >>/tmp/capture-bench.txt
emit capture-bench.txt /tmp/capture-bench.txt
cat /proc/buddyinfo
grep -E 'compact_(stall|fail|success)' /proc/vmstat
