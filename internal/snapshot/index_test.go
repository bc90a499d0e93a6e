package snapshot

import (
	"reflect"
	"testing"
)

// Free lists of the incident (shared/notes/incident.md), orders 0..10.
var (
	failingDMA32 = []uint64{8409, 8079, 1340, 74, 6, 0, 0, 0, 0, 0, 0}
	failingNorm  = []uint64{40153, 12774, 302, 17, 0, 0, 0, 0, 0, 0, 0}
	meminfoDMA32 = []uint64{19160, 6346, 35, 7, 0, 0, 0, 0, 0, 0, 0}
	meminfoNorm  = []uint64{34178, 20118, 412, 115, 46, 6, 0, 0, 0, 0, 0}
	healthyNorm  = []uint64{108, 1708, 952, 1064, 957, 690, 285, 145, 12, 1, 0}
)

// Hand computations. The kernel's formula, with / truncating (div_u64):
//
//	index = 1000 - (1000 + free_pages*1000/2^order) / free_blocks
//
// Failing node, DMA32 (buddyinfo 8409 8079 1340 74 6 0 ...):
//
//	free_pages  = 8409 + 8079*2 + 1340*4 + 74*8 + 6*16 = 30615
//	free_blocks = 8409 + 8079 + 1340 + 74 + 6           = 17908
//	order 6:  30615000/64   = 478359;  479359/17908 = 26 (26.77);  1000-26 = 974
//	order 7:  30615000/128  = 239179;  240179/17908 = 13;          987
//	order 8:  30615000/256  = 119589;  120589/17908 = 6;           994
//	order 9:  30615000/512  = 59794;   60794/17908  = 3;           997
//	order 10: 30615000/1024 = 29897;   30897/17908  = 1;           999
//	order 5:  30615000/32   = 956718;  957718/17908 = 53;          947
//
// The digest says "formula gives 0.973" for order 6: that is the formula in
// real numbers (1 - 479.36/17908 = 0.97323). The kernel truncates the
// quotient (26.77 -> 26) and prints 0.974. The failing node's extfrag_index
// file, read at another moment, said 0.970 0.985 0.993 0.997 0.999 for
// orders 6..10: within 0.005 of 974 987 994 997 999.
//
// Failing node, Normal (40153 12774 302 17 0 ...): free_pages 67045, blocks 53246
//
//	order 4:  67045000/16   = 4190312; 4191312/53246 = 78;  922
//	order 6:  67045000/64   = 1047578; 1048578/53246 = 19;  981
//	order 7:  67045000/128  = 523789;  524789/53246  = 9;   991 (file 0.990)
//	order 8:  67045000/256  = 261894;  262894/53246  = 4;   996 (file 0.995)
//	order 9:  67045000/512  = 130947;  131947/53246  = 2;   998 (file 0.998)
//	order 10: 67045000/1024 = 65473;   66473/53246   = 1;   999 (file 0.999)
//
// (The file says -1.000 for Normal orders 4..6: at its moment blocks of order
// 6 existed; this buddyinfo has none above order 3.)
//
// Mem-Info at the failure, Normal (34178 20118 412 115 46 6 0 ...):
// free_pages 77910, blocks 54875; order 6: 77910000/64 = 1217343,
// 1218343/54875 = 22, index 978. DMA32 (19160 6346 35 7 0 ...): free_pages
// 32048, blocks 25548; order 6: 32048000/64 = 500750, 501750/25548 = 19, 981.
//
// Healthy node, Normal, order 10: free_pages 93620, blocks 5922;
// 93620000/1024 = 91425, 92425/5922 = 15, index 985.
func TestFragmentationIndex(t *testing.T) {
	tests := []struct {
		name  string
		free  []uint64
		order int
		want  int
	}{
		{"failing DMA32 o4 (block exists)", failingDMA32, 4, -1000},
		{"failing DMA32 o5", failingDMA32, 5, 947},
		{"failing DMA32 o6", failingDMA32, 6, 974},
		{"failing DMA32 o7", failingDMA32, 7, 987},
		{"failing DMA32 o8", failingDMA32, 8, 994},
		{"failing DMA32 o9", failingDMA32, 9, 997},
		{"failing DMA32 o10", failingDMA32, 10, 999},
		{"failing Normal o3", failingNorm, 3, -1000},
		{"failing Normal o4", failingNorm, 4, 922},
		{"failing Normal o6", failingNorm, 6, 981},
		{"failing Normal o7", failingNorm, 7, 991},
		{"failing Normal o8", failingNorm, 8, 996},
		{"failing Normal o9", failingNorm, 9, 998},
		{"failing Normal o10", failingNorm, 10, 999},
		{"meminfo Normal o6", meminfoNorm, 6, 978},
		{"meminfo Normal o5", meminfoNorm, 5, -1000},
		{"meminfo DMA32 o6", meminfoDMA32, 6, 981},
		{"healthy Normal o6", healthyNorm, 6, -1000},
		{"healthy Normal o10", healthyNorm, 10, 985},
		{"no free blocks", make([]uint64, 11), 6, 0},
		{"nil lists", nil, 0, 0},
		{"order beyond the lists (kernel WARNs, returns 0)", failingDMA32, 11, 0},
		{"negative order", failingDMA32, -1, 0},
		// One order-5 block asked for order 6: 1000 - (1000+32000/64)/1 = -500.
		{"single smaller block goes negative", []uint64{0, 0, 0, 0, 0, 1, 0}, 6, -500},
		// Three order-5 blocks: 1000 - (1000+1500)/3 = 1000-833 = 167: lack of memory.
		{"few blocks: lack of memory", []uint64{0, 0, 0, 0, 0, 3, 0}, 6, 167},
		{"order 0 with any block", []uint64{1}, 0, -1000},
		{"70 orders do not panic", make([]uint64, 70), 69, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FragmentationIndex(tt.free, tt.order); got != tt.want {
				t.Errorf("FragmentationIndex(%v, %d) = %d, want %d", tt.free, tt.order, got, tt.want)
			}
		})
	}
}

