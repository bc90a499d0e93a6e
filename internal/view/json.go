package view

import (
	"bufio"
	"encoding/json"
	"io"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/allocrule"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/slabname"
)

// JSON writes NDJSON (docs/json.md). Objects are built from the
// presentation structs below, never by marshalling event types, so the
// output format changes only when this file does.
type JSON struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// NewJSON returns a JSON view writing to w. Output is buffered; each Tick
// and Close flush it, so a reader sees every interval as it closes.
func NewJSON(w io.Writer) *JSON {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // "nf_conntrack_<ptr>" stays readable
	return &JSON{bw: bw, enc: enc}
}

// Event writes the object for ev; a Tick becomes the "interval" object of
// the interval it closed, which carries the Tick's counters.
func (j *JSON) Event(ev event.Event, agg *aggregate.Aggregator) error {
	var obj any
	switch e := ev.(type) {
	case *event.Start:
		obj = jsonStartOf(e)
	case *event.AllocFail:
		obj = jsonAllocFail{
			jsonHeader:      header(e),
			Task:            taskOf(e.Task, agg),
			Order:           e.Order,
			GFP:             e.GFP,
			GFPFlags:        agg.FormatGFP(e.GFP),
			GFPClass:        agg.Session().GFPClass(e.GFP),
			Migratetype:     e.Migratetype,
			MigratetypeName: agg.MigratetypeName(int(e.Migratetype)),
			Hook:            e.Hook,
			In:              inOf(e.In),
			Stack:           list(e.Stack),
		}
	case *event.SlabCreate:
		obj = jsonSlabCreate{
			jsonHeader: header(e), Task: taskOf(e.Task, agg),
			Name: e.Name, Group: slabname.Group(e.Name), Size: e.Size, Flags: e.Flags,
			Failed: e.Failed, LatencyNS: int64(e.Latency), In: inOf(e.In),
		}
	case *event.NetnsCreate:
		errno := aggregate.AbsErrno(e.Errno)
		obj = jsonNetnsCreate{
			jsonHeader: header(e), Task: taskOf(e.Task, agg),
			Errno: errno, ErrnoName: aggregate.ErrnoName(errno), Inode: e.Inode,
			LatencyNS: int64(e.Latency), In: inOf(e.In),
		}
	case *event.NsSyscall:
		errno := aggregate.AbsErrno(e.Errno)
		ns := aggregate.Namespaces(e.Syscall, e.Flags)
		obj = jsonNsSyscall{
			jsonHeader: header(e), Task: taskOf(e.Task, agg),
			Syscall: e.Syscall, Flags: e.Flags, Namespaces: ns, NamespaceFlags: aggregate.FormatNamespaces(ns),
			Errno: errno, ErrnoName: aggregate.ErrnoName(errno),
			Enter: formatTime(e.Enter), LatencyNS: int64(e.Latency), Sandbox: e.Sandbox, Runc: e.Runc,
		}
	case *event.Tick:
		iv := agg.Interval()
		obj = jsonInterval{
			jsonHeader: jsonHeader{Type: "interval", Time: formatTime(iv.End)},
			Seq:        iv.Seq,
			Begin:      formatTime(iv.Begin),
			IntervalNS: int64(iv.Covered),
			jsonCounts: countsOf(&iv.Counts),
		}
	case *event.MemSnapshot:
		obj = jsonSnapshotOf(e, agg)
	case *event.CgroupPath:
		obj = jsonCgroupPath{jsonHeader: header(e), ID: e.ID, Path: e.Path, Removed: e.Removed,
			PodName: e.PodName, PodNamespace: e.PodNamespace, Runtime: e.Runtime, ContainerID: e.ContainerID,
			ContainerName: e.ContainerName, RuntimeNamespace: e.RuntimeNamespace}
	case *event.KernelReport:
		obj = jsonKernelReportOf(e, agg)
	case *event.Stall:
		obj = jsonStallOf(e, agg)
	case *event.MemcgState:
		obj = jsonMemcgState{jsonHeader: header(e), TID: e.TID, CgroupID: e.CgroupID, Reason: e.Reason,
			Version: e.Version, From: e.From, Levels: e.Levels}
	case *event.MemStalls:
		obj = jsonMemStallsOf(e, agg)
	case *event.TaskMemStalls:
		obj = jsonTaskMemStallsOf(e, agg)
	default:
		return nil // a kind this version does not know: skip rather than guess its fields
	}
	if err := j.enc.Encode(obj); err != nil {
		return err
	}
	if k := ev.Kind(); k == event.KindTick || k == event.KindStall {
		// A stall is what a reader of the stream waits for, as an incident.
		return j.bw.Flush()
	}
	return nil
}

