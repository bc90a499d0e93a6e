package probes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/tracefs"
)

// memstallTP is one tracepoint the compaction and reclaim hooks use: its
// programs (raw_tp and classic twins), the argument count of its TP_PROTO
// (what the raw_tp twin reads positionally) and the classic record's fields
// the tracepoint twin reads (tp_field index -> field name).
type memstallTP struct {
	group, name string
	prog        string // base: <prog>_raw, <prog>_tp
	args        int
	fields      map[int]string
	required    bool
}

// Indices of tp_off/tp_size, as enum tp_field in bpf/memstall.bpf.c.
const (
	fTTCPOrder = iota
	fTTCPGfp
	fZBeginStart
	fZEndStart
	fZEndStatus
	fWakeOrder
	fReclaimOrder
	fReclaimGfp
	fReclaimNr
	fCretryOrder
	fCretryRet
	fRRZOrder
	fRRZWmark
	fMemcgOrder
	fMemcgGfp
	fMemcgNr
	nTPFields
)

// The arities are 6.18's (include/trace/events/compaction.h, vmscan.h,
// oom.h); a kernel whose TP_PROTO differs gets the classic twin, which reads
// fields by name.
var (
	compactionTPs = []memstallTP{
		{"compaction", "mm_compaction_try_to_compact_pages", "compact_begin", 3,
			map[int]string{fTTCPOrder: "order", fTTCPGfp: "gfp_mask"}, true},
		{"compaction", "mm_compaction_begin", "zone_begin", 4, map[int]string{fZBeginStart: "zone_start"}, false},
		{"compaction", "mm_compaction_end", "zone_end", 5,
			map[int]string{fZEndStart: "zone_start", fZEndStatus: "status"}, false},
		{"compaction", "mm_compaction_kcompactd_wake", "kcompactd_wake", 3, map[int]string{fWakeOrder: "order"}, false},
		{"oom", "compact_retry", "compact_retry", 6, map[int]string{fCretryOrder: "order", fCretryRet: "ret"}, false},
	}
	// compactCloser ends direct compactions where no exit probe does.
	compactCloser = memstallTP{"kmem", "mm_page_alloc", "compact_close", 4, nil, true}
	reclaimTPs    = []memstallTP{
		{"vmscan", "mm_vmscan_direct_reclaim_begin", "direct_reclaim_begin", 2,
			map[int]string{fReclaimOrder: "order", fReclaimGfp: "gfp_flags"}, true},
		{"vmscan", "mm_vmscan_direct_reclaim_end", "direct_reclaim_end", 1, map[int]string{fReclaimNr: "nr_reclaimed"}, true},
		{"vmscan", "mm_vmscan_memcg_reclaim_begin", "memcg_reclaim_begin", 2,
			map[int]string{fMemcgOrder: "order", fMemcgGfp: "gfp_flags"}, false},
		{"vmscan", "mm_vmscan_memcg_reclaim_end", "memcg_reclaim_end", 1, map[int]string{fMemcgNr: "nr_reclaimed"}, false},
		{"oom", "reclaim_retry_zone", "reclaim_retry", 7,
			map[int]string{fRRZOrder: "order", fRRZWmark: "wmark_check"}, false},
	}
)

// The maps both hooks count into, created once.
var memstallShared = []string{"stall_hists", "zone_compacts", "kcompactd_wakes", "stall_overflow",
	"stalls_by_task", "open_compactions"}

func (s *Set) memstallMaps(spec *ebpf.CollectionSpec) (map[string]*ebpf.Map, error) {
	if s.stallMaps != nil {
		return s.stallMaps, nil
	}
	out := map[string]*ebpf.Map{}
	for _, name := range memstallShared {
		m, err := ebpf.NewMap(spec.Maps[name])
		if err != nil {
			for _, m := range out {
				m.Close()
			}
			return nil, fmt.Errorf("create map %s: %w", name, err)
		}
		out[name] = m
	}
	s.stallMaps = out
	return out, nil
}

