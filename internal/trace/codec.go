package trace

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// encoder appends compact binary payloads. Times are zigzag varint deltas
// from the previous record's time, so a stream of nearby events costs a
// byte or two per timestamp.
type encoder struct {
	buf      []byte
	lastTime int64
}

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) byte(b byte)      { e.buf = append(e.buf, b) }

func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) time(t time.Time) {
	ns := t.UnixNano()
	e.varint(ns - e.lastTime)
	e.lastTime = ns
}

func (e *encoder) task(t *event.Task) {
	e.uvarint(uint64(t.PID))
	e.uvarint(uint64(t.TID))
	e.string(t.Comm)
	e.uvarint(t.CgroupID)
	e.uvarint(uint64(t.NetnsIno))
}

// ref encodes the syscall reference relative to the event time.
func (e *encoder) ref(r event.SyscallRef, at time.Time) {
	e.string(r.Syscall)
	if r.Syscall != "" {
		e.varint(at.UnixNano() - r.Enter.UnixNano())
	}
}

// errCorrupt marks a payload that does not decode: the frame's CRC matched,
// so this is a writer bug or a format mismatch, not a torn write.
var errCorrupt = errors.New("payload does not decode")

// decoder reads payloads written by encoder. Errors are sticky: the first
// short read poisons the cursor, and the caller checks err once at the end.
type decoder struct {
	buf      []byte
	err      error
	lastTime int64
	strs     map[string]string // interned comm, syscall and hook names
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.buf) == 0 {
		d.err = errCorrupt
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf)) {
		d.err = errCorrupt
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

// str returns an interned string: the same few comms and names repeat
// across millions of records, and interning keeps replay allocation-free.
func (d *decoder) str() string {
	b := d.bytes()
	if len(b) == 0 {
		return ""
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	if d.strs == nil {
		d.strs = map[string]string{}
	}
	if len(d.strs) > 1<<16 { // a hostile file cannot grow it without bound
		return string(b)
	}
	s := strings.Clone(string(b))
	d.strs[s] = s
	return s
}

func (d *decoder) time() time.Time {
	d.lastTime += d.varint()
	return time.Unix(0, d.lastTime).UTC()
}

func (d *decoder) task(t *event.Task) {
	t.PID = uint32(d.uvarint())
	t.TID = uint32(d.uvarint())
	t.Comm = d.str()
	t.CgroupID = d.uvarint()
	t.NetnsIno = uint32(d.uvarint())
}

func (d *decoder) ref(at time.Time) event.SyscallRef {
	name := d.str()
	if name == "" {
		return event.SyscallRef{}
	}
	return event.SyscallRef{Syscall: name, Enter: at.Add(-time.Duration(d.varint()))}
}
