# Scenario: who suffers (issue 13). The fragmentation workload of
# scenario-fragment.sh, run in a cgroup of its own (/fragmenter) and traced
# three times, the compaction hook forced to each way a direct compaction
# can end: fexit and kretprobe on try_to_compact_pages (with its
# compact_result), and raw_tp, where the task's next mm_page_alloc closes
# it. Its order-6 ring blocks stall in direct compaction before they fail.
. /vmtest/lib.sh
set -u

sysctl -w vm.compact_unevictable_allowed=0
sysctl -w vm.compaction_proactiveness=0 2>/dev/null || true
# The first run's fallbacks boost the watermarks (boost:3852kB in DMA32 of
# a later run's OOM report): the next run, mlocking down to 8 MiB free,
# then meets the OOM killer. Without boosting every run starts alike.
sysctl -w vm.watermark_boost_factor=0
echo never >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true
mkdir -p /sys/fs/cgroup/fragmenter

for m in fentry kprobe raw_tp; do
	watch_start "stalls-$m" default "compaction=$m"
	run "stalls-$m-workload" sh -c 'echo $$ >/sys/fs/cgroup/fragmenter/cgroup.procs && exec fsworkload fragment 8 32 2s'
	watch_stop "stalls-$m"
	cat /proc/buddyinfo
done
grep -E 'compact_(stall|fail|success)' /proc/vmstat
