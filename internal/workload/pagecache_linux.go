package workload

import (
	"os/exec"
	"strconv"
	"strings"
)

// PageCacheChunkMiB is how much PageCache writes between data syncs: well
// under a 32 MiB memory cgroup, so its reclaim always finds clean pages.
// Unsynced, a v1 memory cgroup (which does not throttle dirtying) OOMs as
// soon as the disk is slower than dd: seen on the shared development VM.
const PageCacheChunkMiB = 16

// PageCache returns a command that joins the cgroups (each a directory
// whose cgroup.procs it writes itself into) and writes mib MiB of page
// cache to file with dd, PageCacheChunkMiB at a time, each chunk
// fdatasync'ed. In a memory cgroup smaller than mib, every chunk past the
// limit charges pages that memcg reclaim must free first.
func PageCache(cgroups []string, file string, mib int) *exec.Cmd {
	return exec.Command("sh", "-c", `
		for d in $1; do echo $$ > "$d/cgroup.procs" || exit 1; done
		i=0
		while [ $((i * $4)) -lt $3 ]; do
			dd if=/dev/zero of="$2" bs=1M count=$4 seek=$((i * $4)) conv=notrunc,fdatasync status=none || exit 1
			i=$((i + 1))
		done`,
		"sh", strings.Join(cgroups, " "), file, strconv.Itoa(mib), strconv.Itoa(PageCacheChunkMiB))
}
