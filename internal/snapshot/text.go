package snapshot

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Text layout: a 9-character row label and 8-character columns, 11 orders
// (x86_64's NR_PAGE_ORDERS) per band to stay within 100 columns; zones with
// more orders wrap into further bands.
const (
	labelWidth    = 9
	colWidth      = 8
	ordersPerBand = 11
)

// VerdictRow is the table's verdict row: a legend line saying which request
// the cells answer for, and a short cell per zone (index into Zones) and
// order. The snapshot cannot judge a request itself: internal/allocrule
// does, and its callers build the row.
type VerdictRow struct {
	Legend string
	Cell   func(zone, order int) string
}

// WriteText renders s as a compact table per zone: free blocks, the kernel's
// fragmentation and unusable indices (printed as the debugfs files print
// them) and, with a VerdictRow, the verdict for each order, plus free
// memory, watermarks and the largest free order.
func WriteText(w io.Writer, s *Snapshot, verdicts *VerdictRow) error {
	bw := bufio.NewWriter(w)
	th := s.Threshold()
	fmt.Fprintf(bw, "free memory at %s  page size %d kB", s.Time.UTC().Format(time.RFC3339), s.PageBytes()/1024)
	if s.PageblockOrder > 0 {
		fmt.Fprintf(bw, "  pageblock order %d", s.PageblockOrder)
	}
	fmt.Fprintf(bw, "  extfrag_threshold %d\n", th)
	if verdicts != nil {
		fmt.Fprintf(bw, "%s\n", verdicts.Legend)
	}
	for i := range s.Zones {
		z := &s.Zones[i]
		fmt.Fprintf(bw, "\nNode %d, zone %s", z.Node, z.Name)
		if z.Empty() {
			fmt.Fprintf(bw, ": empty\n")
			continue
		}
		kb := func(p uint64) uint64 { return p * uint64(s.PageBytes()) / 1024 }
		fmt.Fprintf(bw, ": free %d kB in lists", kb(z.FreePages()))
		if z.NrFree != 0 && z.NrFree != z.FreePages() {
			fmt.Fprintf(bw, " (counter %d kB)", kb(z.NrFree))
		}
		fmt.Fprintf(bw, ", largest free order %d\n", z.LargestFreeOrder())
		if z.HaveWatermarks {
			fmt.Fprintf(bw, "  watermarks min %d kB  low %d kB  high %d kB  managed %d kB\n",
				kb(z.Min), kb(z.Low), kb(z.High), kb(z.Managed))
		} else {
			fmt.Fprintf(bw, "  watermarks unknown (zone missing from zoneinfo)\n")
		}
		if len(z.PageblocksByMigratetype) > 0 {
			fmt.Fprintf(bw, "  pageblocks %s\n", formatBlocks(z.PageblocksByMigratetype))
		}
		var cell func(int) string
		if verdicts != nil {
			cell = func(o int) string { return verdicts.Cell(i, o) }
		}
		writeBands(bw, z, cell)
	}
	return bw.Flush()
}

func writeBands(w io.Writer, z *Zone, verdict func(order int) string) {
	n := len(z.FreeBlocks)
	for lo := 0; lo < n; lo += ordersPerBand {
		hi := min(lo+ordersPerBand, n)
		row(w, "order", lo, hi, func(o int) string { return fmt.Sprint(o) })
		row(w, "free", lo, hi, func(o int) string { return fmt.Sprint(z.FreeBlocks[o]) })
		row(w, "extfrag", lo, hi, func(o int) string { return FormatIndex(z.FragIndex(o)) })
		row(w, "unusable", lo, hi, func(o int) string { return FormatIndex(z.Unusable(o)) })
		if verdict != nil {
			row(w, "verdict", lo, hi, verdict)
		}
	}
}

func row(w io.Writer, label string, lo, hi int, cell func(int) string) {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-*s", labelWidth-2, label)
	for o := lo; o < hi; o++ {
		fmt.Fprintf(&b, "%*s", colWidth, cell(o))
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

// kernelTypeOrder lists migratetype names in the order 6.x prints them;
// older names (Reserve, CMA) and unknown ones follow alphabetically.
var kernelTypeOrder = []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"}

func formatBlocks(m map[string]uint64) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	rank := func(s string) int {
		if i := slices.Index(kernelTypeOrder, s); i >= 0 {
			return i
		}
		return len(kernelTypeOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}
