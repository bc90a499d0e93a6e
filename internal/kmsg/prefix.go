package kmsg

import (
	"bytes"
	"time"
)

// stripPrefix removes the log prefixes at the start of b, in any
// combination and order they are seen in: /dev/kmsg "6,123,456789,-;",
// "<4>", syslog "Nov 12 15:15:41 host kernel:", ISO 8601 dates, dmesg -T
// "[Mon Jun  3 10:00:00 2024]", printk "[  123.456789]", caller ids
// "[ T2438]", logcat "[pid:1,cpu5,name]", vendor "(2)[5:kworker/u:0]",
// dmesg -x "kern  :warn  : ". One space after each is part of the prefix;
// the text keeps any further indentation (trace frames start with one).
// ok says a prefix was found; rec that it was a /dev/kmsg record, and cont
// that the record was a '+' fragment (3.5-4.8 printk stored an interrupted
// pr_cont line as such fragments).
func stripPrefix(b []byte, year int) (text []byte, ts Timestamp, ok, cont, rec bool) {
	if n, usec, flags, good := kmsgRecord(b); good {
		b = b[n:]
		ts.Uptime = time.Duration(usec) * time.Microsecond
		ts.HaveUptime = true
		ok, rec = true, true
		cont = bytes.IndexByte(flags, '+') >= 0
	}
	// Pasted logs are often indented: "    kernel: swapper: page ...".
	if i := len(b) - len(bytes.TrimLeft(b, " \t")); i > 0 && i <= 8 && bytes.HasPrefix(b[i:], []byte("kernel:")) {
		b = b[i:]
	}
	for len(b) > 0 {
		n := 0
		switch c := b[0]; {
		case c == '<':
			n = angle(b)
		case c == '[':
			n = bracket(b, &ts)
		case c == '(':
			n = vendorCPU(b, &ts)
		case c >= 'A' && c <= 'Z':
			n = bsdDate(b, year, &ts)
		case c >= '0' && c <= '9':
			n = isoDate(b, &ts)
		case c == 'k':
			n = bareTag(b)
		}
		if n == 0 {
			break
		}
		ok = true
		b = b[n:]
		if len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
	}
	return b, ts, ok, cont, rec
}

// kmsgRecord reads "prio,seq,usec,flags[,...];" (Documentation/ABI/testing/dev-kmsg).
func kmsgRecord(b []byte) (n int, usec uint64, flags []byte, ok bool) {
	semi := bytes.IndexByte(b, ';')
	if semi < 5 || semi > 80 {
		return 0, 0, nil, false
	}
	f := bytes.Split(b[:semi], []byte{','})
	if len(f) < 4 {
		return 0, 0, nil, false
	}
	for _, x := range f[:3] {
		if _, ok := atou(x); !ok {
			return 0, 0, nil, false
		}
	}
	usec, _ = atou(f[2])
	return semi + 1, usec, f[3], true
}

func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// angle reads a syslog priority "<4>" (dmesg -r, logcat).
func angle(b []byte) int {
	i := 1
	for i < len(b) && i < 5 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > 1 && i < len(b) && b[i] == '>' {
		return i + 1
	}
	return 0
}

// bracket reads one "[...]" prefix: printk time, caller id, dmesg -T date,
// or a logcat/vendor task tag.
func bracket(b []byte, ts *Timestamp) int {
	end := bytes.IndexByte(b, ']')
	if end < 2 || end > 64 {
		return 0
	}
	in := bytes.TrimSpace(b[1:end])
	if d, ok := printkTime(in); ok {
		ts.Uptime, ts.HaveUptime = d, true
		return end + 1
	}
	if len(in) >= 2 && (in[0] == 'T' || in[0] == 'C') {
		if _, ok := atou(in[1:]); ok {
			ts.Caller = string(in)
			return end + 1
		}
	}
	if len(in) >= 20 && in[3] == ' ' {
		if t, err := time.Parse("Mon Jan _2 15:04:05 2006", string(in)); err == nil {
			ts.Wall = t
			return end + 1
		}
	}
	// logcat "[pid:123,cpu5,name]" and vendor "[5:kworker/u:0]".
	if bytes.HasPrefix(in, []byte("pid:")) || isTaskTag(in) {
		ts.Caller = string(in)
		return end + 1
	}
	return 0
}

// isTaskTag matches "N:comm" (MediaTek and similar vendor prefixes).
func isTaskTag(in []byte) bool {
	c := bytes.IndexByte(in, ':')
	if c <= 0 || c == len(in)-1 {
		return false
	}
	_, ok := atou(in[:c])
	return ok && bytes.IndexByte(in, ' ') < 0
}

