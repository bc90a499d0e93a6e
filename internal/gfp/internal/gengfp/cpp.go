package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The subset of the C preprocessor that gfp.h, gfp_types.h, mmzone.h and
// the trace headers need: #define (object- and function-like, with # and
// ##), #undef, #ifdef/#ifndef/#if/#elif/#else/#endif over a fixed kernel
// config, and enums. #include is ignored: each header is fed explicitly, in
// the order the kernel includes them. It is not a general C preprocessor;
// what it does not understand in an #if counts as false.

type macro struct {
	fn     bool
	params []string
	body   string
}

type cpp struct {
	macros map[string]*macro
	config map[string]bool // CONFIG_* symbols set to y
	enums  map[string]uint64
	// enumLists keeps each enum's constants in declaration order, keyed by
	// its first constant, for enum migratetype.
	enumLists map[string][]enumConst
}

type enumConst struct {
	name  string
	value uint64
}

func newCPP(config []string) *cpp {
	p := &cpp{macros: map[string]*macro{}, config: map[string]bool{}, enums: map[string]uint64{}, enumLists: map[string][]enumConst{}}
	for _, c := range config {
		p.config[c] = true
		p.macros[c] = &macro{body: "1"}
	}
	// include/vdso/bits.h: BIT(nr) is (UL(1) << (nr)). bits.h itself is not
	// read, so its one macro the gfp headers use (6.10+) is defined here.
	p.macros["BIT"] = &macro{fn: true, params: []string{"nr"}, body: "(1UL << (nr))"}
	return p
}

// file runs one header: directives update the macro table and the active
// text's enums are recorded.
func (p *cpp) file(src string) error {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\\\n", " ")
	src = stripComments(src)
	type cond struct{ active, taken, parent bool }
	var stack []cond
	active := true
	var text strings.Builder
	for n, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "#") {
			if active {
				text.WriteString(line)
				text.WriteByte('\n')
			}
			continue
		}
		t = strings.TrimSpace(t[1:])
		kw, rest := cutWord(t)
		switch kw {
		case "ifdef", "ifndef":
			name, _ := cutWord(rest)
			v := p.defined(name) == (kw == "ifdef")
			stack = append(stack, cond{active: active && v, taken: v, parent: active})
		case "if":
			v := p.evalIf(rest)
			stack = append(stack, cond{active: active && v, taken: v, parent: active})
		case "elif", "else":
			if len(stack) == 0 {
				return fmt.Errorf("line %d: #%s without #if", n+1, kw)
			}
			c := &stack[len(stack)-1]
			v := !c.taken && (kw == "else" || p.evalIf(rest))
			c.active, c.taken = c.parent && v, c.taken || v
		case "endif":
			if len(stack) == 0 {
				return fmt.Errorf("line %d: #endif without #if", n+1)
			}
			stack = stack[:len(stack)-1]
		case "define":
			if active {
				p.define(rest)
			}
		case "undef":
			if active {
				name, _ := cutWord(rest)
				delete(p.macros, name)
			}
		}
		if len(stack) > 0 {
			active = stack[len(stack)-1].active
		} else {
			active = true
		}
	}
	if len(stack) != 0 {
		return fmt.Errorf("%d unterminated #if", len(stack))
	}
	return p.scanEnums(text.String())
}

func (p *cpp) defined(name string) bool {
	_, ok := p.macros[name]
	return ok || p.config[name]
}

func (p *cpp) define(rest string) {
	i := 0
	for i < len(rest) && isIdentChar(rest[i]) {
		i++
	}
	name := rest[:i]
	if name == "" {
		return
	}
	m := &macro{}
	if i < len(rest) && rest[i] == '(' {
		end := strings.IndexByte(rest[i:], ')')
		if end < 0 {
			return
		}
		m.fn = true
		for _, a := range strings.Split(rest[i+1:i+end], ",") {
			if a = strings.TrimSpace(a); a != "" {
				m.params = append(m.params, a)
			}
		}
		i += end + 1
	}
	m.body = strings.TrimSpace(rest[i:])
	p.macros[name] = m
}

