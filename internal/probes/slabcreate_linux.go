package probes

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
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
		// One fexit per arity: the return value follows the last parameter.
		n, err := s.features.FuncParams(t.symbol)
		if err != nil {
			return "", err
		}
		if t.nameArg != 0 || (n != 4 && n != 5 && n != 7) {
			return "", fmt.Errorf("%s has %d parameters in this kernel's BTF; the fentry programs read (name, size, align, flags) first and return values after 4, 5 or 7", t.symbol, n)
		}
		exit = fmt.Sprintf("slab_create_fexit%d", n)
		entry, entryKind, exitKind = "slab_create_fentry", "fentry", "fexit"
		spec.Programs[entry].AttachTo = t.symbol
		spec.Programs[exit].AttachTo = t.symbol
	case Kprobe:
		entry, exit, entryKind, exitKind = "slab_create_kprobe", "slab_create_kretprobe", "kprobe", "kretprobe"
	default:
		return "", fmt.Errorf("mechanism %s not supported", m)
	}
	err = s.loadAttachPair(spec, entry, exit, entryKind, exitKind, t.symbol, consts)
	if n, _ := s.features.FuncParams(t.symbol); err != nil && m == Fentry && n > 6 && isNotSupported(err) {
		// x86 BPF trampolines take at most 6 arguments before Linux 6.6
		// ("bpf, x86: allow function arguments up to 12 for TRACING").
		return "", &loadError{msg: fmt.Sprintf("not supported: %s has %d arguments, BPF trampolines take more than 6 only from Linux 6.6", t.symbol, n), err: err}
	}
	if err != nil {
		return "", err
	}
	return t.symbol, nil
}

// loadAttachPair loads an entry/exit pair of programs and attaches them to
// symbol, the exit first: an entry without its exit would leave stale
// in-flight state.
func (s *Set) loadAttachPair(spec *ebpf.CollectionSpec, entry, exit, entryKind, exitKind, symbol string, consts map[string]any) error {
	coll, err := s.loadPrograms(spec, []string{entry, exit}, consts, nil)
	if err != nil {
		return describeLoadError(fmt.Sprintf("load %s/%s on %s", entryKind, exitKind, symbol), err)
	}
	if err := s.attachProgram(coll.Programs[exit], exitKind, symbol); err != nil {
		return err
	}
	return s.attachProgram(coll.Programs[entry], entryKind, symbol)
}
