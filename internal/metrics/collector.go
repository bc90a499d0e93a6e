package metrics

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
)

const ns = "fragscope"

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

var cgroupLabels = []string{"cgroup", "container", "pod", "namespace", "runtime"}

var (
	descFreeBlocks = newDesc("free_blocks",
		"Free blocks of 2^order pages in the zone's free lists (buddyinfo), from the latest snapshot.",
		"node", "zone", "order")
	descFragIndex = newDesc("fragmentation_index",
		"Kernel fragmentation index of an allocation of the order (extfrag_index): towards 1 it would fail for fragmentation, towards 0 for lack of memory; -1 when a free block of the order exists (as debugfs extfrag_index prints it).",
		"node", "zone", "order")
	descUnusable = newDesc("unusable_index",
		"Kernel unusable free space index (unusable_index): share of free memory in blocks smaller than the order.",
		"node", "zone", "order")
	descZoneFree = newDesc("zone_free_bytes",
		"Free memory of the zone: zoneinfo's NR_FREE_PAGES, the free lists' sum when zoneinfo lacked the zone.",
		"node", "zone")
	descWatermark = newDesc("zone_watermark_bytes",
		"Zone watermark (zoneinfo min, low, high).",
		"node", "zone", "level")
	descAllocs = newDesc("page_allocations_total",
		"Page allocations counted in the kernel, by order and migratetype.",
		"order", "migratetype")
	descAllocFails = newDesc("page_allocation_failures_total",
		"Failed page allocations seen as events, by order.",
		"order")
	descExtfrag = newDesc("extfrag_fallbacks_total",
		"Allocations that fell back to a free block of another migratetype (kmem:mm_page_alloc_extfrag); fragmenting ones took part of a pageblock.",
		"alloc_migratetype", "fallback_migratetype", "fragmenting")
	descSlab = newDesc("slab_cache_creations_total",
		"Returns from the kmem_cache_create family.",
		"result")
	descNetns = newDesc("netns_creations_total",
		"Returns from copy_net_ns; errno names the failure.",
		"result", "errno")
	descNsFail = newDesc("namespace_syscall_failures_total",
		"Failed clone, clone3, unshare and setns calls asking for namespaces.",
		"syscall", "errno")
	descStalls = newDesc("stalls_total",
		"Tasks that stayed past the stall threshold in a namespace syscall or in the cgroup v1 memcg OOM wait, counted once per stall.",
		"call")
	descStallsNow = newDesc("stalls_in_flight",
		"Stalls reported running and not ended yet: a hung container start shows here while it hangs.",
		"call")
	descIncidents = newDesc("incidents_total",
		"Failed namespace syscalls explained, by verdict.",
		"verdict")
	descCgUnmovable = newDesc("cgroup_unmovable_high_order_allocations_total",
		"Unmovable allocations of order >= 3 by the cgroup's tasks; the top cgroups have their own series, the rest are in cgroup=\"other\".",
		cgroupLabels...)
	descCgFragmenting = newDesc("cgroup_fragmenting_fallbacks_total",
		"Fragmenting extfrag fallbacks caused by the cgroup's tasks; the top cgroups have their own series, the rest are in cgroup=\"other\".",
		cgroupLabels...)
	descCgFailures = newDesc("cgroup_allocation_failures_total",
		"Failed page allocations suffered by the cgroup's tasks, counted in the kernel; the top cgroups have their own series, the rest are in cgroup=\"other\".",
		cgroupLabels...)
	descCgStalls = newDesc("cgroup_stalls_total",
		"Direct compaction and reclaim (direct and memcg) stalls of the cgroup's tasks; the top cgroups have their own series, the rest are in cgroup=\"other\".",
		cgroupLabels...)
	descRecPaused = newDesc("recorder_paused",
		"1 while the flight recorder is paused on a write error (a full disk): events are dropped until there is room.")
	descRecDropped = newDesc("recorder_events_dropped_total",
		"Events the flight recorder dropped while paused.")
	descRecBytes = newDesc("recorder_written_bytes_total",
		"Bytes the flight recorder wrote to its segments.")
	descPinFailures = newDesc("incident_pin_failures_total",
		"Attempts to pin an incident's recording that failed (retried every 5 s for up to an hour).")
	descDropped = newDesc("events_dropped_total",
		"Events lost: ringbuf full (event counts are lower bounds), extfrag or cgroup counter map full (those counts are not attributed).",
		"where")
	descHook = newDesc("hook_attached",
		"1 when the hook attached with the mechanism, 0 when it did not attach (mechanism \"none\").",
		"hook", "mechanism")
	descBuild = newDesc("build_info",
		"Always 1: the fragscope version, the Go version it was built with, and the session's kernel.",
		"version", "goversion", "kernel")
	descNode = newDesc("node_info",
		"Always 1: the node the agent reports for, the session's hostname and boot id.",
		"nodename", "hostname", "boot_id")
	descSnapshotTime = newDesc("last_snapshot_timestamp_seconds",
		"Time of the latest free-memory snapshot, in seconds since the epoch.")
)

