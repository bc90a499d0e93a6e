package incident

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fragscope/fragscope/internal/aggregate"
)

// nsSysctls names the user.max_*_namespaces sysctl that limits each
// namespace type (kernel/ucount.c), in FormatNamespaces' bit order.
var nsSysctls = []struct {
	bit    uint64
	sysctl string
}{
	{aggregate.CloneNewTime, "user.max_time_namespaces"},
	{aggregate.CloneNewNS, "user.max_mnt_namespaces"},
	{aggregate.CloneNewCgroup, "user.max_cgroup_namespaces"},
	{aggregate.CloneNewUTS, "user.max_uts_namespaces"},
	{aggregate.CloneNewIPC, "user.max_ipc_namespaces"},
	{aggregate.CloneNewUser, "user.max_user_namespaces"},
	{aggregate.CloneNewPID, "user.max_pid_namespaces"},
	{aggregate.CloneNewNet, "user.max_net_namespaces"},
}

// nextSteps names the knobs that apply to the verdict and what each one
// trades. Kernel-version notes use the Start's release when known.
func (c *Correlator) nextSteps(inc *Incident) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	switch inc.Verdict.Cause {
	case CauseFragmentation:
		add("vm.compact_memory=1: compact every zone once, now; a CPU burst, and it helps only as " +
			"far as the pages in the way are movable (slab and other kernel pages stay put)")
		if c.kernelBefore(5, 9) {
			add("vm.compaction_proactiveness does not exist before 5.9 (this kernel: %s): schedule "+
				"vm.compact_memory instead, or upgrade", c.sess.Start().KernelRelease)
		} else {
			add("vm.compaction_proactiveness (5.9+, default 20): background compaction towards a " +
				"target; higher keeps large blocks available at a steady CPU cost")
		}
		th := snapshotThreshold(inc)
		add("vm.extfrag_threshold (now %d): lower makes the kernel compact rather than reclaim "+
			"for high-order requests sooner; more compaction CPU, less page-cache loss", th)
		add("vm.min_free_kbytes: a bigger reserve keeps more memory free and fewer pageblocks " +
			"mixed by fallbacks; that memory is no longer usable by applications")
		add("vm.watermark_scale_factor: wakes kswapd earlier and has it reclaim more; more free " +
			"memory to compact from, at the cost of more reclaim (page cache churn)")
		if !c.kernelBefore(5, 0) {
			add("vm.watermark_boost_factor (5.0+): after fragmenting fallbacks kswapd reclaims " +
				"and compacts a little extra; 0 turns it off")
		}
		if len(inc.Top.Cgroups) > 0 {
			add("the cgroups under 'fragmenting' mixed pageblocks most in the last %s: their "+
				"unmovable or reclaimable allocations are what compaction cannot move",
				seconds(inc.Top.Window))
		}
	case CauseExhaustion:
		add("find what holds the memory (slab, page cache, anonymous, per cgroup): compaction " +
			"cannot help when too little is free")
		add("vm.min_free_kbytes: a bigger reserve for atomic and kernel allocations; that memory " +
			"is no longer usable by applications")
		add("vm.watermark_scale_factor: wakes kswapd earlier and has it reclaim more; more " +
			"reclaim (page cache churn) for more free memory")
	case CauseMemcgLimit:
		path := inc.Task.CgroupPath
		if path == "" {
			path = "id " + strconv.FormatUint(inc.Task.CgroupID, 10)
		}
		add("the memory limit of cgroup %s: v2 memory.max, v1 memory.limit_in_bytes and "+
			"memory.kmem.limit_in_bytes; raising it lets the pod use more of the node", path)
		add("that cgroup's memory.stat (kernel, slab) and memory.events (max, oom): what the " +
			"charge is spent on")
	case CauseNamespaceLimit:
		ns := aggregate.Namespaces(inc.Syscall.Name, inc.Syscall.Flags)
		if inc.Syscall.Name == "" {
			ns = aggregate.CloneNewNet // closed by a failed copy_net_ns
		}
		for _, s := range nsSysctls {
			if ns&s.bit != 0 {
				add("%s: raise it in the user namespace that creates them (and its ancestors); "+
					"it bounds how many namespaces exist at once, leaked ones included", s.sysctl)
			}
		}
		add("lsns: namespaces kept alive after their processes ended (bind mounts, open fds) " +
			"count against the limit")
	default:
		add("attach the missing hooks ('fragscope doctor' says why each did not attach), or " +
			"record on a kernel where they attach and replay the recording")
	}
	return out
}

func snapshotThreshold(inc *Incident) int {
	if inc.Memory != nil {
		return inc.Memory.ExtfragThreshold
	}
	return 500
}

// kernelBefore reports whether the session's kernel is known to be older
// than major.minor. Unknown releases are not "before": the advice then
// names the knob with its version.
func (c *Correlator) kernelBefore(major, minor int) bool {
	if c.sess.Start() == nil {
		return false
	}
	maj, min, ok := parseRelease(c.sess.Start().KernelRelease)
	if !ok {
		return false
	}
	return maj < major || (maj == major && min < minor)
}

// parseRelease reads "3.10.0-514.el7.x86_64" as 3, 10.
func parseRelease(r string) (major, minor int, ok bool) {
	a, rest, found := strings.Cut(r, ".")
	if !found {
		return 0, 0, false
	}
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return x, y, true
}