// expand macro-expands s. hide holds the macros being expanded, which C
// does not expand again inside themselves.
func (p *cpp) expand(s string, hide map[string]bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			j := skipString(s, i)
			b.WriteString(s[i:j])
			i = j
		case '0' <= c && c <= '9':
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			b.WriteString(s[i:j])
			i = j
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			name := s[i:j]
			m := p.macros[name]
			if m == nil || hide[name] {
				b.WriteString(name)
				i = j
				continue
			}
			inner := with(hide, name)
			if !m.fn {
				b.WriteString(p.expand(m.body, inner))
				i = j
				continue
			}
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n') {
				k++
			}
			if k >= len(s) || s[k] != '(' {
				b.WriteString(name) // a function-like macro's name alone is not a call
				i = j
				continue
			}
			args, end, ok := splitArgs(s, k)
			if !ok {
				b.WriteString(s[i:])
				return b.String()
			}
			b.WriteString(p.expand(p.substitute(m, args, hide), inner))
			i = end
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// substitute puts the arguments into a function-like macro's body: raw for
// # and ##, fully expanded otherwise, as C does.
func (p *cpp) substitute(m *macro, args []string, hide map[string]bool) string {
	idx := map[string]int{}
	for i, name := range m.params {
		idx[name] = i
	}
	arg := func(i int) string {
		if i < len(args) {
			return strings.TrimSpace(args[i])
		}
		return ""
	}
	toks := tokens(m.body)
	var out []string
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == "#" {
			if j := nextTok(toks, i); j >= 0 {
				if a, ok := idx[toks[j]]; ok {
					out = append(out, strconv.Quote(strings.Join(strings.Fields(arg(a)), " ")))
					i = j
					continue
				}
			}
		}
		a, isParam := idx[t]
		if !isParam {
			out = append(out, t)
			continue
		}
		pasted := (prevTok(out) == "##") || (nextTok(toks, i) >= 0 && toks[nextTok(toks, i)] == "##")
		if pasted {
			out = append(out, arg(a))
		} else {
			out = append(out, p.expand(arg(a), hide))
		}
	}
	// Token pasting: drop "##" and the blanks around it.
	var b []string
	for i := 0; i < len(out); i++ {
		if out[i] != "##" {
			b = append(b, out[i])
			continue
		}
		for len(b) > 0 && strings.TrimSpace(b[len(b)-1]) == "" {
			b = b[:len(b)-1]
		}
		j := i + 1
		for j < len(out) && strings.TrimSpace(out[j]) == "" {
			j++
		}
		if j < len(out) && len(b) > 0 {
			b[len(b)-1] += out[j]
		}
		i = j
	}
	return strings.Join(b, "")
}

func prevTok(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		if strings.TrimSpace(out[i]) != "" {
			return out[i]
		}
	}
	return ""
}

func nextTok(toks []string, i int) int {
	for j := i + 1; j < len(toks); j++ {
		if strings.TrimSpace(toks[j]) != "" {
			return j
		}
	}
	return -1
}

// tokens splits a macro body into identifiers, numbers, strings, "##", other
// single characters and runs of blanks.
func tokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		j := i + 1
		switch c := s[i]; {
		case c == '"' || c == '\'':
			j = skipString(s, i)
		case isIdentChar(c):
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
		case c == ' ' || c == '\t' || c == '\n':
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
				j++
			}
		case c == '#' && j < len(s) && s[j] == '#':
			j++
		}
		toks = append(toks, s[i:j])
		i = j
	}
	return toks
}

// splitArgs reads a macro call's arguments from the '(' at open.
func splitArgs(s string, open int) (args []string, end int, ok bool) {
	depth, start := 0, open+1
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '"', '\'':
			i = skipString(s, i) - 1
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
			if depth == 0 {
				return append(args, s[start:i]), i + 1, true
			}
		case ',':
			if depth == 1 {
				args = append(args, s[start:i])
				start = i + 1
			}
		}
	}
	return nil, 0, false
}

