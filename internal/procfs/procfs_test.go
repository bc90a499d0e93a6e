package procfs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fixtures = "../../testdata/procfs"

func open(t testing.TB, rel string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtures, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// wantLineError checks err is a *ParseError for kind at line.
func wantLineError(t *testing.T, err error, kind string, line int) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *ParseError", err)
	}
	if pe.Kind != kind || pe.Line != line {
		t.Fatalf("err = %v, want %s line %d", err, kind, line)
	}
	if !strings.HasPrefix(err.Error(), kind+" line ") {
		t.Fatalf("message %q does not start with %q", err, kind+" line ")
	}
}

func TestParseBuddyinfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []ZoneFree
		errLine int // 0: no error
	}{
		{
			name: "incident failing node",
			in: "Node 0, zone      DMA      1      0      0      1      2      1      1      0      1      1      3\n" +
				"Node 0, zone    DMA32   8409   8079   1340     74      6      0      0      0      0      0      0\n" +
				"Node 0, zone   Normal  40153  12774    302     17      0      0      0      0      0      0      0 \n",
			want: []ZoneFree{
				{0, "DMA", []uint64{1, 0, 0, 1, 2, 1, 1, 0, 1, 1, 3}},
				{0, "DMA32", []uint64{8409, 8079, 1340, 74, 6, 0, 0, 0, 0, 0, 0}},
				{0, "Normal", []uint64{40153, 12774, 302, 17, 0, 0, 0, 0, 0, 0, 0}},
			},
		},
		{
			name: "two nodes, 14 orders (arm64 64K pages), blank line",
			in:   "Node 0, zone Normal 1 2 3 4 5 6 7 8 9 10 11 12 13 14\n\nNode 1, zone Normal 0 0 0 0 0 0 0 0 0 0 0 0 0 1\n",
			want: []ZoneFree{
				{0, "Normal", []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
				{1, "Normal", []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
			},
		},
		{name: "bad count", in: "Node 0, zone DMA 1 2\nNode 0, zone DMA32 1 2\nNode 0, zone Normal 1 x\n", errLine: 3},
		{name: "no columns", in: "Node 0, zone DMA\n", errLine: 1},
		{name: "negative count", in: "Node 0, zone DMA -1\n", errLine: 1},
		{name: "bad node", in: "Node x, zone DMA 1\n", errLine: 1},
		{name: "not buddyinfo", in: "MemTotal: 1 kB\n", errLine: 1},
		{name: "overflow", in: "Node 0, zone DMA 18446744073709551616\n", errLine: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBuddyinfo(strings.NewReader(tt.in))
			if tt.errLine != 0 {
				wantLineError(t, err, "buddyinfo", tt.errLine)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseBuddyinfoFixtures(t *testing.T) {
	for _, dir := range []string{"live-6.18", "incident-failing", "incident-healthy", "incident-compacted"} {
		got, err := ParseBuddyinfo(open(t, dir+"/proc/buddyinfo"))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(got) < 2 {
			t.Errorf("%s: %d zones", dir, len(got))
		}
		for _, z := range got {
			if len(z.Free) != 11 {
				t.Errorf("%s %s: %d orders, want 11", dir, z.Zone, len(z.Free))
			}
		}
	}
}

func TestParseZoneinfo(t *testing.T) {
	// The live file: 6.18 layout with per-node stats before "pages free",
	// boost/promo, and empty Movable/Device zones.
	live, err := ParseZoneinfo(open(t, "live-6.18/proc/zoneinfo"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, z := range live {
		names = append(names, z.Zone)
		if !z.HaveFree || !z.HaveWatermarks {
			t.Errorf("%s: HaveFree %v HaveWatermarks %v", z.Zone, z.HaveFree, z.HaveWatermarks)
		}
		if z.Min > z.Low || z.Low > z.High {
			t.Errorf("%s: watermarks %d/%d/%d not ordered", z.Zone, z.Min, z.Low, z.High)
		}
	}
	if want := []string{"DMA", "DMA32", "Normal", "Movable", "Device"}; !reflect.DeepEqual(names, want) {
		t.Errorf("zones %v, want %v", names, want)
	}
	if mv := live[3]; mv.Managed != 0 || mv.Present != 0 || mv.Free != 0 {
		t.Errorf("Movable: %+v, want empty", mv)
	}
	// lowmem_reserve as this machine printed it: 5 entries (DMA, DMA32,
	// Normal, Movable, Device), also for the unpopulated zones (only 5.8's
	// 26e7deadaae1 left it out for them; a8a4b7aeaf84 reverted that).
	for i, want := range [][]uint64{{0, 3018, 4810, 4810, 4810}, {0, 0, 1792, 1792, 1792}, {0, 0, 0, 0, 0},
		{0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}} {
		if !reflect.DeepEqual(live[i].Protection, want) {
			t.Errorf("%s protection %v, want %v", live[i].Zone, live[i].Protection, want)
		}
		if live[i].FreeCMA != 0 || live[i].HaveReservedHighatomic {
			t.Errorf("%s: FreeCMA %d HaveReservedHighatomic %v, want 0 and false", live[i].Zone,
				live[i].FreeCMA, live[i].HaveReservedHighatomic)
		}
	}

	// The synthetic 3.10 layout.
	old, err := ParseZoneinfo(open(t, "incident-failing/proc/zoneinfo"))
	if err != nil {
		t.Fatal(err)
	}
	want := ZoneInfo{Node: 0, Zone: "Normal", Free: 67045, Min: 13884, Low: 17355, High: 20826,
		Spanned: 3407872, Present: 3407872, Managed: 3341722, StartPFN: 1, Protection: []uint64{0, 0, 0, 0},
		HaveFree: true, HaveWatermarks: true}
	if len(old) != 3 || !reflect.DeepEqual(old[2], want) {
		t.Errorf("3.10 Normal = %+v\nwant %+v", old, want)
	}

	tests := []struct {
		name    string
		in      string
		want    []ZoneInfo
		errLine int
	}{
		{
			name: "free only as nr_free_pages, no watermarks",
			in:   "Node 1, zone   Normal\n      nr_free_pages 42\n        spanned  10\n",
			want: []ZoneInfo{{Node: 1, Zone: "Normal", Free: 42, Spanned: 10, HaveFree: true}},
		},
		{
			name: "pagesets high: is not the watermark",
			in:   "Node 0, zone DMA\n  pages free 5\n min 1\n low 2\n high 3\n  pagesets\n    cpu: 0\n      high:  186\n",
			want: []ZoneInfo{{Zone: "DMA", Free: 5, Min: 1, Low: 2, High: 3, HaveFree: true, HaveWatermarks: true}},
		},
		{
			// 3.10 layout (zoneinfo_show_print, mm/vmstat.c 3.10): the
			// "    %-12s %lu" stats, nr_free_cma among them (CMA machine),
			// then the protection line after them.
			name: "3.10 with CMA",
			in: "Node 0, zone   Normal\n  pages free     9000\n        min      100\n        low      125\n" +
				"        high     150\n        scanned  0\n        spanned  65536\n        present  65536\n" +
				"        managed  60000\n    nr_free_pages 9000\n    nr_free_cma  4096\n" +
				"        protection: (0, 0, 0, 0)\n  pagesets\n",
			want: []ZoneInfo{{Zone: "Normal", Free: 9000, Min: 100, Low: 125, High: 150, Spanned: 65536,
				Present: 65536, Managed: 60000, FreeCMA: 4096, Protection: []uint64{0, 0, 0, 0},
				HaveFree: true, HaveWatermarks: true}},
		},
		{
			// 5.8's layout of an unpopulated zone (26e7deadaae1 "mm/vmstat.c:
			// do not show lowmem reserve protection information of empty
			// zone", reverted by a8a4b7aeaf84): it stops after "managed".
			name: "unpopulated zone on 5.8",
			in:   "Node 0, zone  Movable\n  pages free     0\n        min      0\n        low      0\n        high     0\n        spanned  0\n        present  0\n        managed  0\n",
			want: []ZoneInfo{{Zone: "Movable", HaveFree: true, HaveWatermarks: true}},
		},
		{
			name: "a vendor kernel's nr_reserved_highatomic",
			in:   "Node 0, zone DMA32\n  pages free 5\n      nr_reserved_highatomic 512\n        protection: (0, 0, 42)\n",
			want: []ZoneInfo{{Zone: "DMA32", Free: 5, HaveFree: true, ReservedHighatomic: 512,
				HaveReservedHighatomic: true, Protection: []uint64{0, 0, 42}}},
		},
		{name: "bad protection", in: "Node 0, zone DMA\n  pages free 5\n        protection: (0, x)\n", errLine: 3},
		{name: "protection without parentheses", in: "Node 0, zone DMA\n        protection: 0, 1\n", errLine: 2},
		{name: "stats before header", in: "  pages free 5\n", errLine: 1},
		{name: "bad min", in: "Node 0, zone DMA\n  pages free 5\n        min      x\n", errLine: 3},
		{name: "junk after header", in: "Node 0, zone DMA extra\n", errLine: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseZoneinfo(strings.NewReader(tt.in))
			if tt.errLine != 0 {
				wantLineError(t, err, "zoneinfo", tt.errLine)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParsePagetypeinfo(t *testing.T) {
	p, err := ParsePagetypeinfo(open(t, "live-6.18/proc/pagetypeinfo"))
	if err != nil {
		t.Fatal(err)
	}
	if p.PageblockOrder != 9 || p.PagesPerBlock != 512 {
		t.Errorf("pageblock order %d, pages %d; want 9, 512", p.PageblockOrder, p.PagesPerBlock)
	}
	if len(p.Free) != 15 || len(p.Blocks) != 3 || p.Mixed != nil {
		t.Errorf("%d free rows, %d block rows, mixed %v; want 15, 3, nil", len(p.Free), len(p.Blocks), p.Mixed)
	}
	// The per-migratetype free lists of a zone add up to buddyinfo, which was
	// read at the same moment.
	buddy, err := ParseBuddyinfo(open(t, "live-6.18/proc/buddyinfo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buddy {
		sum := make([]uint64, len(b.Free))
		for _, f := range p.Free {
			if f.Node == b.Node && f.Zone == b.Zone {
				for o, n := range f.Free {
					sum[o] += n
				}
			}
		}
		if !reflect.DeepEqual(sum, b.Free) {
			t.Errorf("%s: pagetypeinfo sums %v, buddyinfo %v", b.Zone, sum, b.Free)
		}
	}
	if got := p.Blocks[2]; got.Zone != "Normal" || got.Blocks["Movable"] == 0 || len(got.Blocks) != 5 {
		t.Errorf("Normal block row = %+v", got)
	}

	// Two nodes (headers repeat), capped counts, an old kernel's names and
	// the page_owner mixed table.
	const multi = `Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2
Node    0, zone   Normal, type    Unmovable      1 >100000      3
Node    0, zone   Normal, type      Reserve      0      0      1

Number of blocks type     Unmovable      Reserve
Node 0, zone   Normal            5            1

Number of mixed blocks    Unmovable      Reserve
Node 0, zone   Normal            2            0
Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1      2
Node    1, zone   Normal, type    Unmovable      4      5      6
Node    1, zone   Normal, type      Reserve      0      0      0

Number of blocks type     Unmovable      Reserve
Node 1, zone   Normal            7            1
`
	m, err := ParsePagetypeinfo(strings.NewReader(multi))
	if err != nil {
		t.Fatal(err)
	}
	wantFree := []MigratetypeFree{
		{0, "Normal", "Unmovable", []uint64{1, 100000, 3}, true},
		{0, "Normal", "Reserve", []uint64{0, 0, 1}, false},
		{1, "Normal", "Unmovable", []uint64{4, 5, 6}, false},
		{1, "Normal", "Reserve", []uint64{0, 0, 0}, false},
	}
	if !reflect.DeepEqual(m.Free, wantFree) {
		t.Errorf("free = %+v", m.Free)
	}
	if len(m.Blocks) != 2 || m.Blocks[1].Node != 1 || m.Blocks[1].Blocks["Unmovable"] != 7 {
		t.Errorf("blocks = %+v", m.Blocks)
	}
	if len(m.Mixed) != 1 || m.Mixed[0].Blocks["Unmovable"] != 2 {
		t.Errorf("mixed = %+v", m.Mixed)
	}

	bad := []struct {
		name string
		in   string
		line int
	}{
		{"row outside table", "Node 0, zone DMA, type Movable 1\n", 1},
		{"short row", "Free pages count per migrate type at order 0 1\nNode 0, zone DMA, type Movable 1\n", 2},
		{"bad header", "Free pages count per migrate type at order 0 2\n", 1},
		{"bad block count", "Number of blocks type  Unmovable\nNode 0, zone DMA  x\n", 2},
		{"bad order", "Page block order: nine\n", 1},
		{"missing type", "Free pages count per migrate type at order 0\nNode 0, zone DMA, Movable 1\n", 2},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePagetypeinfo(strings.NewReader(tt.in))
			wantLineError(t, err, "pagetypeinfo", tt.line)
		})
	}
}

func TestParseMemInfoFreeLists(t *testing.T) {
	got, err := ParseMemInfoFreeLists(open(t, "meminfo/incident-page-alloc-failure.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := []MemInfoFreeList{
		{Line: 42, Node: 0, Zone: "DMA", Free: []uint64{1, 0, 0, 1, 2, 1, 1, 0, 1, 1, 3},
			Types: []string{"U", "", "", "U", "U", "U", "U", "", "U", "U", "M"}, PageKB: 4, TotalKB: 15908},
		{Line: 43, Node: 0, Zone: "DMA32", Free: []uint64{19160, 6346, 35, 7, 0, 0, 0, 0, 0, 0, 0},
			Types: []string{"UEM", "UEM", "UM", "UM", "", "", "", "", "", "", ""}, PageKB: 4, TotalKB: 128192},
		{Line: 44, Node: 0, Zone: "Normal", Free: []uint64{34178, 20118, 412, 115, 46, 6, 0, 0, 0, 0, 0},
			Types: []string{"UEM", "UEM", "UEM", "UEM", "UEM", "UE", "", "", "", "", ""}, PageKB: 4, TotalKB: 311640},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, l := range got {
		if l.SumKB() != l.TotalKB {
			t.Errorf("%s: lists sum to %d kB, line says %d kB", l.Zone, l.SumKB(), l.TotalKB)
		}
	}

	old, err := ParseMemInfoFreeLists(open(t, "meminfo/old-format-no-types.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 3 || old[2].Node != -1 || old[2].Zone != "Normal" || !reflect.DeepEqual(old[2].Free, want[2].Free) ||
		old[2].Types[0] != "" || old[2].Line != 4 {
		t.Errorf("old format = %+v", old)
	}

	// The brief's example form: the digest's zone free counter as total is
	// accepted as printed (not re-checked), with a syslog prefix.
	ex := "Mar  3 10:00:01 node7 kernel: Node 0 Normal: 34178*4kB (UEM) 20118*8kB (UEM) 412*16kB (UEM) 115*32kB (UEM) 46*64kB (UEM) 6*128kB (UE) 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 311184kB\n"
	ls, err := ParseMemInfoFreeLists(strings.NewReader(ex))
	if err != nil || len(ls) != 1 || ls[0].TotalKB != 311184 || ls[0].SumKB() != 311640 {
		t.Errorf("syslog form: %+v, %v", ls, err)
	}

	bad := []struct{ name, in string }{
		{"cut short", "Node 0 Normal: 1*4kB 2*8kB\n"},
		{"size skips", "Node 0 Normal: 1*4kB 2*16kB = 36kB\n"},
		{"junk after total", "Node 0 Normal: 1*4kB = 4kB extra\n"},
		{"types first", "Node 0 Normal: 1*4kB (U) (M) = 4kB\n"},
		{"bad field", "Node 0 Normal: 1*4kB 2*8KB = 20kB\n"},
		{"bad total", "Node 0 Normal: 1*4kB = 4\n"},
		{"zero size", "DMA: 1*0kB = 0kB\n"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMemInfoFreeLists(strings.NewReader("Mem-Info:\n" + tt.in))
			wantLineError(t, err, "meminfo", 2)
		})
	}
}

func TestParseExtfrag(t *testing.T) {
	got, err := ParseExtfrag(strings.NewReader(
		"Node 0, zone    DMA32 -1.000 -1.000  0.970  0.-500 0.-05\nNode 0, zone   Normal 0.000 0.999 1.000\n"), "extfrag_index")
	if err != nil {
		t.Fatal(err)
	}
	want := []ZoneIndex{{0, "DMA32", []int{-1000, -1000, 970, -500, -5}}, {0, "Normal", []int{0, 999, 1000}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, f := range []string{"extfrag_index", "unusable_index"} {
		zs, err := ParseExtfrag(open(t, "live-6.18/sys/kernel/debug/extfrag/"+f), f)
		if err != nil || len(zs) != 3 || len(zs[2].Index) != 11 {
			t.Errorf("%s: %+v, %v", f, zs, err)
		}
	}
	for _, in := range []string{"Node 0, zone DMA 1\n", "Node 0, zone DMA -1.-5\n", "Node 0, zone DMA 0.1000\n", "Node 0, zone DMA\n"} {
		_, err := ParseExtfrag(strings.NewReader(in), "unusable_index")
		wantLineError(t, err, "unusable_index", 1)
	}
}

func TestLongLine(t *testing.T) {
	in := "Node 0, zone DMA 1\n" + strings.Repeat("1 ", maxLine) + "\n"
	_, err := ParseBuddyinfo(strings.NewReader(in))
	wantLineError(t, err, "buddyinfo", 2)
}

func TestParsePressureAndVmstatCompaction(t *testing.T) {
	p, err := ParsePressure(strings.NewReader("some avg10=0.00 avg60=0.00 avg300=0.00 total=5899\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3499\n"))
	if err != nil || p != (Pressure{SomeUs: 5899, FullUs: 3499, HaveFull: true}) {
		t.Errorf("ParsePressure = %+v, %v", p, err)
	}
	for _, in := range []string{"", "full total=5\n", "some avg10=1.00\n", "some total=x\n"} {
		if _, err := ParsePressure(strings.NewReader(in)); err == nil {
			t.Errorf("ParsePressure(%q): no error", in)
		}
	}
	c, err := ParseVmstatCompaction(strings.NewReader("nr_free_pages 5\ncompact_stall 7\ncompact_fail 3\ncompact_success 4\nthp_fault_fallback 2\nthp_fault_fallback_charge 1\n"))
	if err != nil || c != (CompactionStat{7, 3, 4, 2, 1}) {
		t.Errorf("ParseVmstatCompaction = %+v, %v", c, err)
	}
	if _, err := ParseVmstatCompaction(strings.NewReader("compact_stall x\n")); err == nil {
		t.Error("ParseVmstatCompaction: no error for a bad value")
	}
}
