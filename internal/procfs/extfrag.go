package procfs

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ZoneIndex is one line of a debugfs extfrag file: one index per order, in
// thousandths as the kernel computes them (-1000 prints as "-1.000").
type ZoneIndex struct {
	Node  int
	Zone  string
	Index []int
}

// ParseExtfrag parses /sys/kernel/debug/extfrag/extfrag_index or
// unusable_index; kind names the file in errors. Both print, per populated
// zone, "Node 0, zone   Normal " and then index/1000 "." index%1000 with C's
// truncating division per order (mm/vmstat.c extfrag_show_print and
// unusable_show_print), so a small negative index such as -500 (possible when
// a single smaller block is free) comes out as "0.-500"; that is read back
// to -500 here.
func ParseExtfrag(r io.Reader, kind string) ([]ZoneIndex, error) {
	var out []ZoneIndex
	err := lines(r, kind, func(_ int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		node, zone, rest, err := parseNodeZone(f)
		if err != nil {
			return err
		}
		if len(rest) == 0 {
			return fmt.Errorf("zone %q: no order columns", zone)
		}
		z := ZoneIndex{Node: node, Zone: zone, Index: make([]int, len(rest))}
		for i, s := range rest {
			v, err := parseIndex(s)
			if err != nil {
				return fmt.Errorf("zone %q: order %d: %w", zone, i, err)
			}
			z.Index[i] = v
		}
		out = append(out, z)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parseIndex inverts the kernel's "%d.%03d" of (i/1000, i%1000).
func parseIndex(s string) (int, error) {
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || whole == "" || frac == "" {
		return 0, fmt.Errorf("invalid index %q", s)
	}
	w, err1 := strconv.Atoi(whole)
	fr, err2 := strconv.Atoi(frac)
	if err1 != nil || err2 != nil || w < -1000 || w > 1000 || fr <= -1000 || fr >= 1000 {
		return 0, fmt.Errorf("invalid index %q", s)
	}
	if strings.HasPrefix(whole, "-") {
		if fr < 0 {
			return 0, fmt.Errorf("invalid index %q", s)
		}
		return w*1000 - fr, nil
	}
	return w*1000 + fr, nil
}
