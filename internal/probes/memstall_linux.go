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
// raw_tp twins (each with the arguments it reads positionally), its classic
// twin <prog>_tp and the classic record's fields that one reads (tp_field
// index -> field name).
type memstallTP struct {
	group, name string
	prog        string // the classic twin is <prog>_tp
	raw         []rawTwin
	fields      map[int]string
	required    bool
}

// rawTwin is one raw_tp program and the TP_PROTO arguments it relies on:
// position (after the void *__data) and type as the kernel's BTF spells it
// ("long unsigned int", "gfp_t", "struct compact_control *"). A kernel
// whose prototype has those at those positions, whatever it adds after,
// gets the program; one whose arguments moved gets another twin, or the
// classic tracepoint (fields by name).
type rawTwin struct {
	prog string
	args []rawArg
}

type rawArg struct {
	pos int
	typ string
}

func raw(prog string, args ...rawArg) rawTwin { return rawTwin{prog, args} }

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

// The prototypes are include/trace/events/{compaction,vmscan,oom}.h's, as
// the BTF of the Debian 5.10, 6.1, 6.12, 6.18 and 7.3 kernels of
// vmtest/kernels.lock has them.
var (
	compactionTPs = []memstallTP{
		{"compaction", "mm_compaction_try_to_compact_pages", "compact_begin",
			[]rawTwin{raw("compact_begin_raw", rawArg{0, "int"}, rawArg{1, "gfp_t"})},
			map[int]string{fTTCPOrder: "order", fTTCPGfp: "gfp_mask"}, true},
		// Reads no argument: any prototype serves.
		{"compaction", "mm_compaction_begin", "zone_begin", []rawTwin{raw("zone_begin_raw")},
			map[int]string{fZBeginStart: "zone_start"}, false},
		// (cc, zone_start, zone_end, sync, status) since 5.16..5.19 (a
		// compact_control replaced migrate_pfn and free_pfn; DepSurf's
		// prototypes change between 5.15 and 5.19); 5.10 has (zone_start,
		// migrate_pfn, free_pfn, zone_end, sync, status). cc is checked,
		// not read: it tells the two apart (5.10's second argument is an
		// unsigned long too).
		{"compaction", "mm_compaction_end", "zone_end", []rawTwin{
			raw("zone_end_raw", rawArg{0, "struct compact_control *"}, rawArg{1, "long unsigned int"}, rawArg{4, "int"}),
			raw("zone_end_raw515", rawArg{0, "long unsigned int"}, rawArg{5, "int"})},
			map[int]string{fZEndStart: "zone_start", fZEndStatus: "status"}, false},
		{"compaction", "mm_compaction_kcompactd_wake", "kcompactd_wake",
			[]rawTwin{raw("kcompactd_wake_raw", rawArg{1, "int"})}, map[int]string{fWakeOrder: "order"}, false},
		{"oom", "compact_retry", "compact_retry",
			[]rawTwin{raw("compact_retry_raw", rawArg{0, "int"}, rawArg{5, "bool"})},
			map[int]string{fCretryOrder: "order", fCretryRet: "ret"}, false},
	}
	// compactCloser ends direct compactions where no exit probe does.
	compactCloser = memstallTP{"kmem", "mm_page_alloc", "compact_close", []rawTwin{raw("compact_close_raw")}, nil, true}
	// The begin pair was (int order, gfp_t gfp_flags) up to 6.18 and is
	// (gfp_t gfp_flags, int order, struct mem_cgroup *memcg) in 7.3 (the
	// Debian 6.18.15 and 7.3.4 kernels' BTF); the end pair gained the
	// memcg after nr_reclaimed, which the one twin still reads.
	reclaimTPs = []memstallTP{
		{"vmscan", "mm_vmscan_direct_reclaim_begin", "direct_reclaim_begin", []rawTwin{
			raw("direct_reclaim_begin_raw", rawArg{0, "int"}, rawArg{1, "gfp_t"}),
			raw("direct_reclaim_begin_raw7", rawArg{0, "gfp_t"}, rawArg{1, "int"})},
			map[int]string{fReclaimOrder: "order", fReclaimGfp: "gfp_flags"}, true},
		{"vmscan", "mm_vmscan_direct_reclaim_end", "direct_reclaim_end",
			[]rawTwin{raw("direct_reclaim_end_raw", rawArg{0, "long unsigned int"})}, map[int]string{fReclaimNr: "nr_reclaimed"}, true},
		{"vmscan", "mm_vmscan_memcg_reclaim_begin", "memcg_reclaim_begin", []rawTwin{
			raw("memcg_reclaim_begin_raw", rawArg{0, "int"}, rawArg{1, "gfp_t"}),
			raw("memcg_reclaim_begin_raw7", rawArg{0, "gfp_t"}, rawArg{1, "int"})},
			map[int]string{fMemcgOrder: "order", fMemcgGfp: "gfp_flags"}, false},
		{"vmscan", "mm_vmscan_memcg_reclaim_end", "memcg_reclaim_end",
			[]rawTwin{raw("memcg_reclaim_end_raw", rawArg{0, "long unsigned int"})}, map[int]string{fMemcgNr: "nr_reclaimed"}, false},
		{"oom", "reclaim_retry_zone", "reclaim_retry",
			[]rawTwin{raw("reclaim_retry_raw", rawArg{1, "int"}, rawArg{6, "bool"})},
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
		if name == "stalls_by_task" && s.stallsByTask != nil {
			out[name] = s.stallsByTask // made by createShared, page_alloc has it too
			continue
		}
		m, err := ebpf.NewMap(spec.Maps[name])
		if err != nil {
			for _, m := range out {
				if m != s.stallsByTask {
					m.Close()
				}
			}
			return nil, fmt.Errorf("create map %s: %w", name, err)
		}
		out[name] = m
	}
	s.stallMaps = out
	s.stallsByTask = out["stalls_by_task"]
	return out, nil
}

// errTPNotFound: the kernel has no such tracepoint.
var errTPNotFound = errors.New("not found")

// tpProgram returns the program that serves tracepoint tp with mechanism m
// on this kernel (raw_tp: the first twin whose arguments its BTF typedef
// btf_trace_<name> has; classic: <prog>_tp, if tracefs has it), or why none.
func (s *Set) tpProgram(tp memstallTP, m Mechanism) (string, error) {
	if m == Tracepoint {
		if !tracefs.Exists(tp.group, tp.name) {
			return "", fmt.Errorf("tracepoint %s/%s %w", tp.group, tp.name, errTPNotFound)
		}
		return tp.prog + "_tp", nil
	}
	if s.features.kernelBTF == nil {
		return "", errors.New("no kernel BTF to check the tracepoints' arguments")
	}
	var td *btf.Typedef
	if err := s.features.kernelBTF.TypeByName("btf_trace_"+tp.name, &td); err != nil {
		return "", fmt.Errorf("tracepoint %s/%s %w", tp.group, tp.name, errTPNotFound)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	var fp *btf.FuncProto
	if ok {
		fp, ok = ptr.Target.(*btf.FuncProto)
	}
	if !ok {
		return "", fmt.Errorf("tracepoint %s: btf_trace_%s is not a function pointer", tp.name, tp.name)
	}
	return tp.rawProgram(fp)
}

// rawProgram picks the raw_tp twin for the prototype fp of btf_trace_<name>.
func (tp memstallTP) rawProgram(fp *btf.FuncProto) (string, error) {
	if len(fp.Params) == 0 {
		return "", fmt.Errorf("tracepoint %s: btf_trace_%s has no __data parameter", tp.name, tp.name)
	}
	args := make([]string, len(fp.Params)-1) // the void *__data first
	for i, p := range fp.Params[1:] {
		args[i] = btfTypeName(p.Type)
	}
	var want []string
	for _, twin := range tp.raw {
		if twin.fits(args) {
			return twin.prog, nil
		}
		want = append(want, twin.String())
	}
	return "", fmt.Errorf("tracepoint %s is (%s) in this kernel's BTF; the raw_tp programs read %s",
		tp.name, strings.Join(args, ", "), strings.Join(want, " or "))
}

func (t rawTwin) fits(args []string) bool {
	for _, a := range t.args {
		if a.pos >= len(args) || args[a.pos] != a.typ {
			return false
		}
	}
	return true
}

// String says what the twin reads: "(int @0, gfp_t @1)".
func (t rawTwin) String() string {
	var parts []string
	for _, a := range t.args {
		parts = append(parts, fmt.Sprintf("%s @%d", a.typ, a.pos))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// btfTypeName spells a BTF type as C declares it, qualifiers dropped:
// "int", "gfp_t", "long unsigned int", "struct page *", "enum zone_type".
func btfTypeName(t btf.Type) string {
	t = btf.QualifiedType(t)
	switch v := t.(type) {
	case *btf.Pointer:
		return btfTypeName(v.Target) + " *"
	case *btf.Struct:
		return "struct " + v.Name
	case *btf.Union:
		return "union " + v.Name
	case *btf.Enum:
		return "enum " + v.Name
	case *btf.Void, nil:
		return "void"
	default:
		return t.TypeName()
	}
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
	var (
		use   []memstallTP
		progs []string
	)
	for _, tp := range tps {
		prog, err := s.tpProgram(tp, m)
		if err != nil {
			// Only an optional tracepoint the kernel lacks is skipped: one
			// whose arguments no twin reads refuses the mechanism, and auto
			// mode goes on to the classic twin, which reads fields by name.
			if tp.required || !errors.Is(err, errTPNotFound) {
				return nil, nil, err
			}
			missing = append(missing, tp.name)
			continue
		}
		use = append(use, tp)
		progs = append(progs, prog)
	}
	if m == Tracepoint {
		l, err := tpLayout(use)
		if err != nil {
			return nil, nil, err
		}
		for k, v := range l {
			consts[k] = v
		}
	}
	coll, err := s.loadPrograms(spec, progs, consts, maps)
	if err != nil {
		return nil, nil, describeLoadError("load "+strings.Join(progs, ", "), err)
	}
	for i, tp := range use {
		if err := s.attachProgram(coll.Programs[progs[i]], string(m), tp.group+"/"+tp.name); err != nil {
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

// compactExitParams is try_to_compact_pages' parameter count on every
// kernel with fexit (5.5+): the one compact_fexit<N> program there is.
const compactExitParams = 6

func (s *Set) attachCompaction(m Mechanism) (string, error) {
	tpMech := m
	var exitKind, exitProg string
	switch m {
	case Fentry:
		// The typed fexit reads the result after the last parameter, so
		// the parameter count picks the program.
		n, err := s.features.FuncParams(compactExitTarget)
		if err != nil {
			return "", err
		}
		if n != compactExitParams {
			return "", fmt.Errorf("%s has %d parameters in this kernel's BTF; the fexit program reads its result after %d (Linux 5.1+)",
				compactExitTarget, n, compactExitParams)
		}
		tpMech, exitKind, exitProg = RawTp, "fexit", fmt.Sprintf("compact_fexit%d", n)
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
	return ringStalls(&t), nil
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
