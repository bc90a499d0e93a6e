# Scenario 2: real fragmentation, real failures (256 MiB guest). Memory is
# mlocked in 1 MiB chunks until little is free, every other 4 KiB page is
# unmapped (order-0 holes that compaction may not close: the pages around
# them are unevictable and compact_unevictable_allowed=0), then AF_PACKET
# rings ask for order-6 blocks. The ring setup itself succeeds (vzalloc
# fallback); the order-6 attempts fail for real (page == NULL).
. /vmtest/lib.sh
set -u

sysctl -w vm.compact_unevictable_allowed=0
sysctl -w vm.compaction_proactiveness=0 2>/dev/null || true
echo never >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true
cat /proc/buddyinfo

watch_start frag default auto
run frag-workload fsworkload fragment 8 32 4s
cat /proc/buddyinfo
watch_stop frag
