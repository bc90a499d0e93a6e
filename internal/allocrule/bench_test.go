package allocrule

import (
	"testing"

	"github.com/fragscope/fragscope/internal/snapshot"
)

// Judging every zone of a snapshot runs per failure (incidents) and per
// watch refresh (the panel and the table's verdict row, once per order).
func BenchmarkJudge(b *testing.B) {
	live, err := snapshot.Take("../../testdata/procfs/live-6.18")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		s    *snapshot.Snapshot
		r    Request
	}{
		{"seed-3.10-order6", snap(seedZones()...), NewRequest(0x10c0d0, 6, load310(b), era310)},
		{"live-6.18-pagetypeinfo-order6", live, NewRequest(kernel612, 6, gfp612, era618)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Judge(c.s, c.r)
			}
		})
	}
	b.Run("live-6.18-table-row-11-orders", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			row := Row(live, "GFP_KERNEL", func(o int) Request { return KernelRequest(o, era618) })
			for z := range live.Zones {
				for o := 0; o < 11; o++ {
					row.Cell(z, o)
				}
			}
		}
	})
}
