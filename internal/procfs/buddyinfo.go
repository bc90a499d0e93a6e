package procfs

import (
	"fmt"
	"io"
	"strings"
)

// ZoneFree is one line of /proc/buddyinfo: the number of free blocks of each
// order (Free[o] = free blocks of 2^o pages) in one zone of one node.
type ZoneFree struct {
	Node int
	Zone string
	Free []uint64
}

// ParseBuddyinfo parses /proc/buddyinfo ("Node 0, zone   Normal  40153 12774 ...").
// The number of order columns is whatever the kernel printed (NR_PAGE_ORDERS:
// 11 on x86_64, more with CONFIG_ARCH_FORCE_MAX_ORDER); at least one is required.
// Blank lines are skipped.
func ParseBuddyinfo(r io.Reader) ([]ZoneFree, error) {
	var out []ZoneFree
	err := lines(r, "buddyinfo", func(_ int, line string) error {
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
		free, err := parseCounts(rest)
		if err != nil {
			return fmt.Errorf("zone %q: %w", zone, err)
		}
		out = append(out, ZoneFree{Node: node, Zone: zone, Free: free})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