// cgroupDescs are in the order of cgroupValues.
var cgroupDescs = [nCgroupCounts]*prometheus.Desc{descCgUnmovable, descCgFragmenting, descCgFailures, descCgStalls}

var allDescs = []*prometheus.Desc{
	descFreeBlocks, descFragIndex, descUnusable, descZoneFree, descWatermark,
	descAllocs, descAllocFails, descExtfrag, descSlab, descNetns, descNsFail, descIncidents,
	descStalls, descStallsNow,
	descCgUnmovable, descCgFragmenting, descCgFailures, descCgStalls,
	descDirectCompaction, descDirectReclaim, descVmstat, descFragScore,
	descDropped, descHook, descBuild, descNode, descSnapshotTime,
	descRecPaused, descRecDropped, descRecBytes, descPinFailures,
}

// Series declared with 0 before anything is counted, so that increase()
// sees the first failure instead of the series appearing with it.
var (
	verdicts = []incident.Cause{
		incident.CauseFragmentation, incident.CauseExhaustion, incident.CauseMemcgLimit,
		incident.CauseNamespaceLimit, incident.CauseUnknown,
	}
	nsSyscalls = []string{"clone", "clone3", "unshare", "setns"}
	stallCalls = append(slices.Clone(nsSyscalls), event.CallMemcgOOMWait)
	// ENOMEM (memory) and ENOSPC (a user.max_*_namespaces limit) are what
	// namespace creation fails with in the incidents fragscope explains.
	commonErrnos = []string{"ENOMEM", "ENOSPC"}
	// stealable are MIGRATE_UNMOVABLE, MIGRATE_MOVABLE and
	// MIGRATE_RECLAIMABLE: values 0-2 on every kernel since 2.6.24 (their
	// order changed in 4.4; the session's table names them).
	stealable = []int{0, 1, 2}
)

// orderLabels avoids formatting an order per sample.
var orderLabels = func() (l [64]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func orderLabel(o int) string {
	if o >= 0 && o < len(orderLabels) {
		return orderLabels[o]
	}
	return strconv.Itoa(o)
}

// Collector is the session's prometheus.Collector. Scrapes may run at once:
// mu serializes them, since the per-cgroup series keep state across scrapes.
type Collector struct {
	r    Reader
	opts Options

	mu      sync.Mutex
	cgroups *cgroupSet
	stalls  stallHists
}

// NewCollector returns a collector reading the session through r.
func NewCollector(r Reader, opts Options) *Collector {
	opts = opts.withDefaults()
	return &Collector{r: r, opts: opts, cgroups: newCgroupSet(opts.TopCgroups, opts.MaxCgroups)}
}

// Describe sends every family's descriptor: the collector is checked.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect builds the samples inside Read, with the pipeline's lock held,
// and sends them after it returns, so a slow consumer of ch never holds up
// the pipeline.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var out []prometheus.Metric
	c.mu.Lock()
	c.r.Read(func(s State) { out = c.collect(s) })
	c.mu.Unlock()
	for _, m := range out {
		ch <- m
	}
}

// samples accumulates one scrape's metrics.
type samples []prometheus.Metric

func (m *samples) counter(d *prometheus.Desc, v uint64, labels ...string) {
	m.add(d, prometheus.CounterValue, float64(v), labels)
}

func (m *samples) gauge(d *prometheus.Desc, v float64, labels ...string) {
	m.add(d, prometheus.GaugeValue, v, labels)
}

// add never panics: a sample that cannot be made becomes an error the
// handler reports while serving the rest, instead of a panic on an HTTP
// goroutine taking the agent down.
func (m *samples) add(d *prometheus.Desc, t prometheus.ValueType, v float64, labels []string) {
	for i, l := range labels {
		labels[i] = validLabel(l)
	}
	s, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		s = prometheus.NewInvalidMetric(d, err)
	}
	*m = append(*m, s)
}

