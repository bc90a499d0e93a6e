package allocrule

import (
	"fmt"
	"strconv"
	"strings"
)

// Era is the kernel version whose allocator rule applies.
type Era struct {
	Release      string // as given: "3.10.0-514.el7.x86_64", "6.18.44-..."
	Major, Minor int
	// Known is false when Release did not parse; the newest rule applies
	// then (Newest reports it) and a reason says so.
	Known bool
}

// newest is the latest kernel whose page_alloc.c this package was checked
// against (Debian's 6.12.117 source, the 6.18 development machine's /proc).
var newest = Era{Release: "6.18", Major: 6, Minor: 18, Known: true}

// ParseRelease reads the major and minor version from a kernel release
// string: "3.10.0-514.el7.x86_64", "4.4.0-31-generic", "6.18.44-fc-v1045".
func ParseRelease(release string) Era {
	e := Era{Release: release}
	maj, rest, ok := strings.Cut(strings.TrimSpace(release), ".")
	if !ok {
		return e
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	m, err1 := strconv.Atoi(maj)
	n, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil || end == 0 || m < 2 {
		return e
	}
	e.Major, e.Minor, e.Known = m, n, true
	return e
}

// rule is the era whose code is followed: the release itself, or the
// newest when it is unknown.
func (e Era) rule() Era {
	if !e.Known {
		return newest
	}
	return e
}

// AtLeast reports whether the rule's kernel is major.minor or later.
func (e Era) AtLeast(major, minor int) bool {
	r := e.rule()
	return r.Major > major || (r.Major == major && r.Minor >= minor)
}

// String names the kernel the rule follows.
func (e Era) String() string {
	if !e.Known {
		if e.Release == "" {
			return "unknown kernel (newest rule, " + newest.Release + ")"
		}
		return fmt.Sprintf("unparsable release %q (newest rule, %s)", e.Release, newest.Release)
	}
	return fmt.Sprintf("%d.%d", e.Major, e.Minor)
}
