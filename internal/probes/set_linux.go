package probes

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/fragscope/fragscope/internal/event"
)

// Options choose what to attach and how.
type Options struct {
	Hooks          []Hook             // nil: DefaultHooks
	Modes          map[Hook]Mechanism // forced mechanisms; absent or Auto: best available
	RingBytes      uint32             // ringbuf size, a power of two (default 2 MiB)
	WakeupBytes    uint64             // pending bytes that wake the reader (default 64 KiB)
	PageblockOrder uint32             // for extfrag's "fragmenting" (default 9)
	Symbols        map[Hook]string    // override the kernel symbol a probe hook attaches to (tests)

	// CgroupV1Memory attributes events to the v1 memory cgroup (v1 and
	// hybrid hosts) instead of the cgroup v2 id.
	CgroupV1Memory bool
	// NoAttribution turns the per-cgroup allocation counters off.
	NoAttribution bool
	// HighOrderMin is the order from which allocations count as high-order
	// per cgroup (default 3, PAGE_ALLOC_COSTLY_ORDER).
	HighOrderMin uint32
	// MigrateReclaimable is the running kernel's MIGRATE_RECLAIMABLE value
	// (2 since 4.4, 1 before); 0 means 2.
	MigrateReclaimable uint32
	// AttributeAll counts every allocation per cgroup, movable order-0
	// included: the worst case, for benchmarks.
	AttributeAll bool
	// CgroupMapEntries bounds the per-cgroup counter map (default 4096).
	CgroupMapEntries uint32
	// StallThreshold: a namespace syscall that ran this long has its exit
	// streamed even when it succeeded (the end of a stall); 0 turns that
	// off. The in-flight entries are kept either way.
	StallThreshold time.Duration
}

// Set is every loaded object and link, plus the maps they share.
type Set struct {
	Status []event.HookStatus
	// Logs are the verifier's logs behind refused mechanisms, for -v and
	// --verbose only: a reason is one line (Reason).
	Logs []VerifierLog

	events, drops, stacks, inflight *ebpf.Map
	tpFailed                        *ebpf.Map // shared by page_alloc and alloc_fexit
	fexitCgroupAllocs               *ebpf.Map // likewise, when alloc_fexit is requested
	fexitCgroupOverflow             *ebpf.Map

	allocCounts                    *ebpf.Map
	cgroupAllocs, cgroupOverflow   *ebpf.Map
	cgroupBatch                    cgroupBatch
	extfragCounts, extfragOverflow *ebpf.Map
	nsCalls, memcgWaits            *ebpf.Map            // owned by their objects: in-flight calls (stall.go)
	stallMaps                      map[string]*ebpf.Map // compaction and reclaim (memstall_linux.go)
	stallsByTask                   *ebpf.Map            // also read by page_alloc's failure path
	compactExitProbe               bool

	opts     Options
	features *Features
	colls    []*ebpf.Collection
	links    []link.Link
}

// Open creates the shared maps and attaches every requested hook on its
// own. Only the shared maps failing is an error: a hook that cannot attach
// is reported in Status with the reason, and the others carry on.
func Open(opts Options) (*Set, error) {
	if opts.Hooks == nil {
		opts.Hooks = DefaultHooks
	}
	if opts.RingBytes == 0 {
		opts.RingBytes = 2 << 20
	}
	if opts.WakeupBytes == 0 {
		opts.WakeupBytes = 64 << 10
	}
	if opts.PageblockOrder == 0 {
		opts.PageblockOrder = 9
	}
	if opts.HighOrderMin == 0 {
		opts.HighOrderMin = 3
	}
	if opts.MigrateReclaimable == 0 {
		opts.MigrateReclaimable = 2
	}
	s := &Set{opts: opts, features: Probe()}
	if err := s.createShared(); err != nil {
		s.Close()
		return nil, err
	}
	// alloc_fexit goes first: page_alloc needs to know whether it attached,
	// so it can mark the failures it reported itself.
	// reclaim goes after compaction, whose exit probe it must know of.
	var ordered, last []Hook
	for _, h := range opts.Hooks {
		if h == HookAllocFexit {
			ordered = append([]Hook{h}, ordered...)
		} else if h == HookReclaim {
			last = append(last, h)
		} else {
			ordered = append(ordered, h)
		}
	}
	for _, h := range append(ordered, last...) {
		s.Status = append(s.Status, s.attachHook(h))
	}
	s.sortStatus()
	return s, nil
}

func (s *Set) sortStatus() {
	pos := map[string]int{}
	for i, h := range AllHooks {
		pos[string(h)] = i
	}
	st := s.Status
	for i := 1; i < len(st); i++ {
		for j := i; j > 0 && pos[st[j].Hook] < pos[st[j-1].Hook]; j-- {
			st[j], st[j-1] = st[j-1], st[j]
		}
	}
}