// validLabel makes a label value valid UTF-8, which the exposition requires
// and kernel strings (cgroup paths, hostnames) need not be.
func validLabel(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func (c *Collector) collect(s State) []prometheus.Metric {
	var m samples
	a := s.Agg
	var start *event.Start
	var sum aggregate.Summary
	if a != nil {
		start = a.Start()
		sum = a.Summary()
	}

	version, kernel, hostname, bootID := c.opts.Version, "unknown", "", ""
	if start != nil {
		if version == "" {
			version = start.Version
		}
		kernel, hostname, bootID = start.KernelRelease, start.Hostname, start.BootID
	}
	if version == "" {
		version = "unknown"
	}
	m.gauge(descBuild, 1, version, runtime.Version(), kernel)
	m.gauge(descNode, 1, s.NodeName, hostname, bootID)
	if r := s.Recorder; r != nil {
		paused := 0.0
		if r.Paused {
			paused = 1
		}
		m.gauge(descRecPaused, paused)
		m.counter(descRecDropped, r.Dropped)
		m.counter(descRecBytes, uint64(max(r.WrittenBytes, 0)))
		m.counter(descPinFailures, r.PinFailures)
	}
	if start != nil {
		hooks(&m, start.Hooks)
	}

	var pageSize uint32
	if start != nil {
		pageSize = start.PageSize
	}
	orders := zones(&m, sum.Snapshot, pageSize)
	counts(&m, &sum.Counts, orders, a)

	for _, v := range verdicts {
		m.counter(descIncidents, s.Incidents[string(v)], string(v))
	}
	for v, n := range s.Incidents {
		if !isVerdict(v) {
			m.counter(descIncidents, n, v) // a verdict added after this list
		}
	}

	stalls(&m, a)

	if a != nil {
		c.cgroups.update(sum.Cgroups)
	} else {
		c.cgroups.rows = c.cgroups.rows[:0]
	}
	c.cgroups.emit(&m)
	if a != nil {
		c.stalls.update(a, c.cgroups, sum.Cgroups)
		kernelCompaction(&m, sum.Snapshot)
	}
	c.stalls.emit(&m)
	return m
}

// stalls are the stall families, every call declared with 0.
func stalls(m *samples, a *aggregate.Aggregator) {
	total, now := map[string]uint64{}, map[string]float64{}
	for _, c := range stallCalls {
		total[c], now[c] = 0, 0
	}
	if a != nil {
		counts, running := a.Stalls()
		for _, c := range counts {
			total[c.Call] += c.Count
		}
		for _, r := range running {
			now[r.Call]++
		}
	}
	for c, n := range total {
		m.counter(descStalls, n, c)
	}
	for c, n := range now {
		m.gauge(descStallsNow, n, c)
	}
}

func isVerdict(v string) bool {
	for _, k := range verdicts {
		if string(k) == v {
			return true
		}
	}
	return false
}

// hooks exports each hook once: a registry rejects a repeated label set,
// and a hook listed twice is attached if either entry says so.
func hooks(m *samples, hs []event.HookStatus) {
	type key struct{ hook, mech string }
	seen := make(map[key]bool, len(hs))
	var order []key
	for _, h := range hs {
		k := key{h.Hook, h.Mechanism}
		if !h.Attached || k.mech == "" {
			k.mech = "none"
		}
		if _, ok := seen[k]; !ok {
			order = append(order, k)
		}
		seen[k] = seen[k] || h.Attached
	}
	for _, k := range order {
		v := 0.0
		if seen[k] {
			v = 1
		}
		m.gauge(descHook, v, k.hook, k.mech)
	}
}

// zones exports the latest snapshot's per-zone families and returns the
// number of orders its zones have (0 without a snapshot).
func zones(m *samples, ms *event.MemSnapshot, startPageSize uint32) int {
	if ms == nil || ms.Snapshot == nil {
		return 0
	}
	snap := ms.Snapshot
	m.gauge(descSnapshotTime, float64(snap.Time.UnixNano())/1e9)
	pageSize := uint64(snap.PageSize)
	if pageSize == 0 {
		pageSize = uint64(startPageSize)
	}
	orders := 0
	for i := range snap.Zones {
		z := &snap.Zones[i]
		if z.Empty() {
			continue // unpopulated: buddyinfo and extfrag_index leave these out too
		}
		node := strconv.Itoa(z.Node)
		orders = max(orders, len(z.FreeBlocks))
		for o, n := range z.FreeBlocks {
			ol := orderLabel(o)
			m.gauge(descFreeBlocks, float64(n), node, z.Name, ol)
			// -1000 is the kernel's "a block this size is free"; debugfs
			// extfrag_index prints it as -1.000, and so does this. A
			// missing sample would make a healthy zone look unscraped.
			m.gauge(descFragIndex, float64(z.FragIndex(o))/1000, node, z.Name, ol)
			m.gauge(descUnusable, float64(z.Unusable(o))/1000, node, z.Name, ol)
		}
		if pageSize == 0 {
			continue // bytes unknown: better no sample than one in pages
		}
		free := z.NrFree
		if !z.HaveWatermarks || free == 0 {
			free = z.FreePages()
		}
		m.gauge(descZoneFree, float64(free*pageSize), node, z.Name)
		if z.HaveWatermarks {
			m.gauge(descWatermark, float64(z.Min*pageSize), node, z.Name, "min")
			m.gauge(descWatermark, float64(z.Low*pageSize), node, z.Name, "low")
			m.gauge(descWatermark, float64(z.High*pageSize), node, z.Name, "high")
		}
	}
	return orders
}

// counts exports the session counters. orders is how many orders to
// declare failure series for, so the first failure of an order is an
// increase rather than a new series.
func counts(m *samples, c *aggregate.Counts, orders int, names *aggregate.Aggregator) {
	failed := make(map[int]bool, len(c.Orders))
	for _, o := range c.Orders {
		ol := orderLabel(o.Order)
		for _, n := range o.AllocsByMigratetype {
			m.counter(descAllocs, n.Count, ol, n.Name)
		}
		m.counter(descAllocFails, o.Failures, ol)
		failed[o.Order] = true
	}
	for o := range orders {
		if !failed[o] {
			m.counter(descAllocFails, 0, orderLabel(o))
		}
	}

	// The fallbacks between the three migratetypes the allocator steals
	// between (mm/page_alloc.c fallbacks[]) are declared with 0: a node
	// that has not fragmented yet still has the series rate() needs.
	type pair struct{ alloc, fallback string }
	seen := map[pair]bool{}
	for _, p := range c.Extfrag.ByMigratetype {
		m.counter(descExtfrag, p.Fragmenting, p.Alloc, p.Fallback, "true")
		m.counter(descExtfrag, p.Events-p.Fragmenting, p.Alloc, p.Fallback, "false")
		seen[pair{p.Alloc, p.Fallback}] = true
	}
	for _, a := range stealable {
		for _, f := range stealable {
			if names == nil || a == f {
				continue
			}
			an, fn := names.MigratetypeName(a), names.MigratetypeName(f)
			if !seen[pair{an, fn}] {
				m.counter(descExtfrag, 0, an, fn, "true")
				m.counter(descExtfrag, 0, an, fn, "false")
			}
		}
	}

	m.counter(descSlab, c.SlabCreates-c.SlabFailures, "success")
	m.counter(descSlab, c.SlabFailures, "failure")

	m.counter(descNetns, c.Netns.Created, "success", "")
	netnsErr := make(map[string]uint64, len(c.Netns.ByErrno)+len(commonErrnos))
	for _, e := range commonErrnos {
		netnsErr[e] = 0
	}
	for _, e := range c.Netns.ByErrno {
		netnsErr[e.Name] += e.Count
	}
	for e, n := range netnsErr {
		m.counter(descNetns, n, "failure", e)
	}

	// The aggregator also keys syscall failures by the namespaces asked
	// for; the family sums over them to keep to {syscall, errno}.
	type sysKey struct{ syscall, errno string }
	sys := make(map[sysKey]uint64, len(c.Syscalls)+len(nsSyscalls)*len(commonErrnos))
	for _, s := range nsSyscalls {
		for _, e := range commonErrnos {
			sys[sysKey{s, e}] = 0
		}
	}
	for _, f := range c.Syscalls {
		sys[sysKey{f.Syscall, f.ErrnoName}] += f.Count
	}
	for k, n := range sys {
		m.counter(descNsFail, n, k.syscall, k.errno)
	}

	m.counter(descDropped, c.Drops, "ringbuf")
	m.counter(descDropped, c.Extfrag.Overflow, "extfrag_map")
	m.counter(descDropped, c.CgroupOverflow, "cgroup_map")
}
