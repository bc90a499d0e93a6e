package incident

import (
	"fmt"
	"slices"
	"strings"
)

// Known code paths a call trace can show, as KernelLog.Paths names them.
const (
	PathConntrack  = "nf_conntrack" // copy_net_ns -> nf_conntrack_init_net -> kmem_cache_create
	PathMemcgCache = "memcg_cache"  // per-memcg kmem cache registration (3.10 .. 5.8)
	PathVeth       = "veth"         // veth queue allocation
	PathRXRefill   = "rx_refill"    // a network driver refilling its RX ring in softirq
	PathPacketRing = "packet_ring"  // AF_PACKET ring blocks (alloc_pg_vec)
	PathSlabPage   = "slab_page"    // SLUB/SLAB allocating a new slab
	PathKvmalloc   = "kvmalloc"     // kvmalloc: kmalloc first, vmalloc after
	PathPageFrag   = "page_frag"    // skb page fragments (order-3 first, order-0 after)
	PathTHP        = "transhuge"    // a transparent huge page
	PathNetns      = "copy_net_ns"  // network namespace creation
	PathSyscall    = "syscall"      // the syscall the trace starts in
	PathSoftirq    = "softirq"      // the allocation ran in softirq context
)

// pathSet is what findPaths saw in the traces.
type pathSet struct {
	has      map[string]bool
	syscall  string // "clone", "unshare", "setns", ...
	driver   string // the RX refill function
	fallback string
}

func (s pathSet) names() []string {
	var out []string
	for _, p := range []string{PathSyscall, PathNetns, PathConntrack, PathVeth, PathMemcgCache, PathRXRefill,
		PathSoftirq, PathPacketRing, PathKvmalloc, PathPageFrag, PathSlabPage, PathTHP} {
		if s.has[p] {
			out = append(out, p)
		}
	}
	return out
}

// findPaths reads the function names of the traces (innermost first).
func findPaths(frames []string) pathSet {
	s := pathSet{has: map[string]bool{}}
	in := func(names ...string) bool {
		return slices.ContainsFunc(frames, func(f string) bool { return slices.Contains(names, f) })
	}
	// Entry points, every spelling from 2.6's sys_clone to 6.x's __do_sys_clone3.
	for _, f := range frames {
		name := strings.ToLower(f)
		for _, pre := range []string{"__x64_sys_", "__arm64_sys_", "__ia32_sys_", "__do_sys_", "__se_sys_", "sys_", "ksys_", "stub_"} {
			if rest, ok := strings.CutPrefix(name, pre); ok {
				switch rest {
				case "clone", "clone3", "unshare", "setns":
					s.syscall = rest
				}
			}
		}
	}
	if s.syscall == "" && in("do_fork", "kernel_clone", "_do_fork") && in("copy_namespaces", "create_new_namespaces") {
		s.syscall = "clone"
	}
	if s.syscall != "" {
		s.has[PathSyscall] = true
	}
	s.has[PathNetns] = in("copy_net_ns")
	s.has[PathConntrack] = in("nf_conntrack_init_net", "nf_conntrack_pernet_init", "nf_conntrack_init")
	s.has[PathMemcgCache] = in("memcg_register_cache", "kmem_cache_create_memcg", "memcg_create_kmem_cache",
		"memcg_kmem_create_cache", "memcg_alloc_cache_params", "memcg_update_cache_size", "memcg_update_all_caches")
	s.has[PathVeth] = in("veth_newlink", "veth_alloc_queues", "veth_init_queues", "veth_dev_init")
	s.has[PathSoftirq] = in("__do_softirq", "net_rx_action", "handle_softirqs", "run_ksoftirqd", "do_softirq")
	s.has[PathPacketRing] = in("alloc_pg_vec", "alloc_one_pg_vec_page", "packet_set_ring")
	s.has[PathSlabPage] = in("allocate_slab", "new_slab", "kmem_getpages", "cache_grow", "cache_grow_begin", "___slab_alloc")
	s.has[PathKvmalloc] = in("kvmalloc_node", "__kvmalloc_node", "kvmalloc_node_noprof", "__kvmalloc_node_noprof", "kvzalloc", "kvmalloc")
	s.has[PathPageFrag] = in("skb_page_frag_refill", "sk_page_frag_refill", "__page_frag_cache_refill", "page_frag_alloc", "__page_frag_alloc_align")
	s.has[PathTHP] = in("do_huge_pmd_anonymous_page", "alloc_hugepage_vma", "khugepaged", "collapse_huge_page", "vma_alloc_folio")
	for _, f := range frames {
		if isRXRefill(f) {
			s.has[PathRXRefill], s.driver = true, f
			break
		}
	}
	if !s.has[PathRXRefill] && s.has[PathSoftirq] && in("__netdev_alloc_skb", "__napi_alloc_skb", "netdev_alloc_frag",
		"napi_alloc_frag", "page_pool_alloc_pages", "__page_pool_alloc_pages_slow", "page_pool_alloc_frag", "dev_alloc_skb") {
		s.has[PathRXRefill] = true
	}
	switch {
	case s.has[PathRXRefill]:
		s.fallback = "the network stack drops the packet and the driver refills its ring on a later poll"
	case s.has[PathPacketRing]:
		s.fallback = "AF_PACKET's alloc_one_pg_vec_page tries vzalloc next, then order-0-backed pages " +
			"without __GFP_NORETRY (net/packet/af_packet.c)"
	case s.has[PathKvmalloc]:
		s.fallback = "kvmalloc falls back to vmalloc, which needs no contiguous pages (mm/util.c)"
	case s.has[PathPageFrag]:
		s.fallback = "the page fragment cache retries with an order-0 page (skb_page_frag_refill, " +
			"__page_frag_cache_refill)"
	case s.has[PathSlabPage]:
		s.fallback = "SLUB's allocate_slab retries at the cache's minimum order (oo_order(s->min)), " +
			"SLAB's cache_grow the same order with the caller's own gfp"
	case s.has[PathTHP]:
		s.fallback = "the fault or khugepaged falls back to base pages"
	}
	return s
}