// The failing node's extfrag_index file, orders 0..10 (incident.md), read at
// a different moment than its buddyinfo: where both say "no block of this
// order" (DMA32 6..10, Normal 7..10) the values must agree within 0.005;
// where both say "a block exists" (DMA32 0..4, Normal 0..3) exactly.
func TestFragmentationIndexVsIncidentFile(t *testing.T) {
	file := map[string][]int{
		"DMA32":  {-1000, -1000, -1000, -1000, -1000, -1000, 970, 985, 993, 997, 999},
		"Normal": {-1000, -1000, -1000, -1000, -1000, -1000, -1000, 990, 995, 998, 999},
	}
	comparable := map[string][]int{"DMA32": {0, 1, 2, 3, 4, 6, 7, 8, 9, 10}, "Normal": {0, 1, 2, 3, 7, 8, 9, 10}}
	lists := map[string][]uint64{"DMA32": failingDMA32, "Normal": failingNorm}
	for zone, orders := range comparable {
		for _, o := range orders {
			got, want := FragmentationIndex(lists[zone], o), file[zone][o]
			if d := got - want; d < -5 || d > 5 {
				t.Errorf("%s order %d: computed %d, file %d", zone, o, got, want)
			}
		}
	}
}

// Unusable index: (free_pages - suitable<<order) * 1000 / free_pages.
// Failing DMA32, order 3: suitable = 74 + 6*2 = 86 blocks of 8 pages = 688
// pages; (30615-688)*1000/30615 = 29927000/30615 = 977.
func TestUnusableIndex(t *testing.T) {
	tests := []struct {
		name  string
		free  []uint64
		order int
		want  int
	}{
		{"order 0 is always usable", failingDMA32, 0, 0},
		{"failing DMA32 o3", failingDMA32, 3, 977},
		{"failing DMA32 o6", failingDMA32, 6, 1000},
		// order 1: (30615 - (8079 + 1340*2 + 74*4 + 6*8)<<1) * 1000 / 30615
		//        = (30615 - 11103*2) * 1000 / 30615 = 8409000/30615 = 274
		{"failing DMA32 o1", failingDMA32, 1, 274},
		{"nothing free", make([]uint64, 11), 3, 1000},
		{"beyond the lists", failingDMA32, 11, 1000},
		{"negative order", failingDMA32, -1, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnusableIndex(tt.free, tt.order); got != tt.want {
				t.Errorf("UnusableIndex(%v, %d) = %d, want %d", tt.free, tt.order, got, tt.want)
			}
		})
	}
}

func TestFormatIndex(t *testing.T) {
	// What the kernel's "%d.%03d" of (i/1000, i%1000) prints.
	for in, want := range map[int]string{
		-1000: "-1.000", 0: "0.000", 970: "0.970", 5: "0.005", 1000: "1.000",
		-500: "0.-500", -50: "0.-50", -5: "0.-05", 66: "0.066",
	} {
		if got := FormatIndex(in); got != want {
			t.Errorf("FormatIndex(%d) = %q, want %q", in, got, want)
		}
	}
}

// fragmentation_score_node by hand: node 0's small zone has only order-0
// free pages (extfrag 100), its large zone free order-9 blocks (extfrag 0):
// 100*100/(100+300+1) = 24; node 1: 100*10/11 = 90.
func TestFragmentationScores(t *testing.T) {
	s := &Snapshot{PageSize: 4096, Zones: []Zone{
		{Node: 0, Name: "DMA32", Present: 100, FreeBlocks: []uint64{50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{Node: 0, Name: "Normal", Present: 300, FreeBlocks: []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0}},
		{Node: 0, Name: "Movable"}, // unpopulated
		{Node: 1, Name: "Normal", Present: 10, FreeBlocks: []uint64{5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}}
	got := s.FragmentationScores()
	want := []NodeScore{{0, 24}, {1, 90}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FragmentationScores = %v, want %v", got, want)
	}
	if e := ExtfragForOrder([]uint64{4, 0, 1}, 1); e != 50 { // 8 free pages, 4 in an order-2 block
		t.Errorf("ExtfragForOrder = %d, want 50", e)
	}
	if l, h := ProactiveMarks(20); l != 80 || h != 90 {
		t.Errorf("ProactiveMarks(20) = %d, %d", l, h)
	}
	if l, h := ProactiveMarks(100); l != 5 || h != 15 {
		t.Errorf("ProactiveMarks(100) = %d, %d", l, h)
	}
	if PMDOrder(4096) != 9 || PMDOrder(65536) != 13 {
		t.Errorf("PMDOrder: %d %d", PMDOrder(4096), PMDOrder(65536))
	}
}
