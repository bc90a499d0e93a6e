package procfs

import (
	"fmt"
	"strconv"
	"strings"
)

// parseNodeZone reads the "Node N, zone NAME" prefix that buddyinfo,
// zoneinfo and the pagetypeinfo block table share, from already split fields.
// It returns the node, the zone name (without a trailing comma) and the
// remaining fields.
func parseNodeZone(f []string) (node int, zone string, rest []string, err error) {
	if len(f) < 4 || f[0] != "Node" || f[2] != "zone" {
		return 0, "", nil, fmt.Errorf("want \"Node N, zone NAME\", got %q", strings.Join(f, " "))
	}
	node, err = parseNode(strings.TrimSuffix(f[1], ","))
	if err != nil {
		return 0, "", nil, err
	}
	zone = strings.TrimSuffix(f[3], ",")
	if zone == "" {
		return 0, "", nil, fmt.Errorf("empty zone name")
	}
	return node, zone, f[4:], nil
}

func parseNode(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid node %q", s)
	}
	return int(n), nil
}

// parseCounts parses one unsigned decimal per field.
func parseCounts(f []string) ([]uint64, error) {
	out := make([]uint64, len(f))
	for i, s := range f {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("order %d: invalid count %q", i, s)
		}
		out[i] = v
	}
	return out, nil
}
