package gfp

import (
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// EnumBits returns the ___GFP_*_BIT enum constants of a kernel's BTF
// (name -> bit number), or nil when the kernel has none: the enum appeared in
// 6.10 ("mm: enumerate all gfp flags", 772dd0342727c); before it the bits were
// #defines that leave no trace in BTF.
func EnumBits(spec *btf.Spec) map[string]uint64 {
	if spec == nil {
		return nil
	}
	// The enum is anonymous, so it cannot be looked up by name: walk the
	// types once and stop at the first enum holding ___GFP_ constants.
	for typ, err := range spec.All() {
		if err != nil {
			return nil
		}
		e, ok := typ.(*btf.Enum)
		if !ok || len(e.Values) == 0 || !strings.HasPrefix(e.Values[0].Name, "___GFP_") {
			continue
		}
		bits := make(map[string]uint64, len(e.Values))
		for _, v := range e.Values {
			if strings.HasPrefix(v.Name, "___GFP_") && strings.HasSuffix(v.Name, "_BIT") {
				bits[v.Name] = v.Value
			}
		}
		return bits
	}
	return nil
}

// Migratetypes returns the names of enum migratetype in a kernel's BTF,
// indexed by value (see MigratetypeNames). nil when the BTF has no such enum.
func Migratetypes(spec *btf.Spec) []string {
	if spec == nil {
		return nil
	}
	var e *btf.Enum
	if err := spec.TypeByName("migratetype", &e); err != nil {
		return nil
	}
	values := make([]EnumValue, len(e.Values))
	for i, v := range e.Values {
		values[i] = EnumValue{Name: v.Name, Value: v.Value}
	}
	return MigratetypeNames(values)
}

// EnumValue is one constant of a C enum.
type EnumValue struct {
	Name  string
	Value uint64
}

// MigratetypeNames turns the constants of enum migratetype (from BTF, or
// from mmzone.h by the era generator) into names indexed by value:
// MIGRATE_UNMOVABLE -> "unmovable" and so on. The aliases MIGRATE_PCPTYPES,
// MIGRATE_TYPES and __MIGRATE_* (which share a value with a real type or
// count them) are skipped. nil when there are none.
func MigratetypeNames(values []EnumValue) []string {
	var names []string
	for _, v := range values {
		if v.Name == "MIGRATE_PCPTYPES" || v.Name == "MIGRATE_TYPES" ||
			!strings.HasPrefix(v.Name, "MIGRATE_") || v.Value > 64 {
			continue
		}
		for uint64(len(names)) <= v.Value {
			names = append(names, "")
		}
		if names[v.Value] == "" {
			names[v.Value] = strings.ToLower(strings.TrimPrefix(v.Name, "MIGRATE_"))
		}
	}
	for i, n := range names {
		if n == "" {
			names[i] = "mt" + strconv.Itoa(i)
		}
	}
	return names
}

// FallbackMigratetypes returns the enum migratetype order of a kernel
// release ("3.10.0-514.el7.x86_64", "6.18.44") for kernels without BTF: the
// order in include/linux/mmzone.h of its era (eras_generated.go), evaluated
// with a distribution config (CMA off, MEMORY_ISOLATION on; see Era.Config).
// 4.4 swapped MOVABLE and RECLAIMABLE and replaced MIGRATE_RESERVE by
// MIGRATE_HIGHATOMIC. nil when the release cannot be parsed or predates
// mobility grouping (2.6.24, b2a0ac8875a0; 2.6 minor releases are not told
// apart, so every 2.6 gets the oldest era's order).
func FallbackMigratetypes(release string) []string {
	major, _, ok := parseRelease(release)
	if !ok || major < 2 || (major == 2 && !strings.HasPrefix(release, "2.6")) {
		return nil
	}
	e, _, ok := eraFor(release)
	if !ok {
		return nil
	}
	return e.Migratetypes
}

// parseRelease extracts major and minor from a kernel release string.
func parseRelease(release string) (major, minor int, ok bool) {
	maj, rest, found := strings.Cut(release, ".")
	if !found {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(maj)
	minor, err2 = strconv.Atoi(rest[:end])
	return major, minor, err1 == nil && err2 == nil
}
