package snapshot

import "math/bits"

// FreePages is the number of free pages in the zone's free lists: the sum of
// FreeBlocks[o] << o, which is the free_pages the kernel's indices use.
func (z *Zone) FreePages() uint64 {
	var n uint64
	for o, b := range z.FreeBlocks {
		if o < 64 {
			n += b << o
		}
	}
	return n
}

// FragIndex is the kernel fragmentation index of this zone for an order, in
// thousandths (see FragmentationIndex).
func (z *Zone) FragIndex(order int) int { return FragmentationIndex(z.FreeBlocks, order) }

// Unusable is the kernel unusable free space index of this zone for an
// order, in thousandths (see UnusableIndex).
func (z *Zone) Unusable(order int) int { return UnusableIndex(z.FreeBlocks, order) }

// LargestFreeOrder is the highest order with a free block, -1 if none.
func (z *Zone) LargestFreeOrder() int {
	for o := len(z.FreeBlocks) - 1; o >= 0; o-- {
		if z.FreeBlocks[o] != 0 {
			return o
		}
	}
	return -1
}

// Empty reports whether the zone has no memory to give: nothing managed and
// nothing free (the Movable and Device zones of most machines).
func (z *Zone) Empty() bool {
	return z.Managed == 0 && z.LargestFreeOrder() < 0
}

// FreeCounter is the free page count the watermark check uses: zoneinfo's
// NR_FREE_PAGES when known, else the free lists' sum.
func (z *Zone) FreeCounter() uint64 {
	if z.NrFree != 0 {
		return z.NrFree
	}
	return z.FreePages()
}

// aboveMin is the order-independent part of __zone_watermark_ok
// (mm/page_alloc.c) with the min watermark and no lowmem reserve: after
// taking the 2^order pages asked for, more than min pages must stay free.
// It is true when the zone has no known watermarks.
func (z *Zone) aboveMin(order int) bool {
	if !z.HaveWatermarks {
		return true
	}
	free := z.FreeCounter()
	if order >= 64 {
		return false
	}
	need, carry := bits.Add64(z.Min, uint64(1)<<order-1, 0)
	return carry == 0 && free > need
}
