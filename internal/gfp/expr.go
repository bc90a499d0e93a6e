package gfp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnresolved reports an identifier in a flag expression that the enum map
// does not name. Kernels 6.10 to 6.13 print ___GFP_*_BIT enum names in the
// format file instead of numbers; the caller retries with EnumBits from BTF.
var ErrUnresolved = errors.New("unresolved identifier")

// maxDepth bounds the recursion of the expression parser so that hostile or
// corrupt input cannot exhaust the stack. Real tables nest about 10 deep.
const maxDepth = 200

// exprParser evaluates the C constant expressions the kernel's preprocessor
// leaves in a __print_flags table: integer literals with u/U/l/L suffixes,
// casts such as "( unsigned long)" or "( gfp_t)", parentheses, | ^ & << >>
// + - ~ and enum names resolved through enums. Values are unsigned 64-bit,
// like the unsigned long the kernel compares them with.
type exprParser struct {
	s     string
	pos   int
	enums map[string]uint64
	depth int
}

func (p *exprParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *exprParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *exprParser) peek() byte {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *exprParser) expect(c byte) error {
	if p.peek() != c {
		return p.errorf("want %q", c)
	}
	p.pos++
	return nil
}

func (p *exprParser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("expression nested deeper than %d", maxDepth)
	}
	return nil
}

func (p *exprParser) leave() { p.depth-- }

// binary parses a left-associative chain of one precedence level.
func (p *exprParser) binary(next func() (uint64, error), ops ...string) (uint64, error) {
	v, err := next()
	if err != nil {
		return 0, err
	}
	for {
		p.skipSpace()
		op := ""
		for _, o := range ops {
			if strings.HasPrefix(p.s[p.pos:], o) {
				op = o
				break
			}
		}
		// "&&" and "||" are not part of the subset: stop rather than
		// misread them as two bitwise operators.
		if op == "" || (len(op) == 1 && p.pos+1 < len(p.s) && p.s[p.pos+1] == op[0] && (op == "&" || op == "|")) {
			return v, nil
		}
		p.pos += len(op)
		w, err := next()
		if err != nil {
			return 0, err
		}
		switch op {
		case "|":
			v |= w
		case "^":
			v ^= w
		case "&":
			v &= w
		case "<<", ">>":
			if w >= 64 {
				return 0, p.errorf("shift by %d", w)
			}
			if op == "<<" {
				v <<= w
			} else {
				v >>= w
			}
		case "+":
			v += w
		case "-":
			v -= w
		}
	}
}

func (p *exprParser) expr() (uint64, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	defer p.leave()
	return p.or()
}

func (p *exprParser) or() (uint64, error)  { return p.binary(p.xor, "|") }
func (p *exprParser) xor() (uint64, error) { return p.binary(p.and, "^") }
func (p *exprParser) and() (uint64, error) { return p.binary(p.shift, "&") }
func (p *exprParser) shift() (uint64, error) {
	return p.binary(p.add, "<<", ">>")
}
func (p *exprParser) add() (uint64, error) { return p.binary(p.unary, "+", "-") }

func (p *exprParser) unary() (uint64, error) {
	if err := p.enter(); err != nil {
		return 0, err
	}
	defer p.leave()
	switch c := p.peek(); c {
	case '~', '-', '+', '!':
		p.pos++
		v, err := p.unary()
		if err != nil {
			return 0, err
		}
		switch c {
		case '~':
			return ^v, nil
		case '-':
			return -v, nil
		case '!':
			if v == 0 {
				return 1, nil
			}
			return 0, nil
		}
		return v, nil
	case '(':
		if end, ok := p.castEnd(); ok {
			// A cast changes nothing for the values in these tables:
			// every one fits the unsigned long the kernel compares with.
			p.pos = end
			return p.unary()
		}
		p.pos++
		v, err := p.expr()
		if err != nil {
			return 0, err
		}
		return v, p.expect(')')
	case 0:
		return 0, p.errorf("unexpected end of expression")
	}
	return p.primary()
}

// typeWords are the identifiers that may appear inside a cast. Anything
// ending in _t (gfp_t, u64...) is a type too.
var typeWords = map[string]bool{
	"unsigned": true, "signed": true, "long": true, "int": true, "short": true,
	"char": true, "void": true, "const": true, "volatile": true,
	"__force": true, "__bitwise": true, "struct": true,
	"u8": true, "u16": true, "u32": true, "u64": true,
	"__u8": true, "__u16": true, "__u32": true, "__u64": true,
}

func isTypeWord(w string) bool {
	return typeWords[w] || strings.HasSuffix(w, "_t")
}

// castEnd reports whether the parenthesis at p.pos opens a cast, and where
// the cast ends. "( gfp_t)" is a cast; "(___GFP_IO_BIT)" and "(1UL)" are not.
func (p *exprParser) castEnd() (int, bool) {
	i := p.pos + 1
	words := 0
	for i < len(p.s) {
		c := p.s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '*':
			i++
		case c == ')':
			return i + 1, words > 0
		case isIdentStart(c):
			j := i
			for j < len(p.s) && isIdentChar(p.s[j]) {
				j++
			}
			w := p.s[i:j]
			if _, isEnum := p.enums[w]; isEnum || !isTypeWord(w) {
				return 0, false
			}
			words++
			i = j
		default:
			return 0, false
		}
	}
	return 0, false
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || ('0' <= c && c <= '9') }

func (p *exprParser) primary() (uint64, error) {
	p.skipSpace()
	start := p.pos
	c := p.s[p.pos]
	switch {
	case '0' <= c && c <= '9':
		for p.pos < len(p.s) && isIdentChar(p.s[p.pos]) {
			p.pos++
		}
		lit := strings.TrimRight(p.s[start:p.pos], "uUlL")
		v, err := strconv.ParseUint(lit, 0, 64)
		if err != nil {
			return 0, p.errorf("bad number %q", p.s[start:p.pos])
		}
		return v, nil
	case isIdentStart(c):
		for p.pos < len(p.s) && isIdentChar(p.s[p.pos]) {
			p.pos++
		}
		name := p.s[start:p.pos]
		if v, ok := p.enums[name]; ok {
			return v, nil
		}
		if name == "NULL" {
			return 0, nil
		}
		return 0, fmt.Errorf("offset %d: %w %s", start, ErrUnresolved, name)
	}
	return 0, p.errorf("unexpected %q", c)
}

// stringLit parses a C string literal at p.pos.
func (p *exprParser) stringLit() (string, error) {
	if err := p.expect('"'); err != nil {
		return "", err
	}
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.pos >= len(p.s) {
				return "", p.errorf("unterminated string")
			}
			e := p.s[p.pos]
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated string")
}
