package procfs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Pagetypeinfo is /proc/pagetypeinfo (mode 0400: root only).
type Pagetypeinfo struct {
	// PageblockOrder is "Page block order", -1 when the file had none.
	PageblockOrder int
	// PagesPerBlock is "Pages per block", 0 when the file had none.
	PagesPerBlock uint64
	// Free holds the "Free pages count per migrate type at order" rows.
	Free []MigratetypeFree
	// Blocks holds the "Number of blocks type" rows.
	Blocks []PageblockCount
	// Mixed holds the "Number of mixed blocks" rows (CONFIG_PAGE_OWNER with
	// page_owner=on only); nil otherwise.
	Mixed []PageblockCount
}

// MigratetypeFree is the free block count per order of one migratetype in one
// zone. Despite the header saying "pages", the kernel counts list entries,
// i.e. blocks of 2^order pages, like buddyinfo.
type MigratetypeFree struct {
	Node int
	Zone string
	Type string // kernel migratetype name: "Unmovable", "Movable", ...
	Free []uint64
	// Capped is true when the kernel stopped counting an order at 100000
	// entries (printed ">100000"; kernels since about 5.4 cap the walk
	// because it runs under zone->lock): Free holds 100000 there, a lower bound.
	Capped bool
}

// PageblockCount is the number of pageblocks of each migratetype in one zone.
type PageblockCount struct {
	Node   int
	Zone   string
	Blocks map[string]uint64
}

// ParsePagetypeinfo parses /proc/pagetypeinfo. The kernel prints the whole
// layout once per node with memory, so headers may repeat; the first
// pageblock order seen is kept. Table rows must have as many columns as
// their header.
func ParsePagetypeinfo(r io.Reader) (*Pagetypeinfo, error) {
	p := &Pagetypeinfo{PageblockOrder: -1}
	const (
		none = iota
		free
		blocks
		mixed
	)
	var (
		table  = none
		orders int      // columns of the free table
		types  []string // columns of a block table
	)
	err := lines(r, "pagetypeinfo", func(_ int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			table = none
			return nil
		}
		switch {
		case strings.HasPrefix(line, "Page block order:"):
			v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "Page block order:")), 10, 8)
			if err != nil || v >= 64 {
				return fmt.Errorf("invalid page block order in %q", line)
			}
			if p.PageblockOrder < 0 {
				p.PageblockOrder = int(v)
			}
			return nil
		case strings.HasPrefix(line, "Pages per block:"):
			v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "Pages per block:")), 10, 64)
			if err != nil {
				return fmt.Errorf("invalid pages per block in %q", line)
			}
			if p.PagesPerBlock == 0 {
				p.PagesPerBlock = v
			}
			return nil
		case strings.HasPrefix(line, "Free pages count per migrate type at order"):
			cols := strings.Fields(strings.TrimPrefix(line, "Free pages count per migrate type at order"))
			for i, c := range cols {
				if c != strconv.Itoa(i) {
					return fmt.Errorf("free table header: column %d is %q, want %d", i, c, i)
				}
			}
			if len(cols) == 0 {
				return errors.New("free table header: no order columns")
			}
			table, orders = free, len(cols)
			return nil
		case strings.HasPrefix(line, "Number of blocks type"):
			types = strings.Fields(strings.TrimPrefix(line, "Number of blocks type"))
			if len(types) == 0 {
				return errors.New("block table header: no migratetype columns")
			}
			table = blocks
			return nil
		case strings.HasPrefix(line, "Number of mixed blocks"):
			types = strings.Fields(strings.TrimPrefix(line, "Number of mixed blocks"))
			if len(types) == 0 {
				return errors.New("mixed block table header: no migratetype columns")
			}
			table = mixed
			return nil
		}
		switch table {
		case free:
			row, err := parseFreeRow(f, orders)
			if err != nil {
				return err
			}
			p.Free = append(p.Free, row)
		case blocks, mixed:
			row, err := parseBlockRow(f, types)
			if err != nil {
				return err
			}
			if table == blocks {
				p.Blocks = append(p.Blocks, row)
			} else {
				p.Mixed = append(p.Mixed, row)
			}
		default:
			return fmt.Errorf("unexpected line outside any table: %q", line)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// parseFreeRow parses "Node    0, zone   Normal, type    Unmovable  192 85 ...".
func parseFreeRow(f []string, orders int) (MigratetypeFree, error) {
	node, zone, rest, err := parseNodeZone(f)
	if err != nil {
		return MigratetypeFree{}, err
	}
	if len(rest) < 2 || rest[0] != "type" {
		return MigratetypeFree{}, fmt.Errorf("zone %q: want \"type NAME\" after the zone", zone)
	}
	row := MigratetypeFree{Node: node, Zone: zone, Type: rest[1]}
	cols := rest[2:]
	if len(cols) != orders {
		return row, fmt.Errorf("zone %q type %q: %d order columns, header has %d", zone, row.Type, len(cols), orders)
	}
	row.Free = make([]uint64, len(cols))
	for i, c := range cols {
		if s, ok := strings.CutPrefix(c, ">"); ok {
			c, row.Capped = s, true
		}
		v, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			return row, fmt.Errorf("zone %q type %q: order %d: invalid count %q", zone, row.Type, i, cols[i])
		}
		row.Free[i] = v
	}
	return row, nil
}

// parseBlockRow parses "Node 0, zone   Normal   53  793  50  0  0".
func parseBlockRow(f []string, types []string) (PageblockCount, error) {
	node, zone, rest, err := parseNodeZone(f)
	if err != nil {
		return PageblockCount{}, err
	}
	if len(rest) != len(types) {
		return PageblockCount{}, fmt.Errorf("zone %q: %d block columns, header has %d", zone, len(rest), len(types))
	}
	row := PageblockCount{Node: node, Zone: zone, Blocks: make(map[string]uint64, len(types))}
	for i, c := range rest {
		v, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			return row, fmt.Errorf("zone %q: %s: invalid count %q", zone, types[i], c)
		}
		row.Blocks[types[i]] = v
	}
	return row, nil
}