// tpPresent says whether the kernel has the tracepoint for mechanism m
// (raw_tp: its BTF typedef with the expected arity; classic: tracefs).
func (s *Set) tpPresent(tp memstallTP, m Mechanism) error {
	if m == Tracepoint {
		if !tracefs.Exists(tp.group, tp.name) {
			return fmt.Errorf("tracepoint %s/%s not found", tp.group, tp.name)
		}
		return nil
	}
	if s.features.kernelBTF == nil {
		return errors.New("no kernel BTF to check the tracepoints' arguments")
	}
	var td *btf.Typedef
	if err := s.features.kernelBTF.TypeByName("btf_trace_"+tp.name, &td); err != nil {
		return fmt.Errorf("tracepoint %s/%s not found", tp.group, tp.name)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	var fp *btf.FuncProto
	if ok {
		fp, ok = ptr.Target.(*btf.FuncProto)
	}
	if !ok || len(fp.Params) != tp.args+1 { // +1: the void *__data first
		n := -1
		if fp != nil {
			n = len(fp.Params) - 1
		}
		return fmt.Errorf("tracepoint %s has %d arguments, %d expected (6.18's)", tp.name, n, tp.args)
	}
	return nil
}

// tpLayout fills tp_off/tp_size for the classic twins of tps.
func tpLayout(tps []memstallTP) (map[string]any, error) {
	var off, size [nTPFields]uint32
	for _, tp := range tps {
		if len(tp.fields) == 0 {
			continue
		}
		f, err := tracefs.ReadFormat(tp.group, tp.name)
		if err != nil {
			return nil, err
		}
		for idx, name := range tp.fields {
			fl, ok := f.Fields[name]
			if !ok {
				return nil, fmt.Errorf("%s format lacks %s", tp.name, name)
			}
			if fl.Size != 1 && fl.Size != 4 && fl.Size != 8 {
				return nil, fmt.Errorf("%s field %s has size %d", tp.name, name, fl.Size)
			}
			off[idx], size[idx] = fl.Offset, fl.Size
		}
	}
	return map[string]any{"tp_off": off, "tp_size": size}, nil
}

// attachMemstallTPs loads and attaches the twins of tps for m (RawTp or
// Tracepoint), skipping the optional tracepoints the kernel lacks, and
// returns what it attached, for the hook's target, and what it skipped.
func (s *Set) attachMemstallTPs(tps []memstallTP, m Mechanism, consts map[string]any) (attached, missing []string, err error) {
	spec, err := loadMemstall()
	if err != nil {
		return nil, nil, err
	}
	maps, err := s.memstallMaps(spec)
	if err != nil {
		return nil, nil, err
	}
	var use []memstallTP
	for _, tp := range tps {
		if err := s.tpPresent(tp, m); err != nil {
			if tp.required {
				return nil, nil, err
			}
			missing = append(missing, tp.name)
			continue
		}
		use = append(use, tp)
	}
	suffix := "_raw"
	if m == Tracepoint {
		suffix = "_tp"
		l, err := tpLayout(use)
		if err != nil {
			return nil, nil, err
		}
		for k, v := range l {
			consts[k] = v
		}
	}
	var progs []string
	for _, tp := range use {
		progs = append(progs, tp.prog+suffix)
	}
	coll, err := s.loadPrograms(spec, progs, consts, maps)
	if err != nil {
		return nil, nil, describeLoadError("load "+strings.Join(progs, ", "), err)
	}
	for _, tp := range use {
		if err := s.attachProgram(coll.Programs[tp.prog+suffix], string(m), tp.group+"/"+tp.name); err != nil {
			return nil, nil, err
		}
		attached = append(attached, tp.name)
	}
	return attached, missing, nil
}

// compactExitTarget is the function whose return closes a direct
// compaction: try_to_compact_pages returns its compact_result on every
// kernel since 4.8 (enum compact_result; unsigned long before).
const compactExitTarget = "try_to_compact_pages"

func (s *Set) attachCompaction(m Mechanism) (string, error) {
	tpMech := m
	var exitKind, exitProg string
	switch m {
	case Fentry:
		if !s.features.HasBTFFunc(compactExitTarget) {
			return "", errors.New("symbol not found: " + compactExitTarget)
		}
		tpMech, exitKind, exitProg = RawTp, "fexit", "compact_fexit"
	case Kprobe:
		if !s.features.HasSymbol(compactExitTarget) {
			return "", errors.New("symbol not found: " + compactExitTarget)
		}
		tpMech, exitKind, exitProg = RawTp, "kretprobe", "compact_kretprobe"
		if s.features.BTF != nil {
			tpMech = Tracepoint
		}
	case RawTp, Tracepoint:
	default:
		return "", fmt.Errorf("mechanism %s not supported", m)
	}
	if exitProg != "" {
		// The exit probe goes first: begins without their end would leave
		// every direct compaction open.
		spec, err := loadMemstall()
		if err != nil {
			return "", err
		}
		maps, err := s.memstallMaps(spec)
		if err != nil {
			return "", err
		}
		spec.Programs[exitProg].AttachTo = compactExitTarget
		coll, err := s.loadPrograms(spec, []string{exitProg}, map[string]any{"exit_probe": true}, maps)
		if err != nil {
			return "", describeLoadError(fmt.Sprintf("load %s on %s", exitKind, compactExitTarget), err)
		}
		if err := s.attachProgram(coll.Programs[exitProg], exitKind, compactExitTarget); err != nil {
			return "", err
		}
	}
	tps := compactionTPs
	if exitProg == "" {
		tps = append(append([]memstallTP(nil), tps...), compactCloser)
	}
	attached, missing, err := s.attachMemstallTPs(tps, tpMech, map[string]any{"exit_probe": exitProg != ""})
	if err != nil {
		return "", err
	}
	s.compactExitProbe = exitProg != ""
	end := "closed at the task's next mm_page_alloc, direct reclaim or retry decision"
	if exitProg != "" {
		end = "closed at " + exitKind + " " + compactExitTarget
	}
	return memstallTarget(attached, missing, end), nil
}

func (s *Set) attachReclaim(m Mechanism) (string, error) {
	if m != RawTp && m != Tracepoint {
		return "", fmt.Errorf("mechanism %s not supported", m)
	}
	// exit_probe must agree with the compaction hook's: a reclaim that
	// begins closes an open compaction only where nothing else does.
	attached, missing, err := s.attachMemstallTPs(reclaimTPs, m, map[string]any{"exit_probe": s.compactExitProbe})
	if err != nil {
		return "", err
	}
	return memstallTarget(attached, missing, ""), nil
}

func memstallTarget(attached, missing []string, note string) string {
	t := strings.Join(attached, ", ")
	if note != "" {
		t += " (" + note + ")"
	}
	if len(missing) > 0 {
		t += "; not on this kernel: " + strings.Join(missing, ", ")
	}
	return t
}

// StallKey is one bucket of the stall counters.
type StallKey struct {
	CgroupID uint64
	Kind     string // event.Stall*
	Order    uint8
}

// StallCounts are one key's cumulative counters. Results are by the
// kernel's compact_result value, the last entry "not known".
type StallCounts struct {
	Count, TotalNs, Reclaimed, Retries, GiveUps uint64
	Results                                     [16]uint64
	Buckets                                     [event.StallBuckets]uint64
}

// ZoneKey names a zone by its first pfn, and whether the runs were direct.
type ZoneKey struct {
	ZoneStart uint64
	Direct    bool
}

// MemStallState is the cumulative stall counters.
type MemStallState struct {
	Stalls   map[StallKey]StallCounts
	Zones    map[ZoneKey]StallCounts // Reclaimed, Retries, GiveUps unused
	Wakes    [event.Orders]uint64
	Overflow uint64
}

// stallKinds names enum stall_kind (bpf/fragscope.h).
var stallKinds = [...]string{1: event.StallDirectCompaction, 2: event.StallDirectReclaim, 3: event.StallMemcgReclaim}

func stallKind(k uint8) string {
	if int(k) < len(stallKinds) && stallKinds[k] != "" {
		return stallKinds[k]
	}
	return fmt.Sprintf("kind %d", k)
}

// MemStalls reads the cumulative stall counters; ok is false when neither
// the compaction nor the reclaim hook attached.
func (s *Set) MemStalls() (st MemStallState, ok bool, err error) {
	if s.stallMaps == nil || !(s.Attached(HookCompaction) || s.Attached(HookReclaim)) {
		return st, false, nil
	}
	st.Stalls = map[StallKey]StallCounts{}
	var (
		k memstallStallKey
		v memstallStallHist
	)
	it := s.stallMaps["stall_hists"].Iterate()
	for it.Next(&k, &v) {
		st.Stalls[StallKey{k.CgroupId, stallKind(k.Kind), k.Order}] = StallCounts{
			Count: v.Count, TotalNs: v.TotalNs, Reclaimed: v.Reclaimed, Retries: v.Retries, GiveUps: v.Giveups,
			Results: v.Results, Buckets: v.Buckets,
		}
	}
	if err := it.Err(); err != nil {
		return st, false, fmt.Errorf("read stall_hists: %w", err)
	}
	st.Zones = map[ZoneKey]StallCounts{}
	var (
		zk memstallZoneCompactKey
		zv memstallZoneCompact
	)
	zit := s.stallMaps["zone_compacts"].Iterate()
	for zit.Next(&zk, &zv) {
		st.Zones[ZoneKey{zk.ZoneStart, zk.Direct != 0}] = StallCounts{Count: zv.Count, TotalNs: zv.TotalNs, Results: zv.Results, Buckets: zv.Buckets}
	}
	if err := zit.Err(); err != nil {
		return st, false, fmt.Errorf("read zone_compacts: %w", err)
	}
	for o := range st.Wakes {
		if err := s.stallMaps["kcompactd_wakes"].Lookup(uint32(o), &st.Wakes[o]); err != nil {
			return st, false, fmt.Errorf("read kcompactd_wakes: %w", err)
		}
	}
	if err := s.stallMaps["stall_overflow"].Lookup(uint32(0), &st.Overflow); err != nil {
		return st, false, fmt.Errorf("read stall_overflow: %w", err)
	}
	return st, true, nil
}

// RecentStall is one entry of a task's ring of recent stalls, with the
// kernel's monotonic end time.
type RecentStall struct {
	EndNs, DurNs, Reclaimed, GFP uint64
	Kind                         string
	Order                        uint8
	Result                       int // index into StallCounts.Results
}

// RecentStalls returns the stalls the kernel remembers for tid, oldest
// first; none when the task has had none (or the hooks are not attached).
func (s *Set) RecentStalls(tid uint32) ([]RecentStall, error) {
	if s.stallMaps == nil {
		return nil, nil
	}
	var t memstallTaskStalls
	if err := s.stallMaps["stalls_by_task"].Lookup(tid, &t); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read stalls_by_task: %w", err)
	}
	n := uint64(len(t.S))
	var out []RecentStall
	for i := t.Next - min(t.Next, n); i < t.Next; i++ {
		r := t.S[i%n]
		out = append(out, RecentStall{EndNs: r.EndNs, DurNs: r.DurNs, Reclaimed: r.Reclaimed, GFP: r.Gfp,
			Kind: stallKind(r.Kind), Order: r.Order, Result: int(r.Result)})
	}
	return out, nil
}

