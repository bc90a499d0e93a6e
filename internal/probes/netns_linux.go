package probes

import "fmt"

func (s *Set) attachNetns(m Mechanism) (string, error) {
	target := "copy_net_ns"
	if sym := s.opts.Symbols[HookNetns]; sym != "" {
		target = sym
	}
	spec, err := loadNetns()
	if err != nil {
		return "", err
	}
	var entry, exit, entryKind, exitKind string
	switch m {
	case Fentry:
		if !s.features.HasBTFFunc(target) {
			return "", fmt.Errorf("symbol not found: %s (kernel without CONFIG_NET_NS?)", target)
		}
		// netns_fexit reads the return value after copy_net_ns's three
		// parameters (flags, user_ns, old_net), typed.
		if n, err := s.features.FuncParams(target); err != nil {
			return "", err
		} else if n != 3 {
			return "", fmt.Errorf("%s has %d parameters in this kernel's BTF, the program reads 3", target, n)
		}
		entry, exit, entryKind, exitKind = "netns_fentry", "netns_fexit", "fentry", "fexit"
		spec.Programs[entry].AttachTo = target
		spec.Programs[exit].AttachTo = target
	case Kprobe:
		if !s.features.HasSymbol(target) {
			return "", fmt.Errorf("symbol not found: %s (kernel without CONFIG_NET_NS?)", target)
		}
		entry, exit, entryKind, exitKind = "netns_kprobe", "netns_kretprobe", "kprobe", "kretprobe"
	default:
		return "", fmt.Errorf("mechanism %s not supported", m)
	}
	if err := s.loadAttachPair(spec, entry, exit, entryKind, exitKind, target, nil); err != nil {
		return "", err
	}
	return target, nil
}
