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
