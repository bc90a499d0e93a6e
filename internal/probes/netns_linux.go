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
	coll, err := s.loadPrograms(spec, []string{entry, exit}, nil, nil)
	if err != nil {
		return "", describeLoadError(fmt.Sprintf("load %s on %s", m, target), err)
	}
	if err := s.attachProgram(coll.Programs[exit], exitKind, target); err != nil {
		return "", err
	}
	if err := s.attachProgram(coll.Programs[entry], entryKind, target); err != nil {
		return "", err
	}
	return target, nil
}