// evalIf evaluates an #if expression: defined(), IS_ENABLED(), integers,
// ! && || comparisons and arithmetic. An identifier left after expansion is
// 0, as in C; a parse failure is false.
func (p *cpp) evalIf(expr string) bool {
	expr = p.replaceDefined(expr)
	e := &ifExpr{s: p.expand(expr, nil)}
	v, ok := e.parse(0)
	return ok && v != 0
}

func (p *cpp) replaceDefined(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !isIdentStart(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && isIdentChar(s[j]) {
			j++
		}
		w := s[i:j]
		if w != "defined" && w != "IS_ENABLED" {
			b.WriteString(w)
			i = j
			continue
		}
		k := j
		for k < len(s) && s[k] == ' ' {
			k++
		}
		paren := k < len(s) && s[k] == '('
		if paren {
			k++
		}
		for k < len(s) && s[k] == ' ' {
			k++
		}
		n := k
		for n < len(s) && isIdentChar(s[n]) {
			n++
		}
		name := s[k:n]
		if paren {
			for n < len(s) && s[n] != ')' {
				n++
			}
			n++
		}
		if (w == "defined" && p.defined(name)) || (w == "IS_ENABLED" && p.config[name]) {
			b.WriteString(" 1 ")
		} else {
			b.WriteString(" 0 ")
		}
		i = n
	}
	return b.String()
}

// ifExpr is a precedence-climbing evaluator for #if lines.
type ifExpr struct {
	s   string
	pos int
}

