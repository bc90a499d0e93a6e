package gfp

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fragscope/fragscope/internal/event"
)

// maxFormatSize caps how much of a format file is read. The 6.18
// mm_page_alloc format is about 8 KiB.
const maxFormatSize = 1 << 20

// ParseTracefsFormat reads a tracefs event format file (such as
// events/kmem/mm_page_alloc/format) and returns the gfp flag table of its
// __print_flags(REC->gfp_flags, ...) call in kernel order. The entries are C
// expressions; identifiers in them make it fail with ErrUnresolved, see
// ParseTracefsFormatEnums.
func ParseTracefsFormat(r io.Reader) ([]event.Flag, error) {
	return ParseTracefsFormatEnums(r, nil)
}

// ParseTracefsFormatEnums is ParseTracefsFormat with enum constants (the
// ___GFP_*_BIT names from EnumBits) available to the expressions. Kernels
// 6.10 to 6.13 print those names instead of numbers.
//
// Entries whose value is 0 are kept: the caller sees the table as the kernel
// printed it (NewTable ignores them, see there).
func ParseTracefsFormatEnums(r io.Reader, enums map[string]uint64) ([]event.Flag, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFormatSize))
	if err != nil {
		return nil, fmt.Errorf("read format: %w", err)
	}
	text := string(data)
	if i := strings.Index(text, "print fmt:"); i >= 0 {
		text = text[i:]
	}
	// mm_page_alloc has one table; prefer the one for the gfp_flags field
	// so that other events (page flags, vma flags) are not picked up.
	start := strings.Index(text, "__print_flags(REC->gfp_flags")
	if start < 0 {
		start = strings.Index(text, "__print_flags(")
	}
	if start < 0 {
		return nil, errors.New("parse format: no __print_flags table")
	}
	p := &exprParser{s: text, pos: start + len("__print_flags("), enums: enums}
	flags, err := p.flagTable()
	if err != nil {
		return nil, fmt.Errorf("parse format: %w", err)
	}
	if len(flags) == 0 {
		return nil, errors.New("parse format: empty __print_flags table")
	}
	return flags, nil
}

// flagTable parses `value, "delim", {expr, "name"}, ... )` after the opening
// parenthesis of __print_flags.
func (p *exprParser) flagTable() ([]event.Flag, error) {
	if err := p.skipArg(); err != nil {
		return nil, err
	}
	if err := p.expect(','); err != nil {
		return nil, err
	}
	if _, err := p.stringLit(); err != nil {
		return nil, fmt.Errorf("delimiter: %w", err)
	}
	var flags []event.Flag
	for {
		switch p.peek() {
		case ')':
			return flags, nil
		case ',':
			p.pos++
			continue
		case '{':
			p.pos++
		default:
			return nil, p.errorf("want '{' or ')'")
		}
		v, err := p.expr()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", len(flags), err)
		}
		if err := p.expect(','); err != nil {
			return nil, fmt.Errorf("entry %d: %w", len(flags), err)
		}
		if p.peek() != '"' {
			// The terminator: { 0, NULL } (6.x) or { -1, NULL }. Older
			// kernels print no terminator at all: the table ends at ')'.
			return flags, nil
		}
		name, err := p.stringLit()
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", len(flags), err)
		}
		if err := p.expect('}'); err != nil {
			return nil, fmt.Errorf("entry %d: %w", len(flags), err)
		}
		flags = append(flags, event.Flag{Name: name, Value: v})
	}
}

// skipArg moves past one argument (the flags value, e.g. REC->gfp_flags)
// up to the comma that ends it, honouring nested parentheses.
func (p *exprParser) skipArg() error {
	depth := 0
	for ; p.pos < len(p.s); p.pos++ {
		switch p.s[p.pos] {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return p.errorf("unbalanced ')'")
			}
		case ',':
			if depth == 0 {
				return nil
			}
		}
	}
	return p.errorf("unexpected end of format")
}
