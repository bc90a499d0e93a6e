# Scenario: who suffers (issue 13). The fragmentation workload of
# scenario-fragment.sh, run in a cgroup of its own (/fragmenter) and traced
# four times, the compaction hook forced to each way a direct compaction
# can end: fexit and kretprobe on try_to_compact_pages (with its
# compact_result), and raw_tp and the classic tracepoint, where the task's
# next mm_page_alloc closes it. Its order-6 ring blocks stall in direct
# compaction before they fail.
# Then transparent huge pages: the fragmenter stays (memory held, no rings)
# and a workload in /thp faults MADV_HUGEPAGE memory with THP and its
# defrag at madvise, so each fault compacts directly (order 9) and falls
# back to a 4 KiB page (thp_fault_fallback).
. /vmtest/lib.sh
set -u

sysctl -w vm.compact_unevictable_allowed=0
sysctl -w vm.compaction_proactiveness=0 2>/dev/null || true
# The first run's fallbacks boost the watermarks (boost:3852kB in DMA32 of
# a later run's OOM report): the next run, mlocking down to 8 MiB free,
# then meets the OOM killer. Without boosting every run starts alike.
sysctl -w vm.watermark_boost_factor=0
thp=/sys/kernel/mm/transparent_hugepage
echo never >$thp/enabled 2>/dev/null || true
mkdir -p /sys/fs/cgroup/fragmenter /sys/fs/cgroup/thp

for m in fentry kprobe raw_tp tracepoint; do
	watch_start "stalls-$m" default "compaction=$m"
	run "stalls-$m-workload" sh -c 'echo $$ >/sys/fs/cgroup/fragmenter/cgroup.procs && exec fsworkload fragment 8 32 2s'
	watch_stop "stalls-$m"
	cat /proc/buddyinfo
done
grep -E 'compact_(stall|fail|success)' /proc/vmstat

# Last, THP, in this order: fragscope (its maps want memory the fragmenter
# would leave only in 4 KiB holes: map creation failed with ENOMEM after
# it); the fragmenter, which holds its memory until the guest powers off;
# THP on, only now: enabling it starts khugepaged, which raises
# min_free_kbytes (DMA32's min watermark went from 428 to 2466 pages here),
# and the fragmenter, mlocking down to 8 MiB free, met the OOM killer. Then
# 48 huge page faults: more than the free memory, so once compaction has
# used what it can assemble (the movable pages of shmem and the Go heaps,
# moved into the holes) the rest fall back to 4 KiB pages. khugepaged
# collapses nothing meanwhile (its defrag off; the workload exits at once).
watch_start stalls-thp default compaction=fentry
run_held stalls-thp-fragment sh -c 'echo $$ >/sys/fs/cgroup/fragmenter/cgroup.procs && exec fsworkload fragment 8 0 hold'
cat /proc/buddyinfo
echo 0 >$thp/khugepaged/defrag
echo madvise >$thp/defrag
echo madvise >$thp/enabled
run stalls-thp-workload sh -c 'echo $$ >/sys/fs/cgroup/thp/cgroup.procs && exec fsworkload thp 96'
watch_stop stalls-thp
grep -E 'compact_(stall|fail|success)|thp_fault' /proc/vmstat
