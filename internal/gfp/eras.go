package gfp

import (
	"strings"

	"github.com/fragscope/fragscope/internal/event"
)

// The per-era tables are for logs and recordings of kernels whose own table
// is not at hand (a kernel log from a 3.10 node, an OOM report pasted into a
// bug). They are generated from each kernel's headers, never typed in:
//
//	include/linux/gfp.h (gfp_types.h from 6.0): the ___GFP_* bits (#defines,
//	    or from 6.10 the enum ___GFP_*_BIT with BIT()) and the __GFP_*/GFP_*
//	    combinations;
//	include/trace/events/gfpflags.h (before 4.8) or mmflags.h: show_gfp_flags,
//	    whose entry order is the order the kernel prints names in;
//	include/linux/mmzone.h: enum migratetype.
//
// To regenerate, put each era's headers under /tmp/gfp-src/<era>/ (same
// relative paths, plus a SOURCE file with repo=, commit=, makefile= lines)
// and run go generate in this directory. The trees used are cited in
// eras_generated.go above each era; from a clone of one of them:
//
//	git -C CLONE show COMMIT:include/linux/gfp.h > /tmp/gfp-src/ERA/include/linux/gfp.h
//
// and likewise for the other files. The headers are kernel code: they stay
// outside the repository; only the evaluated names and values are committed.
//
//go:generate go run ./internal/gengfp -src /tmp/gfp-src -o eras_generated.go

// Era is one kernel version's gfp flag table and migratetype order.
type Era struct {
	Name         string // "4.19"; "3.10.0-el7" for RHEL 7's own tree
	Major, Minor int
	// Distro restricts the era to releases of one distribution ("el7"
	// matches "3.10.0-514.el7.x86_64"); empty for upstream.
	Distro string
	// Source cites the tree and files the table was evaluated from.
	Source string
	// Config lists the CONFIG_* options taken as set (=y) when evaluating
	// conditional bits; every other option is taken as unset.
	Config string
	// Flags is the show_gfp_flags table in kernel print order, entries that
	// evaluate to 0 included, as ParseTracefsFormat returns a live one.
	Flags []event.Flag
	// Migratetypes are the enum migratetype names indexed by value.
	Migratetypes []string
}

// Eras returns the generated tables, oldest first. The caller must not
// modify them.
func Eras() []Era { return eras }

// ForRelease returns the gfp flag table for a kernel release string such as
// "3.10.0-514.el7.x86_64" or "5.10.0-28-amd64": the nearest era at or below
// the release's major.minor, or RHEL 7's own table for an el7 release. era
// names the table; for a release older than every table it is the oldest,
// with a note in parentheses. ok is false when the release cannot be parsed.
//
// A release between two eras gets the older one's table, which is wrong
// where the bits moved in between (4.10 and 4.13 renumbered bits after 4.9,
// 4.15 removed __GFP_COLD/__GFP_NOTRACK after 4.14): prefer the kernel's own
// table (tracefs, or the names a log prints) whenever there is one.
func ForRelease(release string) (flags []event.Flag, era string, ok bool) {
	e, note, ok := eraFor(release)
	if !ok {
		return nil, "", false
	}
	if note != "" {
		return e.Flags, e.Name + " (" + note + ")", true
	}
	return e.Flags, e.Name, true
}

func eraFor(release string) (Era, string, bool) {
	major, minor, ok := parseRelease(release)
	if !ok || len(eras) == 0 {
		return Era{}, "", false
	}
	at := func(e Era) bool { return e.Major < major || (e.Major == major && e.Minor <= minor) }
	var best *Era
	for i := range eras {
		e := &eras[i]
		if e.Distro != "" {
			if e.Major == major && e.Minor == minor && strings.Contains(release, "."+e.Distro) {
				return *e, "", true
			}
			continue
		}
		if at(*e) {
			best = e
		}
	}
	if best == nil {
		for i := range eras {
			if eras[i].Distro == "" {
				return eras[i], "oldest table; " + release + " predates it", true
			}
		}
		return Era{}, "", false
	}
	return *best, "", true
}