var binPrec = map[string]int{
	"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
	"<": 7, ">": 7, "<=": 7, ">=": 7, "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}

func (e *ifExpr) space() {
	for e.pos < len(e.s) && (e.s[e.pos] == ' ' || e.s[e.pos] == '\t') {
		e.pos++
	}
}

func (e *ifExpr) op() string {
	e.space()
	for _, l := range []int{2, 1} {
		if e.pos+l <= len(e.s) {
			if _, ok := binPrec[e.s[e.pos:e.pos+l]]; ok {
				return e.s[e.pos : e.pos+l]
			}
		}
	}
	return ""
}

func (e *ifExpr) parse(minPrec int) (int64, bool) {
	v, ok := e.unary()
	if !ok {
		return 0, false
	}
	for {
		op := e.op()
		if op == "" || binPrec[op] <= minPrec {
			return v, true
		}
		e.pos += len(op)
		w, ok := e.parse(binPrec[op])
		if !ok {
			return 0, false
		}
		v, ok = apply(op, v, w)
		if !ok {
			return 0, false
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func apply(op string, v, w int64) (int64, bool) {
	switch op {
	case "||":
		return b2i(v != 0 || w != 0), true
	case "&&":
		return b2i(v != 0 && w != 0), true
	case "|":
		return v | w, true
	case "^":
		return v ^ w, true
	case "&":
		return v & w, true
	case "==":
		return b2i(v == w), true
	case "!=":
		return b2i(v != w), true
	case "<":
		return b2i(v < w), true
	case ">":
		return b2i(v > w), true
	case "<=":
		return b2i(v <= w), true
	case ">=":
		return b2i(v >= w), true
	case "<<":
		return v << uint(w&63), true
	case ">>":
		return v >> uint(w&63), true
	case "+":
		return v + w, true
	case "-":
		return v - w, true
	case "*":
		return v * w, true
	case "/", "%":
		if w == 0 {
			return 0, false
		}
		if op == "/" {
			return v / w, true
		}
		return v % w, true
	}
	return 0, false
}

func (e *ifExpr) unary() (int64, bool) {
	e.space()
	if e.pos >= len(e.s) {
		return 0, false
	}
	switch c := e.s[e.pos]; {
	case c == '!':
		e.pos++
		v, ok := e.unary()
		return b2i(v == 0), ok
	case c == '-':
		e.pos++
		v, ok := e.unary()
		return -v, ok
	case c == '(':
		e.pos++
		v, ok := e.parse(0)
		e.space()
		if !ok || e.pos >= len(e.s) || e.s[e.pos] != ')' {
			return 0, false
		}
		e.pos++
		return v, true
	case isIdentChar(c):
		j := e.pos
		for j < len(e.s) && isIdentChar(e.s[j]) {
			j++
		}
		w := e.s[e.pos:j]
		e.pos = j
		if !('0' <= c && c <= '9') {
			return 0, true // an undefined identifier is 0
		}
		v, err := strconv.ParseInt(strings.TrimRight(w, "uUlL"), 0, 64)
		return v, err == nil
	}
	return 0, false
}

// scanEnums records the constants of every enum in the active text. A
// constant's value is its initializer (a number or an earlier constant) or
// the previous one plus one.
func (p *cpp) scanEnums(text string) error {
	for off := 0; ; {
		i := strings.Index(text[off:], "enum")
		if i < 0 {
			return nil
		}
		i += off
		off = i + len("enum")
		if (i > 0 && isIdentChar(text[i-1])) || (off < len(text) && isIdentChar(text[off])) {
			continue
		}
		// Only "enum [tag] {" opens a definition; "enum zone_type f(...) {"
		// and "enum x y;" do not.
		_, rest := cutWord(text[off:])
		if !strings.HasPrefix(rest, "{") {
			continue
		}
		open := strings.IndexByte(text[off:], '{') + off
		close := strings.IndexByte(text[open:], '}')
		if close < 0 {
			return fmt.Errorf("unterminated enum")
		}
		body := text[open+1 : open+close]
		off = open + close
		var list []enumConst
		next := uint64(0)
		for _, item := range strings.Split(body, ",") {
			name, init, hasInit := strings.Cut(item, "=")
			name = strings.TrimSpace(name)
			if name == "" || !isIdentStart(name[0]) {
				continue
			}
			if hasInit {
				v, err := p.enumValue(strings.TrimSpace(init))
				if err != nil {
					// An initializer this subset cannot evaluate (lru_list's
					// LRU_BASE + LRU_ACTIVE): the rest of that enum is
					// unknown, and none of the enums read here has one.
					break
				}
				next = v
			}
			p.enums[name] = next
			list = append(list, enumConst{name, next})
			next++
		}
		if len(list) > 0 {
			p.enumLists[list[0].name] = list
		}
	}
}

func (p *cpp) enumValue(init string) (uint64, error) {
	init = strings.Trim(strings.TrimSpace(p.expand(init, nil)), "()")
	if v, ok := p.enums[init]; ok {
		return v, nil
	}
	return strconv.ParseUint(strings.TrimRight(init, "uUlL"), 0, 64)
}

func with(hide map[string]bool, name string) map[string]bool {
	m := make(map[string]bool, len(hide)+1)
	for k := range hide {
		m[k] = true
	}
	m[name] = true
	return m
}

func cutWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && isIdentChar(s[i]) {
		i++
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			return j + 1
		}
	}
	return len(s)
}

// stripComments replaces comments by a blank, keeping string literals and
// the line structure.
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '"' || s[i] == '\'':
			j := skipString(s, i)
			b.WriteString(s[i:j])
			i = j
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			b.WriteByte(' ')
			b.WriteString(strings.Repeat("\n", strings.Count(s[i:i+2+end], "\n")))
			i += end + 4
		case strings.HasPrefix(s[i:], "//"):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return b.String()
			}
			i += end
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || ('0' <= c && c <= '9') }

// sortedConfig lists the config for the generated comment.
func sortedConfig(cfg []string) string {
	c := append([]string(nil), cfg...)
	sort.Strings(c)
	return strings.Join(c, " ")
}
