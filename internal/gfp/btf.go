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
// indexed by value: MIGRATE_UNMOVABLE -> "unmovable" and so on. The aliases
// MIGRATE_PCPTYPES, MIGRATE_TYPES and __MIGRATE_* (which share a value with a
// real type or count them) are skipped. nil when the BTF has no such enum.
func Migratetypes(spec *btf.Spec) []string {
	if spec == nil {
		return nil
	}
	var e *btf.Enum
	if err := spec.TypeByName("migratetype", &e); err != nil {
		return nil
	}
	var names []string
	for _, v := range e.Values {
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

// FallbackMigratetypes returns the enum migratetype order documented in
// include/linux/mmzone.h for a kernel release ("3.10.0-514.el7.x86_64",
// "6.18.44"), for kernels without BTF. Values 0..2 are certain; the ones
// after depend on CONFIG_CMA and CONFIG_MEMORY_ISOLATION, and this assumes
// the common x86_64 distribution build: no CMA, isolation on. nil when the
// release cannot be parsed or predates mobility grouping.
func FallbackMigratetypes(release string) []string {
	major, minor, ok := parseRelease(release)
	switch {
	case !ok:
		return nil
	case major < 2 || (major == 2 && minor < 6):
		// 2.6.24 introduced migratetypes; "2.6.x" minor parsing is not
		// worth it for kernels that old.
		return nil
	case major < 4 || (major == 4 && minor < 4):
		// 2.6.24 (mobility grouping, b2a0ac8875a0) to 4.3: RECLAIMABLE
		// before MOVABLE, MIGRATE_RESERVE = MIGRATE_PCPTYPES (3),
		// MIGRATE_ISOLATE after it (MIGRATE_CMA between them since 3.5
		// when CONFIG_CMA=y).
		return []string{"unmovable", "reclaimable", "movable", "reserve", "isolate"}
	default:
		// 4.4 ("mm, page_alloc: use masks and shifts when converting GFP
		// flags to migrate types") swapped MOVABLE and RECLAIMABLE, and
		// "remove MIGRATE_RESERVE" / "reserve pageblocks for high-order
		// atomic allocations" put MIGRATE_HIGHATOMIC at 3. Unchanged through
		// 6.18 (UNMOVABLE 0, MOVABLE 1, RECLAIMABLE 2, HIGHATOMIC 3,
		// ISOLATE 4 read from its BTF).
		return []string{"unmovable", "movable", "reclaimable", "highatomic", "isolate"}
	}
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
