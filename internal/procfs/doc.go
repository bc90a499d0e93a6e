// Package procfs parses the kernel's text views of free memory: /proc/buddyinfo,
// /proc/pagetypeinfo, /proc/zoneinfo, the debugfs extfrag files and the
// free-list lines of a Mem-Info dump (page allocation failure, OOM report).
//
// Every parser takes an io.Reader and keeps no state between calls, so the same
// code reads the live system, a copied tree under testdata and a saved log.
// Parsers never panic on bad input: a malformed line yields a *ParseError that
// names the file kind and the 1-based line number, e.g.
// "buddyinfo line 3: zone "Normal": order 2: invalid count "x"".
//
// Formats are taken from mm/vmstat.c (frag_show_print, pagetypeinfo_show,
// zoneinfo_show_print, extfrag_show_print) and mm/show_mem.c / mm/page_alloc.c
// (show_free_areas) and were checked against 3.10, 4.x, 5.x and 6.18 output.
package procfs