// isRXRefill recognizes a driver's RX ring refill by name:
// mlx5e_post_rx_wqes, ixgbe_alloc_rx_buffers, bcmgenet_rx_refill, ...
func isRXRefill(f string) bool {
	l := strings.ToLower(f)
	return strings.Contains(l, "rx_refill") || strings.Contains(l, "refill_rx") ||
		strings.Contains(l, "alloc_rx_buf") || strings.Contains(l, "post_rx") ||
		(strings.Contains(l, "refill") && strings.Contains(l, "rx"))
}

// kernelChain is the path from the entry point to the failed allocation,
// outermost first, from the traces and the reports.
func kernelChain(inc *Incident, p *pending, frames []string, s pathSet) []string {
	var out []string
	if s.syscall != "" {
		out = append(out, s.syscall)
	}
	if s.has[PathSoftirq] {
		out = append(out, "softirq")
	}
	if s.has[PathNetns] {
		out = append(out, "copy_net_ns")
	}
	if s.has[PathConntrack] {
		out = append(out, "nf_conntrack_init_net")
	}
	if s.has[PathVeth] {
		out = append(out, "veth queue allocation")
	}
	if s.has[PathRXRefill] {
		if s.driver != "" {
			out = append(out, "RX refill ("+s.driver+")")
		} else {
			out = append(out, "RX refill")
		}
	}
	if s.has[PathPacketRing] {
		out = append(out, "packet_set_ring -> alloc_pg_vec")
	}
	switch {
	case len(inc.Slabs) > 0:
		out = append(out, fmt.Sprintf("kmem_cache_create(%s)", inc.Slabs[0].Name))
	case slices.Contains(frames, "kmem_cache_create"):
		out = append(out, "kmem_cache_create")
	}
	if s.has[PathMemcgCache] {
		out = append(out, "per-memcg kmem cache")
	}
	if s.has[PathSlabPage] {
		out = append(out, "new slab")
	}
	for _, a := range inc.Allocs {
		if a.Primary {
			out = append(out, fmt.Sprintf("order-%d allocation failed", a.Order))
		}
	}
	if len(inc.Allocs) == 0 {
		out = append(out, kernelWhat(inc, p)+" failed")
	}
	return out
}