// printkTime reads "123.456789" (seconds since boot, 6 decimals; some
// kernels and dmesg print fewer).
func printkTime(in []byte) (time.Duration, bool) {
	dot := bytes.IndexByte(in, '.')
	if dot <= 0 || dot == len(in)-1 {
		return 0, false
	}
	sec, ok := atou(in[:dot])
	if !ok {
		return 0, false
	}
	frac := in[dot+1:]
	f, ok := atou(frac)
	if !ok || len(frac) > 9 {
		return 0, false
	}
	for i := len(frac); i < 9; i++ {
		f *= 10
	}
	return time.Duration(sec)*time.Second + time.Duration(f), true
}

// vendorCPU reads "(2)" glued to a following "[...]" tag (MediaTek kernels).
func vendorCPU(b []byte, ts *Timestamp) int {
	end := bytes.IndexByte(b, ')')
	if end < 2 || end > 4 || end+1 >= len(b) || b[end+1] != '[' {
		return 0
	}
	if _, ok := atou(b[1:end]); !ok {
		return 0
	}
	n := bracket(b[end+1:], ts)
	if n == 0 {
		return 0
	}
	return end + 1 + n
}

var months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// bsdDate reads a syslog/journalctl "Nov 12 15:15:41 " date (or "Nov 12
// 15:15:41.123456") and the "host tag:" after it.
func bsdDate(b []byte, year int, ts *Timestamp) int {
	if len(b) < 15 || b[3] != ' ' {
		return 0
	}
	mon := -1
	for i, m := range months {
		if string(b[:3]) == m {
			mon = i
			break
		}
	}
	if mon < 0 {
		return weekdayDate(b, ts)
	}
	// "Nov 12 15:15:41", "Nov  2 15:15:41"
	d := b[4:6]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok := atou(d)
	if !ok || b[6] != ' ' {
		return 0
	}
	hh, ok1 := atou(b[7:9])
	mm, ok2 := atou(b[10:12])
	ss, ok3 := atou(b[13:15])
	if !ok1 || !ok2 || !ok3 || b[9] != ':' || b[12] != ':' {
		return 0
	}
	n := 15
	var nsec uint64
	if n < len(b) && b[n] == '.' {
		j := n + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if f, ok := atou(b[n+1 : j]); ok && j-n-1 <= 9 {
			nsec = f
			for k := j - n - 1; k < 9; k++ {
				nsec *= 10
			}
		}
		n = j
	}
	ts.Wall = time.Date(year, time.Month(mon+1), int(day), int(hh), int(mm), int(ss), int(nsec), time.UTC)
	return n + hostTag(b[n:])
}

// weekdayDate reads OpenWrt logread's "Sun Jun  6 16:14:57 2021 " and the
// "kern.warn kernel:" after it.
func weekdayDate(b []byte, ts *Timestamp) int {
	const layout = "Mon Jan _2 15:04:05 2006"
	if len(b) < len(layout) {
		return 0
	}
	t, err := time.Parse(layout, string(b[:len(layout)]))
	if err != nil {
		return 0
	}
	ts.Wall = t
	return len(layout) + hostTag(b[len(layout):])
}

// isoDate reads "2024-06-03T10:00:00.123+00:00 " or "2024-06-03 10:00:00 "
// (rsyslog's RFC 3339 template, journalctl -o short-iso) and the "host tag:" after it.
func isoDate(b []byte, ts *Timestamp) int {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') {
		return 0
	}
	end := bytes.IndexByte(b[11:], ' ')
	if end < 0 {
		end = len(b) - 11
	}
	s := string(b[:11+end])
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			ts.Wall = t
			n := 11 + end
			return n + hostTag(b[n:])
		}
	}
	// "2024-06-03 10:00:00,123" and other trailers: take the seconds.
	if t, err := time.Parse("2006-01-02 15:04:05", string(b[:19])); err == nil {
		ts.Wall = t
		return 19
	}
	return 0
}

// hostTag reads the " host tag:" or " tag[pid]:" after a syslog date: at
// most two words, the last ending in ':'. It returns 0 when the words do
// not look like that (the date alone is then the prefix).
func hostTag(b []byte) int {
	if len(b) == 0 || b[0] != ' ' {
		return 0
	}
	i := 1
	for w := 0; w < 2; w++ {
		j := i
		for j < len(b) && b[j] != ' ' {
			j++
		}
		if j == i {
			return 0
		}
		if b[j-1] == ':' {
			return j
		}
		if j >= len(b) {
			return 0
		}
		i = j + 1
	}
	return 0
}

// bareTag reads a "kernel:" left without its date (journalctl -o cat
// with identifiers, some log shippers).
func bareTag(b []byte) int {
	if bytes.HasPrefix(b, []byte("kernel:")) {
		return len("kernel:")
	}
	// dmesg -x: "kern  :warn  : "
	if bytes.HasPrefix(b, []byte("kern  :")) && len(b) > 14 && b[13] == ':' {
		return 14
	}
	return 0
}
