package procfs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ZoneInfo is the part of one /proc/zoneinfo section that matters for
// allocation: free pages and the watermarks, all in pages.
type ZoneInfo struct {
	Node int
	Zone string
	// Free is "pages free" (the NR_FREE_PAGES counter the watermark check
	// reads). Kernels that printed no "pages free" line fall back to the
	// zone's "nr_free_pages" stat.
	Free    uint64
	Min     uint64
	Low     uint64
	High    uint64
	Spanned uint64
	Present uint64
	Managed uint64
	// StartPFN is "start_pfn:", the zone's first page frame: what the
	// compaction tracepoints name a zone by (zone_start). 0 when absent
	// (kernels before 4.1 did not print it).
	StartPFN uint64
	// Protection is the "protection: (a, b, ...)" line: the zone's
	// lowmem_reserve[] in pages, indexed by the highest zone (enum
	// zone_type) an allocation may use; nil when the section had none.
	// Every kernel since 2.6.x prints it (zoneinfo_show_print, mm/vmstat.c
	// 3.10 and 6.12), one entry per MAX_NR_ZONES.
	Protection []uint64
	// FreeCMA is the zone stat "nr_free_cma" (NR_FREE_CMA_PAGES, printed
	// in every kernel since 3.7 with or without CONFIG_CMA); 0 when absent.
	FreeCMA uint64
	// ReservedHighatomic is "nr_reserved_highatomic" if the section prints
	// it (no mainline kernel up to 6.18 does; vendor kernels may); 0 when
	// absent. HaveReservedHighatomic says whether it was there.
	ReservedHighatomic     uint64
	HaveReservedHighatomic bool
	// HaveFree and HaveWatermarks say whether the section had those lines;
	// a section cut short (or a very old kernel) may lack them.
	HaveFree       bool
	HaveWatermarks bool
}

// ParseZoneinfo parses /proc/zoneinfo. Every "Node N, zone NAME" header
// starts a section, populated or not (Movable and Device zones are usually
// empty and print only the watermark block).
//
// Layouts differ across versions: 3.10 prints "pages free" right after the
// header; 4.8+ inserts "per-node stats" before it for the node's first
// populated zone; 5.0 adds "boost", 6.x "promo"; unpopulated zones stop after
// "protection:". Lines are therefore matched by key, not by position, and
// unknown keys are ignored. Keys ending in ':' (the pagesets' "high:") are a
// different namespace and never match a watermark.
func ParseZoneinfo(r io.Reader) ([]ZoneInfo, error) {
	var (
		out       []ZoneInfo
		cur       *ZoneInfo
		nrFree    uint64
		haveNr    bool
		haveWmark [3]bool
	)
	finish := func() {
		if cur == nil {
			return
		}
		if !cur.HaveFree && haveNr {
			cur.Free, cur.HaveFree = nrFree, true
		}
		cur.HaveWatermarks = haveWmark[0] && haveWmark[1] && haveWmark[2]
	}
	err := lines(r, "zoneinfo", func(_ int, line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if f[0] == "Node" {
			node, zone, rest, err := parseNodeZone(f)
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return fmt.Errorf("zone %q: unexpected %q after header", zone, strings.Join(rest, " "))
			}
			finish()
			out = append(out, ZoneInfo{Node: node, Zone: zone})
			cur = &out[len(out)-1]
			nrFree, haveNr, haveWmark = 0, false, [3]bool{}
			return nil
		}
		if cur == nil {
			return errors.New("data before the first \"Node N, zone NAME\" header")
		}
		if f[0] == "start_pfn:" && len(f) == 2 {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return fmt.Errorf("zone %q: start_pfn: invalid value %q", cur.Zone, f[1])
			}
			cur.StartPFN = v
			return nil
		}
		if f[0] == "protection:" {
			p, err := parseProtection(strings.TrimPrefix(strings.TrimSpace(line), "protection:"))
			if err != nil {
				return fmt.Errorf("zone %q: %w", cur.Zone, err)
			}
			cur.Protection = p
			return nil
		}
		key, val, ok := keyValue(f)
		if !ok {
			return nil
		}
		var dst *uint64
		switch key {
		case "pages free":
			dst, cur.HaveFree = &cur.Free, true
		case "min":
			dst, haveWmark[0] = &cur.Min, true
		case "low":
			dst, haveWmark[1] = &cur.Low, true
		case "high":
			dst, haveWmark[2] = &cur.High, true
		case "spanned":
			dst = &cur.Spanned
		case "present":
			dst = &cur.Present
		case "managed":
			dst = &cur.Managed
		case "nr_free_pages":
			dst, haveNr = &nrFree, true
		case "nr_free_cma":
			dst = &cur.FreeCMA
		case "nr_reserved_highatomic":
			dst, cur.HaveReservedHighatomic = &cur.ReservedHighatomic, true
		default:
			return nil
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("zone %q: %s: invalid value %q", cur.Zone, key, val)
		}
		*dst = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	finish()
	return out, nil
}

// keyValue splits a zoneinfo line into key and value: "pages free 3840" is
// the one two-word key, everything else is "key value".
func keyValue(f []string) (key, val string, ok bool) {
	switch {
	case len(f) == 3 && f[0] == "pages" && f[1] == "free":
		return "pages free", f[2], true
	case len(f) == 2:
		return f[0], f[1], true
	}
	return "", "", false
}

// parseProtection reads "(0, 2815, 15868, 15868)": the kernel prints each
// lowmem_reserve entry with %ld, comma-separated, in parentheses.
func parseProtection(s string) ([]uint64, error) {
	s = strings.TrimSpace(s)
	inner, ok := strings.CutPrefix(s, "(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	if !ok {
		return nil, fmt.Errorf("protection: want \"(a, b, ...)\", got %q", s)
	}
	parts := strings.Split(inner, ",")
	out := make([]uint64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("protection: entry %d: invalid value %q", i, strings.TrimSpace(p))
		}
		out[i] = v
	}
	return out, nil
}