// kernelSteps is the advice: the known path's first, each with its source,
// then the cause's own.
func (c *Correlator) kernelSteps(inc *Incident, s pathSet) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	release := ""
	if inc.Kernel != nil {
		release = inc.Kernel.KernelRelease
	}
	el7 := strings.Contains(release, ".el7")
	if s.has[PathMemcgCache] {
		if el7 {
			add("per-memcg kmem caches: RHEL 7's 3.10 copies a slab cache for every memory cgroup with kmem " +
				"accounting on (memcg_register_cache, kmem_cache_create_memcg), and each registration kmallocs " +
				"arrays that grow with the caches; container runtimes turned kmem accounting on for every " +
				"container (runc PR #1350). Boot with cgroup.memory=nokmem, reported working from RHEL 7.7's " +
				"kernel-3.10.0-1062 (docker/for-linux#841; Red Hat bugzilla 1507149, fixed in kernel-3.10.0-1075.el7), " +
				"or run a runc and kubelet built with the nokmem tag (runc PR #1921, kubernetes/kubernetes#61937)")
		} else {
			add("per-memcg kmem caches (memcg_create_kmem_cache, 3.8 .. 5.8) are created for every memory cgroup " +
				"with kmem accounting: cgroup.memory=nokmem turns kmem accounting off (Documentation/" +
				"kernel-parameters.txt, 4.5+, commit 04823c833b3e); 5.9 replaced per-memcg caches with " +
				"per-object accounting (the slab controller rework)")
		}
	}
	if s.has[PathConntrack] {
		add("nf_conntrack before 4.7 creates one slab cache per network namespace (nf_conntrack_<netns pointer>), " +
			"so every pod's netns costs a kmem_cache_create; 4.7 uses one cache for all (commit 0c5366b3a8c7 " +
			"\"netfilter: conntrack: use single slab cache\"). Until then each new namespace needs the order of " +
			"that failed allocation free")
	}
	if s.has[PathVeth] {
		add("veth allocates one struct veth_rq per RX queue in one array (veth_alloc_queues, drivers/net/veth.c): " +
			"create the pairs with fewer queues (ip link add ... numrxqueues N numtxqueues N, or the CNI plugin's " +
			"queue setting), so the array needs a smaller contiguous block")
	}
	if s.has[PathRXRefill] || (s.has[PathSoftirq] && inc.Verdict.Cause != CauseOpportunistic) {
		add("vm.min_free_kbytes: RX refills in softirq are atomic (no reclaim, no compaction) and may dip only " +
			"into the part of the min watermark __GFP_HIGH/ALLOC_HARDER opens (mm/page_alloc.c " +
			"__zone_watermark_ok); a larger reserve keeps that part stocked, at the cost of memory " +
			"applications cannot use")
		add("a smaller MTU or RX ring (ip link set ... mtu, ethtool -G) lowers the order and the number of " +
			"buffers each refill asks for; jumbo frames need order-1 to order-3 blocks")
	}
	switch inc.Verdict.Cause {
	case CauseOpportunistic:
		add("nothing to fix for this attempt by itself: its caller fell back; it matters if the fallback failed " +
			"too (a later report of the same task) or if these reports flood the log")
		if inc.Memory != nil {
			add("if they do: vm.compact_memory=1 (or vm.compaction_proactiveness, 5.9+) keeps blocks of this " +
				"order available longer")
		}
	case CauseUnknown:
		add("the complete report (header, call trace and Mem-Info) from the journal or /var/log of that boot " +
			"gives a verdict: `fragscope explain FILE`")
	default:
		out = append(out, c.nextSteps(inc)...)
	}
	return out
}
