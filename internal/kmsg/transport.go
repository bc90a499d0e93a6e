package kmsg

import (
	"bytes"
	"strconv"
)

// msgLine is one kernel message line after the transport is taken off:
// quoting, quoted-printable, #012 folding, the log prefix.
type msgLine struct {
	n    int    // 1-based physical input line
	text string // message text, leading blanks kept (trace frames, continuations)
	ts   Timestamp
	// prefixed is true when the line carried a log prefix of its own; a
	// line without one may be a wrapped continuation.
	prefixed bool
	// cont is a /dev/kmsg (pre-4.x) '+' fragment: the rest of the previous record.
	cont bool
}

// transport turns physical lines into message lines.
type transport struct {
	opts Options
	out  func(msgLine)
	n    int
	// held is a quoted-printable line ending in a soft break, waiting for
	// the rest; heldN its line number.
	held  []byte
	heldN int
	// qp is set once the input shows quoted-printable encoding ("=3D"):
	// from then on every line ending in '=' is a soft break.
	qp bool
	// last is the timestamp of the last prefixed line, given to the
	// unprefixed lines that follow it (folded or wrapped parts).
	last Timestamp
	// kmsg is set once a /dev/kmsg record was seen: lines starting with a
	// space are then dictionary lines.
	kmsg bool
	buf  []byte
}

func (t *transport) init(opts Options, out func(msgLine)) {
	t.opts = opts
	t.out = out
}

func (t *transport) flush() {
	if t.held != nil {
		h := t.held
		t.held = nil
		t.decoded(h, t.heldN)
	}
}

var (
	qpEq    = []byte("=3D")
	fold012 = []byte("#012")
)

// physical takes one input line.
func (t *transport) physical(b []byte) {
	t.n++
	b = bytes.TrimSuffix(b, []byte{'\r'})
	b = stripQuote(b)
	if !t.qp && bytes.Contains(b, qpEq) {
		t.qp = true
	}
	if t.held != nil {
		t.buf = append(append(t.buf[:0], t.held...), b...)
		t.held = nil
		b = t.buf
	} else {
		t.heldN = t.n
	}
	if softBreak(b, t.qp) {
		t.held = append(t.held[:0:0], b[:len(b)-1]...)
		return
	}
	n := t.heldN
	if t.qp {
		b = decodeQP(b)
	}
	t.decoded(b, n)
}

// softBreak reports whether b ends in a quoted-printable soft line break.
// Without evidence of QP, only a '=' glued to a word counts: the kernel ends
// no line that way, while " =" is a free list wrapped before its total.
func softBreak(b []byte, qp bool) bool {
	if len(b) == 0 || b[len(b)-1] != '=' {
		return false
	}
	if qp {
		return true
	}
	return len(b) >= 2 && b[len(b)-2] != ' ' && b[len(b)-2] != '='
}

// stripQuote removes mail quoting at any depth: "> ", ">> ", "> > > ".
func stripQuote(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] == ' ' && i < 4 {
		i++
	}
	if i >= len(b) || b[i] != '>' {
		return b
	}
	for i < len(b) && b[i] == '>' {
		i++
		if i < len(b) && b[i] == ' ' {
			i++
		}
		j := i
		for j < len(b) && b[j] == ' ' && j-i < 2 {
			j++
		}
		if j < len(b) && b[j] == '>' {
			i = j
		}
	}
	return b[i:]
}

// decodeQP decodes "=XX" escapes (RFC 2045); a '=' not followed by two hex
// digits is kept.
func decodeQP(b []byte) []byte { return unescapeHex(b, "=") }

// unescapeKmsg undoes /dev/kmsg's "\xNN" escaping of non-printable bytes
// and of '\' itself (printk.c msg_print_ext_body).
func unescapeKmsg(b []byte) []byte { return unescapeHex(b, `\x`) }

// unescapeHex replaces every lead+two hex digits with the byte they spell.
func unescapeHex(b []byte, lead string) []byte {
	if !bytes.Contains(b, []byte(lead)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		j := i + len(lead)
		if j+1 < len(b) && string(b[i:j]) == lead && isHex(b[j]) && isHex(b[j+1]) {
			v, _ := strconv.ParseUint(string(b[j:j+2]), 16, 8)
			out = append(out, byte(v))
			i = j + 1
			continue
		}
		out = append(out, b[i])
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// decoded takes a line free of mail encoding: reads its prefix and unfolds it.
func (t *transport) decoded(b []byte, n int) {
	if t.kmsg && len(b) > 0 && b[0] == ' ' && isDictLine(b[1:]) {
		return
	}
	text, ts, ok, cont, rec := stripPrefix(b, t.opts.Year)
	if rec {
		t.kmsg = true
	}
	if ok {
		t.last = ts
	} else {
		ts = t.last
	}
	// Two CPUs printing at once glue one line's head to another's prefixed
	// line: "0*2048kB [2836069.535293] CPU: 12 PID: 0 ...". Cut at the
	// inner printk timestamp; each part is read as a line of its own.
	if i := innerTimestamp(text); i > 0 {
		head := bytes.TrimRight(text[:i], " ")
		if len(bytes.TrimSpace(head)) > 0 {
			t.out(msgLine{n: n, text: string(head), ts: ts, prefixed: ok, cont: cont})
		}
		t.decoded(text[i:], n)
		return
	}
	// rsyslog folds a multi-line record into one line, writing each
	// newline as "#012" (and a tab as "#011"); /dev/kmsg escapes them as
	// "\x0a". Each part is a message line of its own, sharing the prefix.
	if bytes.Contains(text, fold012) || (rec && bytes.Contains(text, []byte(`\x`))) {
		t.unfold(text, n, ts, ok, cont, rec)
		return
	}
	t.out(msgLine{n: n, text: string(text), ts: ts, prefixed: ok, cont: cont})
}

func (t *transport) unfold(text []byte, n int, ts Timestamp, ok, cont, rec bool) {
	if rec {
		text = unescapeKmsg(text)
	}
	text = bytes.ReplaceAll(text, []byte("#011"), []byte{'\t'})
	first := true
	for len(text) > 0 {
		var part []byte
		i := bytes.Index(text, fold012)
		j := bytes.IndexByte(text, '\n')
		switch {
		case j >= 0 && (i < 0 || j < i):
			part, text = text[:j], text[j+1:]
		case i >= 0:
			part, text = text[:i], text[i+4:]
		default:
			part, text = text, nil
		}
		t.out(msgLine{n: n, text: string(part), ts: ts, prefixed: ok && first, cont: cont && first})
		first = false
	}
}

// innerTimestamp returns where a printk timestamp "[  123.456789]" starts
// inside text (not at its start), or -1.
func innerTimestamp(text []byte) int {
	for off := 1; off < len(text); {
		i := bytes.IndexByte(text[off:], '[')
		if i < 0 {
			return -1
		}
		i += off
		end := bytes.IndexByte(text[i:], ']')
		if end > 0 && end < 20 {
			if _, ok := printkTime(bytes.TrimSpace(text[i+1 : i+end])); ok {
				return i
			}
		}
		off = i + 1
	}
	return -1
}

// isDictLine reports whether b is a /dev/kmsg dictionary entry "KEY=value"
// (SUBSYSTEM=, DEVICE=, ...): upper-case key, '='.
func isDictLine(b []byte) bool {
	eq := bytes.IndexByte(b, '=')
	if eq <= 0 {
		return false
	}
	for _, c := range b[:eq] {
		if !(c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
