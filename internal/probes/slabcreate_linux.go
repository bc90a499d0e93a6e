package probes

import (
	"errors"
	"fmt"
)

// slabTarget is one member of the kmem_cache_create family. Only one is
// hooked per kernel: they call each other, and two would double-report.
type slabTarget struct {
	symbol  string
	nameArg uint32 // index of the name argument
}

var slabTargets = []slabTarget{
	{"__kmem_cache_create_args", 0},   // 6.12+: kmem_cache_create is a _Generic macro
	{"kmem_cache_create_usercopy", 0}, // 4.16-6.11: kmem_cache_create calls it
	{"kmem_cache_create_memcg", 1},    // 3.10 (CentOS 7): (memcg, name, size, align, flags, ...)
	{"kmem_cache_create", 0},          // other kernels before 4.16
}

func (s *Set) resolveSlabTarget(m Mechanism) (slabTarget, error) {
	has := s.features.HasSymbol
	if m == Fentry {
		has = s.features.HasBTFFunc
	}
	if sym := s.opts.Symbols[HookSlabCreate]; sym != "" {
		for _, t := range slabTargets {
			if t.symbol == sym {
				return t, nil
			}
		}
		if !has(sym) {
			return slabTarget{}, fmt.Errorf("symbol not found: %s", sym)
		}
		return slabTarget{symbol: sym}, nil
	}
	for _, t := range slabTargets {
		if has(t.symbol) {
			return t, nil
		}
	}
	return slabTarget{}, errors.New("symbol not found: no kmem_cache_create family function on this kernel")
}

func (s *Set) attachSlabCreate(m Mechanism) (string, error) {
	t, err := s.resolveSlabTarget(m)
	if err != nil {
		return "", err
	}
	if m == Kprobe && !s.features.HasSymbol(t.symbol) {
		return "", fmt.Errorf("symbol not found: %s", t.symbol)
	}
	spec, err := loadSlabcreate()
	if err != nil {
		return "", err
	}
	consts := map[string]any{"name_arg": t.nameArg}
	var entry, exit, entryKind, exitKind string
	switch m {
	case Fentry:
		entry, exit, entryKind, exitKind = "slab_create_fentry", "slab_create_fexit", "fentry", "fexit"
		spec.Programs[entry].AttachTo = t.symbol
		spec.Programs[exit].AttachTo = t.symbol
	case Kprobe:
		entry, exit, entryKind, exitKind = "slab_create_kprobe", "slab_create_kretprobe", "kprobe", "kretprobe"
	default:
		return "", fmt.Errorf("mechanism %s not supported", m)
	}
	coll, err := s.loadPrograms(spec, []string{entry, exit}, consts, nil)
	if err != nil {
		return "", describeLoadError(fmt.Sprintf("load %s on %s", m, t.symbol), err)
	}
	// Exit first: an entry without its exit would leave stale in-flight state.
	if err := s.attachProgram(coll.Programs[exit], exitKind, t.symbol); err != nil {
		return "", err
	}
	if err := s.attachProgram(coll.Programs[entry], entryKind, t.symbol); err != nil {
		return "", err
	}
	return t.symbol, nil
}
