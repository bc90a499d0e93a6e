package slabname

import "strings"

const (
	ptrToken   = "<ptr>"
	memcgToken = "(<memcg>)"
)

// Group returns the pattern of a slab cache name: kernel pointers become
// "<ptr>" and a trailing per-memcg suffix "(<id>:<cgroup>)" becomes
// "(<memcg>)". Names without either are returned unchanged and without
// allocating.
//
// A kernel pointer is a run of at least 8 hex digits starting with "ffff"
// (x86_64 and arm64 kernel addresses as %p printed them before 4.15), or
// exactly 16 hex digits starting with "00000000" (the hashed %p of 4.15+),
// with or without "0x", not glued to other letters or digits.
func Group(name string) string {
	base, memcg := splitMemcg(name)
	if !memcg && !strings.Contains(base, "ffff") && !strings.Contains(base, "00000000") {
		return name
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(base); {
		start, end, ok := pointerAt(base, i)
		if !ok {
			i++
			continue
		}
		if b.Cap() == 0 {
			b.Grow(len(name)) // tokens are shorter than what they replace
		}
		b.WriteString(base[last:start])
		b.WriteString(ptrToken)
		last, i = end, end
	}
	if b.Cap() == 0 {
		if !memcg {
			return name
		}
		b.Grow(len(base) + len(memcgToken))
	}
	b.WriteString(base[last:])
	if memcg {
		b.WriteString(memcgToken)
	}
	return b.String()
}

// splitMemcg cuts the per-memcg suffix "(<digits>:<anything>)" that 3.10
// ("%s(%d:%s)", memcg css id and cgroup name) and 3.19..5.8 ("%s(%llu:%s)",
// css serial number) append to a root cache's name.
func splitMemcg(name string) (base string, ok bool) {
	if !strings.HasSuffix(name, ")") {
		return name, false
	}
	open := strings.LastIndexByte(name, '(')
	if open < 0 {
		return name, false
	}
	inner := name[open+1 : len(name)-1]
	id, _, found := strings.Cut(inner, ":")
	if !found || id == "" || strings.Trim(id, "0123456789") != "" {
		return name, false
	}
	return name[:open], true
}

// pointerAt reports whether a kernel pointer starts at s[i] (counting an
// optional "0x"), and returns the span to replace.
func pointerAt(s string, i int) (start, end int, ok bool) {
	if i > 0 && isAlnum(s[i-1]) {
		return 0, 0, false
	}
	start, j := i, i
	if strings.HasPrefix(s[i:], "0x") {
		j += 2
	}
	k := j
	for k < len(s) && isHex(s[k]) {
		k++
	}
	if k < len(s) && isAlnum(s[k]) {
		return 0, 0, false // glued to a word: not a pointer on its own
	}
	digits := s[j:k]
	switch {
	case len(digits) >= 8 && strings.HasPrefix(digits, "ffff"):
	case len(digits) == 16 && strings.HasPrefix(digits, "00000000"):
	default:
		return 0, 0, false
	}
	return start, k, true
}

func isHex(c byte) bool {
	// %p prints lower case, and so does every cache name seen with a pointer.
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f')
}

func isAlnum(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