// Close writes the final summary and flushes.
func (j *JSON) Close(agg *aggregate.Aggregator) error {
	s := agg.Summary()
	obj := jsonSummary{
		jsonHeader: jsonHeader{Type: "summary", Time: formatTime(s.End)},
		Begin:      formatTime(s.Begin),
		Events:     s.Events,
		Ticks:      s.Ticks,
		IntervalNS: int64(s.Covered),
		jsonCounts: countsOf(&s.Counts),
	}
	if err := j.enc.Encode(obj); err != nil {
		return err
	}
	return j.bw.Flush()
}

// formatTime is RFC 3339 in UTC with as many fractional digits as needed:
// the same instant always prints the same, whatever zone the source used.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// list makes nil slices encode as [] so every field has one JSON type.
func list[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type jsonHeader struct {
	Type string `json:"type"`
	Time string `json:"time"`
}

func header(ev event.Event) jsonHeader {
	return jsonHeader{Type: ev.Kind().String(), Time: formatTime(ev.When())}
}

type jsonStart struct {
	jsonHeader
	Hostname       string     `json:"hostname"`
	KernelRelease  string     `json:"kernel_release"`
	BootID         string     `json:"boot_id"`
	PageSize       uint32     `json:"page_size"`
	PageblockOrder uint8      `json:"pageblock_order"`
	Version        string     `json:"fragscope_version"`
	Hooks          []jsonHook `json:"hooks"`
	GFPFlags       []jsonFlag `json:"gfp_flags"`
	Migratetypes   []string   `json:"migratetypes"`
}

type jsonHook struct {
	Hook      string `json:"hook"`
	Mechanism string `json:"mechanism"`
	Target    string `json:"target"`
	Attached  bool   `json:"attached"`
	Reason    string `json:"reason"`
}

type jsonFlag struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

func jsonStartOf(e *event.Start) jsonStart {
	s := jsonStart{
		jsonHeader:     header(e),
		Hostname:       e.Hostname,
		KernelRelease:  e.KernelRelease,
		BootID:         e.BootID,
		PageSize:       e.PageSize,
		PageblockOrder: e.PageblockOrder,
		Version:        e.Version,
		Hooks:          []jsonHook{},
		GFPFlags:       []jsonFlag{},
		Migratetypes:   list(e.Migratetypes),
	}
	for _, h := range e.Hooks {
		s.Hooks = append(s.Hooks, jsonHook(h))
	}
	for _, f := range e.GFPFlags {
		s.GFPFlags = append(s.GFPFlags, jsonFlag(f))
	}
	return s
}

type jsonTask struct {
	PID        uint32 `json:"pid"`
	TID        uint32 `json:"tid"`
	Comm       string `json:"comm"`
	CgroupID   uint64 `json:"cgroup_id"`
	CgroupPath string `json:"cgroup_path"`
	NetnsIno   uint32 `json:"netns_ino"`
}

// taskOf resolves the cgroup with what the aggregator knows at this point
// of the stream, which is the same live and in replay.
func taskOf(t event.Task, agg *aggregate.Aggregator) jsonTask {
	path := agg.Session().CgroupPath(t.CgroupID)
	return jsonTask{PID: t.PID, TID: t.TID, Comm: t.Comm, CgroupID: t.CgroupID, CgroupPath: path, NetnsIno: t.NetnsIno}
}

type jsonIn struct {
	Syscall string `json:"syscall"`
	Enter   string `json:"enter"`
}

func inOf(r event.SyscallRef) *jsonIn {
	if !r.Inside() {
		return nil
	}
	return &jsonIn{Syscall: r.Syscall, Enter: formatTime(r.Enter)}
}

type jsonAllocFail struct {
	jsonHeader
	Task            jsonTask `json:"task"`
	Order           uint8    `json:"order"`
	GFP             uint64   `json:"gfp"`
	GFPFlags        string   `json:"gfp_flags"`
	GFPClass        string   `json:"gfp_class"`
	Migratetype     int8     `json:"migratetype"`
	MigratetypeName string   `json:"migratetype_name"`
	Hook            string   `json:"hook"`
	In              *jsonIn  `json:"in,omitempty"`
	Stack           []string `json:"stack"`
}

// jsonKernelReport is the "kernel_report" object: one report of the kernel
// log (docs/json.md).
type jsonKernelReport struct {
	jsonHeader
	Task          jsonTask   `json:"task"`
	Kind          string     `json:"kind"`
	Header        string     `json:"header"`
	Source        string     `json:"source"`
	FirstLine     int        `json:"first_line"`
	LastLine      int        `json:"last_line"`
	KernelRelease string     `json:"kernel_release"`
	Order         int        `json:"order"`
	GFP           *uint64    `json:"gfp"` // null when the report printed none
	GFPFlags      string     `json:"gfp_flags"`
	Trace         []string   `json:"trace"`
	HaveMemInfo   bool       `json:"have_mem_info"`
	Slab          string     `json:"slab,omitempty"`
	Suppressed    int        `json:"suppressed,omitempty"`
	SuppressedBy  string     `json:"suppressed_by,omitempty"`
	OOM           *event.OOM `json:"oom,omitempty"`
	Unreadable    []string   `json:"unreadable"`
}

func jsonKernelReportOf(e *event.KernelReport, agg *aggregate.Aggregator) jsonKernelReport {
	o := jsonKernelReport{
		jsonHeader: header(e), Task: taskOf(e.Task, agg), Kind: e.ReportKind, Header: e.Header,
		Source: e.Source, FirstLine: e.FirstLine, LastLine: e.LastLine, KernelRelease: e.KernelRelease,
		Order: e.Order, Trace: list(e.Trace), HaveMemInfo: e.HaveMemInfo, Slab: e.Slab,
		Suppressed: e.Suppressed, SuppressedBy: e.SuppressedBy, OOM: e.OOM, Unreadable: list(e.Unreadable),
	}
	if e.HaveGFP {
		g := e.GFP
		o.GFP = &g
		o.GFPFlags = agg.FormatGFP(e.GFP)
	}
	return o
}

type jsonSlabCreate struct {
	jsonHeader
	Task      jsonTask `json:"task"`
	Name      string   `json:"name"`
	Group     string   `json:"group"`
	Size      uint32   `json:"size"`
	Flags     uint64   `json:"flags"`
	Failed    bool     `json:"failed"`
	LatencyNS int64    `json:"latency_ns"`
	In        *jsonIn  `json:"in,omitempty"`
}

type jsonNetnsCreate struct {
	jsonHeader
	Task      jsonTask `json:"task"`
	Errno     int32    `json:"errno"`
	ErrnoName string   `json:"errno_name"`
	Inode     uint32   `json:"inode"`
	LatencyNS int64    `json:"latency_ns"`
	In        *jsonIn  `json:"in,omitempty"`
}

type jsonNsSyscall struct {
	jsonHeader
	Task           jsonTask `json:"task"`
	Syscall        string   `json:"syscall"`
	Flags          uint64   `json:"flags"`
	Namespaces     uint64   `json:"namespaces"`
	NamespaceFlags string   `json:"namespace_flags"`
	Errno          int32    `json:"errno"`
	ErrnoName      string   `json:"errno_name"`
	Enter          string   `json:"enter"`
	LatencyNS      int64    `json:"latency_ns"`
	// Sandbox is the live source's guess of the pod a runtime was making
	// a netns for (event.SandboxGuess), when the failing task was one.
	Sandbox *event.SandboxGuess `json:"sandbox,omitempty"`
	// Runc is the runc container of a failing runc init stage, by its
	// runc ancestor's command line (event.RuncTask).
	Runc *event.RuncTask `json:"runc,omitempty"`
}

type jsonCgroupPath struct {
	jsonHeader
	ID      uint64 `json:"cgroup_id"`
	Path    string `json:"cgroup_path"`
	Removed bool   `json:"removed"`
	// What the CRI and the runtimes said while recording (event.CgroupPath).
	PodName          string `json:"pod_name,omitempty"`
	PodNamespace     string `json:"pod_namespace,omitempty"`
	Runtime          string `json:"runtime,omitempty"`
	ContainerID      string `json:"container_id,omitempty"`
	ContainerName    string `json:"container_name,omitempty"`
	RuntimeNamespace string `json:"runtime_namespace,omitempty"`
}

type jsonSnapshot struct {
	jsonHeader
	Reason           string     `json:"reason"`
	PageSize         uint32     `json:"page_size"`
	PageblockOrder   int        `json:"pageblock_order"`
	ExtfragThreshold int        `json:"extfrag_threshold"`
	Zones            []jsonZone `json:"zones"`
	// Compaction and FragmentationScore are there for snapshots that read
	// /proc/vmstat (recorded since issue 13): older recordings replay as
	// they always did.
	Compaction         *jsonCompaction `json:"compaction,omitempty"`
	FragmentationScore []jsonNodeScore `json:"fragmentation_score,omitempty"`
}

type jsonZone struct {
	Node             int      `json:"node"`
	Zone             string   `json:"zone"`
	ManagedPages     uint64   `json:"managed_pages"`
	PresentPages     uint64   `json:"present_pages"`
	HaveWatermarks   bool     `json:"have_watermarks"`
	MinPages         uint64   `json:"min_pages"`
	LowPages         uint64   `json:"low_pages"`
	HighPages        uint64   `json:"high_pages"`
	NrFreePages      uint64   `json:"nr_free_pages"`
	FreePages        uint64   `json:"free_pages"`
	LargestFreeOrder int      `json:"largest_free_order"`
	FreeBlocks       []uint64 `json:"free_blocks"`
	FragIndex        []int    `json:"frag_index"`
	UnusableIndex    []int    `json:"unusable_index"`
	Verdict          []string `json:"verdict"`
	// Maps encode with sorted keys: deterministic.
	FreeByMigratetype       map[string][]uint64 `json:"free_by_migratetype"`
	FreeByMigratetypeCapped bool                `json:"free_by_migratetype_capped"`
	PageblocksByMigratetype map[string]uint64   `json:"pageblocks_by_migratetype"`
}

// jsonSnapshotOf carries, per zone and order, the verdict of internal/
// allocrule for a GFP_KERNEL request on the session's kernel: the rule the
// terminal's panel and incidents use, lowmem_reserve included.
func jsonSnapshotOf(e *event.MemSnapshot, agg *aggregate.Aggregator) jsonSnapshot {
	s := e.Snapshot
	out := jsonSnapshot{
		jsonHeader:       header(e),
		Reason:           e.Reason,
		PageSize:         s.PageSize,
		PageblockOrder:   s.PageblockOrder,
		ExtfragThreshold: s.Threshold(),
		Zones:            []jsonZone{},
	}
	var release string
	if st := agg.Start(); st != nil {
		release = st.KernelRelease
	}
	if c := s.Compaction; c != nil {
		out.Compaction = &jsonCompaction{CompactStall: c.CompactStall, CompactFail: c.CompactFail,
			CompactSuccess: c.CompactSuccess, THPFaultFallback: c.THPFaultFallback, THPFaultFallbackCharge: c.THPFaultFallbackCharge}
		for _, n := range s.FragmentationScores() {
			out.FragmentationScore = append(out.FragmentationScore, jsonNodeScore(n))
		}
		if p := s.CompactionProactiveness; p != nil {
			out.Compaction.Proactiveness = p
		}
	}
	era := allocrule.ParseRelease(release)
	orders := 0
	for i := range s.Zones {
		orders = max(orders, len(s.Zones[i].FreeBlocks))
	}
	judged := make([]*allocrule.Judgment, orders)
	for o := range judged {
		judged[o] = allocrule.Judge(s, allocrule.KernelRequest(o, era))
	}
	for i := range s.Zones {
		z := &s.Zones[i]
		jz := jsonZone{
			Node: z.Node, Zone: z.Name,
			ManagedPages: z.Managed, PresentPages: z.Present, HaveWatermarks: z.HaveWatermarks,
			MinPages: z.Min, LowPages: z.Low, HighPages: z.High,
			NrFreePages: z.NrFree, FreePages: z.FreePages(), LargestFreeOrder: z.LargestFreeOrder(),
			FreeBlocks:              list(z.FreeBlocks),
			FragIndex:               make([]int, len(z.FreeBlocks)),
			UnusableIndex:           make([]int, len(z.FreeBlocks)),
			Verdict:                 make([]string, len(z.FreeBlocks)),
			FreeByMigratetype:       z.FreeByMigratetype,
			FreeByMigratetypeCapped: z.FreeByMigratetypeCapped,
			PageblocksByMigratetype: z.PageblocksByMigratetype,
		}
		if jz.FreeByMigratetype == nil {
			jz.FreeByMigratetype = map[string][]uint64{}
		}
		if jz.PageblocksByMigratetype == nil {
			jz.PageblocksByMigratetype = map[string]uint64{}
		}
		for o := range z.FreeBlocks {
			jz.FragIndex[o] = z.FragIndex(o)
			jz.UnusableIndex[o] = z.Unusable(o)
			jz.Verdict[o] = string(judged[o].Zones[i].Verdict)
		}
		out.Zones = append(out.Zones, jz)
	}
	return out
}

// jsonCounts is aggregate.Counts as interval and summary objects carry it.
type jsonCounts struct {
	Allocs                uint64           `json:"allocs"`
	Orders                []jsonOrder      `json:"orders"`
	AllocsByMigratetype   []jsonNamedCount `json:"allocs_by_migratetype"`
	Failures              uint64           `json:"failures"`
	FailuresByGFPClass    []jsonNamedCount `json:"failures_by_gfp_class"`
	FailuresByMigratetype []jsonNamedCount `json:"failures_by_migratetype"`
	Extfrag               jsonExtfrag      `json:"extfrag"`
	SlabCreates           uint64           `json:"slab_creates"`
	SlabFailures          uint64           `json:"slab_failures"`
	Slabs                 []jsonSlabGroup  `json:"slabs"`
	Netns                 jsonNetns        `json:"netns"`
	SyscallFailures       uint64           `json:"syscall_failures"`
	Syscalls              []jsonSyscall    `json:"syscalls"`
	Drops                 uint64           `json:"drops"`
	Cgroups               []jsonCgroup     `json:"cgroups"`
	CgroupOverflow        uint64           `json:"cgroup_overflow"`
}

type jsonOrder struct {
	Order         int              `json:"order"`
	Allocs        uint64           `json:"allocs"`
	PerSec        float64          `json:"allocs_per_sec"`
	Failures      uint64           `json:"failures"`
	ByMigratetype []jsonNamedCount `json:"allocs_by_migratetype"`
}

type jsonNamedCount struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

type jsonExtfrag struct {
	Events        uint64              `json:"events"`
	Fragmenting   uint64              `json:"fragmenting"`
	Overflow      uint64              `json:"overflow"`
	ByMigratetype []jsonExtfragPair   `json:"by_migratetype"`
	ByCgroup      []jsonExtfragCgroup `json:"by_cgroup"`
}

type jsonExtfragPair struct {
	AllocMT      int    `json:"alloc_migratetype"`
	AllocName    string `json:"alloc_migratetype_name"`
	FallbackMT   int    `json:"fallback_migratetype"`
	FallbackName string `json:"fallback_migratetype_name"`
	Events       uint64 `json:"events"`
	Fragmenting  uint64 `json:"fragmenting"`
}

type jsonExtfragCgroup struct {
	ID          uint64 `json:"cgroup_id"`
	Path        string `json:"cgroup_path"`
	Removed     bool   `json:"removed"`
	Events      uint64 `json:"events"`
	Fragmenting uint64 `json:"fragmenting"`
}

type jsonSlabGroup struct {
	Group    string   `json:"group"`
	Creates  uint64   `json:"creates"`
	Failures uint64   `json:"failures"`
	LastSize uint32   `json:"last_size"`
	Netns    []uint32 `json:"netns_inodes"`
}

type jsonNetns struct {
	Created uint64           `json:"created"`
	Failed  uint64           `json:"failed"`
	ByErrno []jsonErrnoCount `json:"failed_by_errno"`
}

type jsonErrnoCount struct {
	Errno int32  `json:"errno"`
	Name  string `json:"errno_name"`
	Count uint64 `json:"count"`
}

type jsonSyscall struct {
	Syscall        string `json:"syscall"`
	Namespaces     uint64 `json:"namespaces"`
	NamespaceNames string `json:"namespace_flags"`
	Errno          int32  `json:"errno"`
	ErrnoName      string `json:"errno_name"`
	Count          uint64 `json:"count"`
}

type jsonInterval struct {
	jsonHeader
	Seq        uint64 `json:"seq"`
	Begin      string `json:"begin"`
	IntervalNS int64  `json:"interval_ns"`
	jsonCounts
}

type jsonSummary struct {
	jsonHeader
	Begin      string `json:"begin"`
	Events     uint64 `json:"events"`
	Ticks      uint64 `json:"ticks"`
	IntervalNS int64  `json:"interval_ns"`
	jsonCounts
}

func named(s []aggregate.NamedCount) []jsonNamedCount {
	out := make([]jsonNamedCount, len(s))
	for i, n := range s {
		out[i] = jsonNamedCount(n)
	}
	return out
}

func countsOf(c *aggregate.Counts) jsonCounts {
	out := jsonCounts{
		Allocs:                c.Allocs,
		Orders:                make([]jsonOrder, 0, len(c.Orders)),
		AllocsByMigratetype:   named(c.AllocsByMigratetype),
		Failures:              c.Failures,
		FailuresByGFPClass:    named(c.FailuresByClass),
		FailuresByMigratetype: named(c.FailuresByMigratetype),
		Extfrag: jsonExtfrag{
			Events: c.Extfrag.Events, Fragmenting: c.Extfrag.Fragmenting, Overflow: c.Extfrag.Overflow,
			ByMigratetype: make([]jsonExtfragPair, 0, len(c.Extfrag.ByMigratetype)),
			ByCgroup:      make([]jsonExtfragCgroup, 0, len(c.Extfrag.ByCgroup)),
		},
		SlabCreates:     c.SlabCreates,
		SlabFailures:    c.SlabFailures,
		Slabs:           make([]jsonSlabGroup, 0, len(c.Slabs)),
		Netns:           jsonNetns{Created: c.Netns.Created, Failed: c.Netns.Failed, ByErrno: make([]jsonErrnoCount, 0, len(c.Netns.ByErrno))},
		SyscallFailures: c.SyscallFailures,
		Syscalls:        make([]jsonSyscall, 0, len(c.Syscalls)),
		Drops:           c.Drops,
		Cgroups:         cgroupsOf(c.Cgroups),
		CgroupOverflow:  c.CgroupOverflow,
	}
	for _, o := range c.Orders {
		out.Orders = append(out.Orders, jsonOrder{
			Order: o.Order, Allocs: o.Allocs, PerSec: o.PerSec, Failures: o.Failures,
			ByMigratetype: named(o.AllocsByMigratetype),
		})
	}
	for _, p := range c.Extfrag.ByMigratetype {
		out.Extfrag.ByMigratetype = append(out.Extfrag.ByMigratetype, jsonExtfragPair{
			AllocMT: p.AllocMT, AllocName: p.Alloc, FallbackMT: p.FallbackMT, FallbackName: p.Fallback,
			Events: p.Events, Fragmenting: p.Fragmenting,
		})
	}
	for _, g := range c.Extfrag.ByCgroup {
		out.Extfrag.ByCgroup = append(out.Extfrag.ByCgroup, jsonExtfragCgroup(g))
	}
	for _, s := range c.Slabs {
		out.Slabs = append(out.Slabs, jsonSlabGroup{
			Group: s.Group, Creates: s.Creates, Failures: s.Failures, LastSize: s.LastSize, Netns: list(s.Netns),
		})
	}
	for _, e := range c.Netns.ByErrno {
		out.Netns.ByErrno = append(out.Netns.ByErrno, jsonErrnoCount(e))
	}
	for _, s := range c.Syscalls {
		out.Syscalls = append(out.Syscalls, jsonSyscall(s))
	}
	return out
}

// jsonMemcgState is the "memcg_state" object: a task's memory cgroup chain
// as read for a failure, or a recently failed cgroup read again.
type jsonMemcgState struct {
	jsonHeader
	TID      uint32             `json:"tid,omitempty"`
	CgroupID uint64             `json:"cgroup_id,omitempty"`
	Reason   string             `json:"reason"`
	Version  int                `json:"version"`
	From     string             `json:"from"`
	Levels   []event.MemcgLevel `json:"levels"`
}