func (s *Set) createShared() error {
	spec, err := loadPagealloc()
	if err != nil {
		return fmt.Errorf("parse embedded BPF object: %w", err)
	}
	mk := func(name string, adjust func(*ebpf.MapSpec)) (*ebpf.Map, error) {
		ms := spec.Maps[name].Copy()
		if adjust != nil {
			adjust(ms)
		}
		m, err := ebpf.NewMap(ms)
		if err != nil {
			return nil, fmt.Errorf("create map %s: %w", name, err)
		}
		return m, nil
	}
	if s.events, err = mk("events", func(ms *ebpf.MapSpec) { ms.MaxEntries = s.opts.RingBytes }); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("BPF ringbuf not supported: Linux 5.8 or newer is needed: %w", err)
		}
		return err
	}
	if s.drops, err = mk("drops", nil); err != nil {
		return err
	}
	if s.stacks, err = mk("stacks", nil); err != nil {
		return err
	}
	if s.inflight, err = mk("inflight", nil); err != nil {
		return err
	}
	// The stall hooks' per-task state, made before page_alloc loads so its
	// failure path can stream the failing task's stalls. A failure here is
	// the stall hooks' to report (memstallMaps tries again).
	if slices.Contains(s.opts.Hooks, HookCompaction) || slices.Contains(s.opts.Hooks, HookReclaim) {
		s.stallsByTask, _ = mk("stalls_by_task", nil)
	}
	return nil
}

func (s *Set) shared() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		"events":   s.events,
		"drops":    s.drops,
		"stacks":   s.stacks,
		"inflight": s.inflight,
	}
}

// VerifierLog is the verifier's whole log for one refused mechanism.
type VerifierLog struct {
	Hook      Hook
	Mechanism Mechanism
	Log       string
}

// attachHook tries the hook's mechanisms best first (or only the forced one)
// and records why each one that was skipped or failed did not work.
func (s *Set) attachHook(h Hook) event.HookStatus {
	st := event.HookStatus{Hook: string(h)}
	cands := Mechanisms[h]
	if m, ok := s.opts.Modes[h]; ok && m != Auto {
		cands = []Mechanism{m}
	}
	var reasons []string
	for _, m := range cands {
		if err := s.features.supports(m); err != nil {
			reasons = append(reasons, Reason(m, err))
			continue
		}
		n, nc := len(s.links), len(s.colls)
		target, err := s.attach(h, m)
		if err != nil {
			// Undo a partial attach (e.g. entry attached, exit not), and
			// unload what a failed attempt loaded.
			for _, l := range s.links[n:] {
				l.Close()
			}
			s.links = s.links[:n]
			for _, c := range s.colls[nc:] {
				c.Close()
			}
			s.colls = s.colls[:nc]
			reasons = append(reasons, Reason(m, err))
			if l := VerboseLog(err); l != "" {
				s.Logs = append(s.Logs, VerifierLog{h, m, l})
			}
			continue
		}
		st.Attached, st.Mechanism, st.Target = true, string(m), target
		if len(reasons) > 0 {
			// Why the better mechanisms were not used: "fentry: needs
			// Linux 5.17+ (bpf_get_func_ret); kprobe: ok".
			st.Reason = strings.Join(append(reasons, Reason(m, nil)), "; ")
		}
		return st
	}
	st.Reason = strings.Join(reasons, "; ")
	return st
}

func (f *Features) supports(m Mechanism) error {
	switch m {
	case TpBTF:
		return f.BTF
	case Fentry:
		return f.Fentry
	case Kprobe:
		return f.Kprobes
	case Tracepoint:
		return f.TracefsErr
	}
	return nil
}

func (s *Set) attach(h Hook, m Mechanism) (string, error) {
	switch h {
	case HookPageAlloc:
		return s.attachPageAlloc(m)
	case HookAllocFexit:
		return s.attachAllocFexit(m)
	case HookExtfrag:
		return s.attachExtfrag(m)
	case HookSlabCreate:
		return s.attachSlabCreate(m)
	case HookNetns:
		return s.attachNetns(m)
	case HookNsSyscall:
		return s.attachNsSyscall()
	case HookMemcgOOMWait:
		return s.attachMemcgWait()
	case HookCompaction:
		return s.attachCompaction(m)
	case HookReclaim:
		return s.attachReclaim(m)
	}
	return "", fmt.Errorf("unknown hook %q", h)
}

