package snapshot

import "strconv"

// contigInfo mirrors struct contig_page_info in mm/vmstat.c.
type contigInfo struct {
	freePages          uint64
	freeBlocksTotal    uint64
	freeBlocksSuitable uint64
}

// fillContigInfo is fill_contig_page_info: free pages, free blocks, and how
// many blocks of 2^suitable pages the blocks of order >= suitable amount to.
// The kernel uses unsigned long (64-bit) arithmetic; uint64 wraps the same
// way on absurd inputs instead of panicking. The function and the two
// indices below read the same in the 3.10, 4.x, 6.5 and 6.18 sources apart
// from the loop bound (order < MAX_ORDER, then <= MAX_ORDER in 6.4-6.7 when
// MAX_ORDER changed meaning, then < NR_PAGE_ORDERS: all "every order the
// zone has", which is len(free) here) and a data_race() annotation.
func fillContigInfo(free []uint64, suitable int) contigInfo {
	var info contigInfo
	for order, blocks := range free {
		if order >= 64 {
			break // blocks << order is 0 in Go, undefined in C: no real kernel has 64 orders
		}
		info.freeBlocksTotal += blocks
		info.freePages += blocks << order
		if order >= suitable {
			info.freeBlocksSuitable += blocks << (order - suitable)
		}
	}
	return info
}

// FragmentationIndex is the kernel's fragmentation index (mm/vmstat.c
// __fragmentation_index) for an allocation of the given order from a zone
// whose free blocks per order are free, in thousandths:
//
//   - 0 when there are no free blocks at all (or order is out of range, where
//     the kernel WARNs and returns 0);
//   - -1000 when a free block of order >= order exists: the request would be
//     served (watermarks permitting), the index does not apply;
//   - otherwise 1000 - (1000 + free_pages*1000/2^order) / free_blocks, with
//     both divisions truncating (div_u64). Towards 1000 the request fails
//     because of fragmentation, towards 0 for lack of memory.
//
// The last formula can go slightly negative (one free order-5 block asked for
// order 6 gives 1000 - 1500 = -500); the kernel returns that as is, so does this.
func FragmentationIndex(free []uint64, order int) int {
	if order < 0 || order >= len(free) || order >= 64 {
		return 0
	}
	info := fillContigInfo(free, order)
	if info.freeBlocksTotal == 0 {
		return 0
	}
	if info.freeBlocksSuitable != 0 {
		return -1000
	}
	requested := uint64(1) << order
	// C: 1000 - div_u64(1000 + div_u64(free_pages * 1000ULL, requested), total)
	// is computed in u64 and converted to int: same as int64 of the wrapped u64.
	return int(int32(1000 - (1000+info.freePages*1000/requested)/info.freeBlocksTotal))
}

// UnusableIndex is the kernel's unusable free space index (mm/vmstat.c
// unusable_free_index) in thousandths: the share of free memory that is in
// blocks too small for an allocation of the given order. 1000 when nothing is
// free ("no free memory is interpreted as all free memory is unusable").
func UnusableIndex(free []uint64, order int) int {
	if order < 0 || order >= 64 {
		return 1000
	}
	info := fillContigInfo(free, order)
	if info.freePages == 0 {
		return 1000
	}
	return int(int32((info.freePages - info.freeBlocksSuitable<<order) * 1000 / info.freePages))
}

// FormatIndex renders an index the way the debugfs extfrag files do:
// printf("%d.%03d", index/1000, index%1000) with C's truncating division,
// so -1000 is "-1.000", 970 is "0.970" and the rare -500 is "0.-500".
func FormatIndex(index int) string {
	b := strconv.AppendInt(nil, int64(index/1000), 10)
	b = append(b, '.')
	frac := index % 1000
	// %03d pads with zeros after the sign, to 3 characters in all.
	if frac < 0 {
		b = append(b, '-')
		frac = -frac
		if frac < 10 {
			b = append(b, '0')
		}
	} else {
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
	}
	return string(strconv.AppendInt(b, int64(frac), 10))
}

// ExtfragForOrder is the kernel's extfrag_for_order (mm/vmstat.c, 5.9+):
// the percentage of free memory in blocks smaller than the order, 0 when
// nothing is free. It is UnusableIndex in hundredths, truncated (div_u64).
func ExtfragForOrder(free []uint64, order int) int {
	if order < 0 || order >= 64 {
		return 0
	}
	info := fillContigInfo(free, order)
	if info.freePages == 0 {
		return 0
	}
	return int((info.freePages - info.freeBlocksSuitable<<order) * 100 / info.freePages)
}

// PMDOrder is COMPACTION_HPAGE_ORDER where THP is built in: HPAGE_PMD_ORDER,
// PMD_SHIFT - PAGE_SHIFT, which on 64-bit kernels is the page shift less 3
// (a page-table page holds PAGE_SIZE/8 entries): 9 with 4 KiB pages, 13
// with 64 KiB. Kernels without THP use HUGETLB_PAGE_ORDER, the same on
// x86_64 and arm64.
func PMDOrder(pageSize uint32) int {
	if pageSize == 0 {
		return 9
	}
	shift := 0
	for p := pageSize; p > 1; p >>= 1 {
		shift++
	}
	return shift - 3
}

// NodeScore is one node's proactive-compaction fragmentation score.
type NodeScore struct {
	Node  int `json:"node"`
	Score int `json:"score"` // 0-100
}

// FragmentationScores computes the kernel's proactive-compaction score per
// node (mm/compaction.c fragmentation_score_node, 5.9+): the sum over the
// node's populated zones of fragmentation_score_zone_weighted, which is
// present_pages * extfrag_for_order(zone, COMPACTION_HPAGE_ORDER) /
// (node_present_pages + 1), in integer arithmetic. kcompactd compacts a node
// proactively while its score is above the high mark (see ProactiveMarks).
// Zones without a present page count (a snapshot from a kernel log) count
// as unpopulated, as populated_zone() would say.
func (s *Snapshot) FragmentationScores() []NodeScore {
	order := PMDOrder(s.PageSize)
	nodePresent := map[int]uint64{}
	var nodes []int
	for i := range s.Zones {
		z := &s.Zones[i]
		if _, ok := nodePresent[z.Node]; !ok {
			nodes = append(nodes, z.Node)
		}
		nodePresent[z.Node] += z.Present
	}
	var out []NodeScore
	for _, n := range nodes {
		if nodePresent[n] == 0 {
			continue
		}
		score := 0
		for i := range s.Zones {
			z := &s.Zones[i]
			if z.Node != n || z.Present == 0 {
				continue
			}
			score += int(z.Present * uint64(ExtfragForOrder(z.FreeBlocks, order)) / (nodePresent[n] + 1))
		}
		out = append(out, NodeScore{Node: n, Score: score})
	}
	return out
}

// ProactiveMarks are fragmentation_score_wmark's low and high marks for a
// vm.compaction_proactiveness: low = max(100 - proactiveness, 5), high =
// min(low + 10, 100). Proactiveness 0 turns proactive compaction off.
func ProactiveMarks(proactiveness int) (low, high int) {
	low = max(100-proactiveness, 5)
	return low, min(low+10, 100)
}
