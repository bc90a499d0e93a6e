package probes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/fragscope/fragscope/internal/tracefs"
)

// allocFexitTargets is the function the mm_page_alloc tracepoint sits at the
// end of, newest name first: 6.15 split out __alloc_frozen_pages_noprof,
// 6.10 added the _noprof suffix, 5.13 renamed __alloc_pages_nodemask to
// __alloc_pages. should_fail_alloc_page runs inside all of them.
var allocFexitTargets = []string{"__alloc_frozen_pages_noprof", "__alloc_pages_noprof", "__alloc_pages", "__alloc_pages_nodemask"}

func (s *Set) attachPageAlloc(m Mechanism) (string, error) {
	spec, err := loadPagealloc()
	if err != nil {
		return "", err
	}
	consts := map[string]any{
		"fexit_attached": s.tpFailed != nil && s.Attached(HookAllocFexit),
		"attribute":      !s.opts.NoAttribution,
		"high_order_min": s.opts.HighOrderMin,
		"mt_reclaimable": s.opts.MigrateReclaimable,
	}
	if s.opts.AttributeAll {
		consts["high_order_min"] = uint32(0) // every order is "high": every allocation attributed
	}
	extra := map[string]*ebpf.Map{}
	if s.tpFailed != nil {
		// alloc_fexit was requested: both objects count into the same maps.
		extra["tp_failed"] = s.tpFailed
		extra["cgroup_allocs"] = s.fexitCgroupAllocs
		extra["cgroup_overflow"] = s.fexitCgroupOverflow
	}
	if n := s.opts.CgroupMapEntries; n > 0 {
		spec.Maps["cgroup_allocs"].MaxEntries = n
	}
	const target = "kmem/mm_page_alloc"
	coll, err := s.attachTracepointTwin(spec, "page_alloc", target, m, consts, extra, pageAllocLayout)
	if err != nil {
		return "", err
	}
	s.allocCounts = coll.Maps["page_alloc_counts"]
	s.cgroupAllocs = coll.Maps["cgroup_allocs"]
	s.cgroupOverflow = coll.Maps["cgroup_overflow"]
	return target, nil
}

// pageAllocLayout reads the classic tracepoint's record layout. Before 4.3
// the record held a page pointer (NULL on failure), after it a pfn (-1).
func pageAllocLayout() (map[string]any, error) {
	f, err := tracefs.ReadFormat("kmem", "mm_page_alloc")
	if err != nil {
		return nil, err
	}
	return pageAllocConsts(f)
}

func pageAllocConsts(f *tracefs.Format) (map[string]any, error) {
	c := map[string]any{}
	if p, ok := f.Fields["pfn"]; ok {
		c["tp_off_page"], c["tp_page_is_pfn"] = p.Offset, uint32(1)
	} else if p, ok := f.Fields["page"]; ok {
		c["tp_off_page"], c["tp_page_is_pfn"] = p.Offset, uint32(0)
	} else {
		return nil, errors.New("mm_page_alloc format has neither pfn nor page")
	}
	order, ok1 := f.Fields["order"]
	gfp, ok2 := f.Fields["gfp_flags"]
	mt, ok3 := f.Fields["migratetype"]
	if !ok1 || !ok2 || !ok3 {
		return nil, errors.New("mm_page_alloc format lacks order, gfp_flags or migratetype")
	}
	if gfp.Size != 4 && gfp.Size != 8 {
		return nil, fmt.Errorf("mm_page_alloc gfp_flags has size %d", gfp.Size)
	}
	c["tp_off_order"] = order.Offset
	c["tp_off_gfp"] = gfp.Offset
	c["tp_gfp_size"] = gfp.Size
	c["tp_off_mt"] = mt.Offset
	return c, nil
}

// attachAllocFexit attaches the function-exit twin that also sees failures
// injected by should_fail_alloc_page, which return before the tracepoint
// fires: fexit with typed arguments (5.5+, no 5.17 helpers), or a
// kprobe/kretprobe pair where the kernel has no trampolines.
func (s *Set) attachAllocFexit(m Mechanism) (string, error) {
	has := s.features.HasBTFFunc
	if m == Kprobe {
		has = s.features.HasSymbol
	}
	target := ""
	for _, fn := range allocFexitTargets {
		if has(fn) {
			target = fn
			break
		}
	}
	if sym := s.opts.Symbols[HookAllocFexit]; sym != "" {
		target = sym
	}
	if target == "" {
		return "", errors.New("symbol not found: none of " + fmt.Sprint(allocFexitTargets))
	}
	var progs []string
	switch m {
	case Fentry:
		// (gfp, order, preferred_nid, nodemask) everywhere, plus
		// alloc_flags in 7.x's __alloc_frozen_pages_noprof: one fexit per
		// arity, reading gfp and order first and the page after the last.
		names, err := s.features.FuncParamNames(target)
		if err != nil {
			return "", err
		}
		if len(names) < 4 || len(names) > 5 || !strings.HasPrefix(names[0], "gfp") || names[1] != "order" {
			return "", fmt.Errorf("%s is (%s) in this kernel's BTF; the fexit programs read (gfp, order, ...) with 4 or 5 parameters", target, strings.Join(names, ", "))
		}
		progs = []string{fmt.Sprintf("page_alloc_fexit%d", len(names))}
	case Kprobe:
		progs = []string{"page_alloc_kprobe", "page_alloc_kretprobe"}
	default:
		return "", fmt.Errorf("mechanism %s not supported", m)
	}
	spec, err := loadPagealloc()
	if err != nil {
		return "", err
	}
	if n := s.opts.CgroupMapEntries; n > 0 {
		spec.Maps["cgroup_allocs"].MaxEntries = n
	}
	// Maps the twin shares with page_alloc, which attaches after it:
	// the failures it marks, and the per-cgroup counters it adds to.
	if s.tpFailed == nil {
		for _, mp := range []struct {
			name string
			dst  **ebpf.Map
		}{{"tp_failed", &s.tpFailed}, {"cgroup_allocs", &s.fexitCgroupAllocs}, {"cgroup_overflow", &s.fexitCgroupOverflow}} {
			if *mp.dst, err = ebpf.NewMap(spec.Maps[mp.name]); err != nil {
				return "", fmt.Errorf("create map %s: %w", mp.name, err)
			}
		}
	}
	if m == Fentry {
		spec.Programs[progs[0]].AttachTo = target
	}
	consts := map[string]any{"attribute": !s.opts.NoAttribution}
	coll, err := s.loadPrograms(spec, progs, consts, map[string]*ebpf.Map{
		"tp_failed":       s.tpFailed,
		"cgroup_allocs":   s.fexitCgroupAllocs,
		"cgroup_overflow": s.fexitCgroupOverflow,
	})
	if err != nil {
		return "", describeLoadError(fmt.Sprintf("load %s on %s", m, target), err)
	}
	if m == Fentry {
		err = s.attachProgram(coll.Programs[progs[0]], "fexit", target)
	} else {
		// Return first: an entry without its return would leave stale arguments.
		if err = s.attachProgram(coll.Programs["page_alloc_kretprobe"], "kretprobe", target); err == nil {
			err = s.attachProgram(coll.Programs["page_alloc_kprobe"], "kprobe", target)
		}
	}
	if err != nil {
		return "", err
	}
	// Readable even if page_alloc itself does not attach.
	s.cgroupAllocs, s.cgroupOverflow = s.fexitCgroupAllocs, s.fexitCgroupOverflow
	return target, nil
}