// CompactResultNames names the kernel's enum compact_result by value, from
// its BTF ("COMPACT_SUCCESS" -> "success"); the last index is "unknown".
// Without BTF the names are 6.18's, which every kernel since 4.8 shares up
// to COMPACT_SUCCESS (include/linux/compaction.h).
func (s *Set) CompactResultNames() []string {
	names := []string{"not_suitable_zone", "skipped", "deferred", "no_suitable_page", "continue",
		"complete", "partial_skipped", "contended", "success"}
	if s.features.kernelBTF != nil {
		var e *btf.Enum
		if s.features.kernelBTF.TypeByName("compact_result", &e) == nil {
			names = names[:0]
			for _, v := range e.Values {
				for uint64(len(names)) < v.Value && len(names) < 15 {
					names = append(names, fmt.Sprintf("result %d", len(names)))
				}
				if v.Value < 15 && uint64(len(names)) == v.Value {
					names = append(names, strings.ToLower(strings.TrimPrefix(v.Name, "COMPACT_")))
				}
			}
		}
	}
	out := make([]string, 16)
	for i := range out {
		out[i] = fmt.Sprintf("result %d", i)
		if i < len(names) {
			out[i] = names[i]
		}
	}
	out[15] = "unknown"
	return out
}

// forgetStalls deletes a removed cgroup's stall counters.
func (s *Set) forgetStalls(id uint64) error {
	if s.stallMaps == nil {
		return nil
	}
	m := s.stallMaps["stall_hists"]
	var (
		k    memstallStallKey
		v    memstallStallHist
		gone []memstallStallKey
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if k.CgroupId == id {
			gone = append(gone, k)
		}
	}
	var errs []error
	for _, k := range gone {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