// loadPrograms loads only the named programs of spec, with the shared maps
// (plus extra) in place of the object's own and the given constants set.
func (s *Set) loadPrograms(spec *ebpf.CollectionSpec, progs []string, consts map[string]any, extra map[string]*ebpf.Map) (*ebpf.Collection, error) {
	spec = spec.Copy()
	keep := map[string]bool{}
	for _, p := range progs {
		keep[p] = true
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	// The shared ringbuf was sized from Options: the object's own spec must
	// agree, or the replacement is refused as incompatible.
	if ms, ok := spec.Maps["events"]; ok {
		ms.MaxEntries = s.opts.RingBytes
	}
	common := map[string]any{"wakeup_bytes": s.opts.WakeupBytes, "cgroup_mode": uint32(0),
		"stalls_shared": s.stallsByTask != nil}
	if s.opts.CgroupV1Memory {
		common["cgroup_mode"] = uint32(1)
	}
	for name, val := range common {
		if v, ok := spec.Variables[name]; ok {
			if err := v.Set(val); err != nil {
				return nil, fmt.Errorf("set %s: %w", name, err)
			}
		}
	}
	for name, val := range consts {
		v, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("object has no constant %s", name)
		}
		if err := v.Set(val); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	repl := s.shared()
	if ms, ok := spec.Maps["stalls_by_task"]; ok {
		if s.stallsByTask != nil {
			repl["stalls_by_task"] = s.stallsByTask
		} else {
			ms.MaxEntries = 1 // never looked up (stalls_shared is false): no 3.5 MB LRU
		}
	}
	for k, v := range extra {
		repl[k] = v
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		MapReplacements: repl,
		Programs:        ebpf.ProgramOptions{KernelTypes: s.features.kernelBTF},
	})
	if err != nil {
		return nil, err
	}
	s.colls = append(s.colls, coll)
	return coll, nil
}

// attachTracepointTwin loads and attaches the twin of a kmem tracepoint
// program for mechanism m: <base>_btf, <base>_raw or <base>_tp. layout
// gives the classic tracepoint's record offsets, read only for that twin.
func (s *Set) attachTracepointTwin(spec *ebpf.CollectionSpec, base, target string, m Mechanism,
	consts map[string]any, extra map[string]*ebpf.Map, layout func() (map[string]any, error)) (*ebpf.Collection, error) {
	var prog string
	switch m {
	case TpBTF:
		prog = base + "_btf"
	case RawTp:
		prog = base + "_raw"
	case Tracepoint:
		prog = base + "_tp"
		l, err := layout()
		if err != nil {
			return nil, err
		}
		for k, v := range l {
			consts[k] = v
		}
	default:
		return nil, fmt.Errorf("mechanism %s not supported", m)
	}
	coll, err := s.loadPrograms(spec, []string{prog}, consts, extra)
	if err != nil {
		return nil, describeLoadError("load "+prog, err)
	}
	if err := s.attachProgram(coll.Programs[prog], string(m), target); err != nil {
		return nil, err
	}
	return coll, nil
}

// attachProgram attaches one loaded program by mechanism. target is the
// tracepoint "group/name" or the kernel symbol.
func (s *Set) attachProgram(prog *ebpf.Program, how string, target string) error {
	var (
		l   link.Link
		err error
	)
	switch how {
	case "tp_btf", "fentry", "fexit":
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	case "raw_tp":
		_, name, _ := strings.Cut(target, "/")
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
	case "tracepoint":
		group, name, _ := strings.Cut(target, "/")
		l, err = link.Tracepoint(group, name, prog, nil)
	case "kprobe":
		l, err = link.Kprobe(target, prog, nil)
	case "kretprobe":
		l, err = link.Kretprobe(target, prog, nil)
	default:
		return fmt.Errorf("unknown attach kind %q", how)
	}
	if err != nil {
		return describeLoadError(fmt.Sprintf("attach %s %s", how, target), err)
	}
	s.links = append(s.links, l)
	return nil
}

// Events is the ringbuf every hook streams into.
func (s *Set) Events() *ebpf.Map { return s.events }

// ZoneNames names the kernel's zones by enum zone_type index, for the
// free lists the page_alloc hook captures at failures (Features.ZoneNames).
func (s *Set) ZoneNames() []string { return s.features.ZoneNames() }

// FreeListCapture says why the attached page_alloc hook captures no free
// lists at failures, nil when it does or is not attached.
func (s *Set) FreeListCapture() error {
	if !s.Attached(HookPageAlloc) && !s.Attached(HookAllocFexit) {
		return nil
	}
	return s.features.FreeListCapture()
}

// Attached reports whether hook h attached.
func (s *Set) Attached(h Hook) bool {
	for _, st := range s.Status {
		if st.Hook == string(h) {
			return st.Attached
		}
	}
	return false
}

// Close detaches every link and frees every object.
func (s *Set) Close() error {
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	for _, c := range s.colls {
		c.Close()
	}
	for _, m := range []*ebpf.Map{s.events, s.drops, s.stacks, s.inflight, s.tpFailed, s.fexitCgroupAllocs, s.fexitCgroupOverflow} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	for _, m := range s.stallMaps {
		errs = append(errs, m.Close())
	}
	if s.stallsByTask != nil && s.stallMaps["stalls_by_task"] != s.stallsByTask {
		errs = append(errs, s.stallsByTask.Close())
	}
	s.links, s.colls, s.stallMaps, s.stallsByTask = nil, nil, nil, nil
	return errors.Join(errs...)
}
