package trace

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/fragscope/fragscope/internal/event"
)

// TailError says why reading stopped before the end of the file. Every
// record before Offset was read; nothing after it can be trusted.
type TailError struct {
	Offset int64
	Reason string
}

func (e *TailError) Error() string {
	return fmt.Sprintf("trace damaged at byte %d: %s; every record before it was read", e.Offset, e.Reason)
}

// Reader reads a trace. Next returns events in recorded order; events it
// returns are reused by the next call (the event.Source contract).
type Reader struct {
	r       *bufio.Reader
	off     int64
	dec     decoder
	payload []byte
	hdr     [frameHeaderLen + 1]byte // a field, not a local: io.ReadFull would move it to the heap per record
	stacks  map[uint64][]string
	version uint16
	Tail    *TailError // set when reading stopped at a damaged tail

	// one reusable value per kind: replay allocates nothing per event
	allocFail   event.AllocFail
	slabCreate  event.SlabCreate
	netnsCreate event.NetnsCreate
	nsSyscall   event.NsSyscall
	tick        event.Tick
}

// Open opens a trace file.
func Open(path string) (*Reader, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open trace: %w", err)
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, f, nil
}

// NewReader checks the preamble and returns a reader positioned at the
// first record.
func NewReader(rd io.Reader) (*Reader, error) {
	r := &Reader{r: bufio.NewReaderSize(rd, 256<<10), stacks: map[uint64][]string{}}
	var pre [preambleLen]byte
	if _, err := io.ReadFull(r.r, pre[:]); err != nil {
		return nil, fmt.Errorf("not a fragscope trace: too short (%v)", err)
	}
	if string(pre[:8]) != Magic {
		return nil, fmt.Errorf("not a fragscope trace (bad magic %q): record one with `fragscope record -o FILE`", pre[:8])
	}
	r.version = binary.LittleEndian.Uint16(pre[8:])
	if r.version < minVersion || r.version > Version {
		return nil, fmt.Errorf("trace format version %d, this fragscope reads versions %d to %d: use a newer fragscope", r.version, minVersion, Version)
	}
	r.off = preambleLen
	return r, nil
}

// Offset is how many bytes have been read and verified so far.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next event, io.EOF at a clean end, or a *TailError when
// the rest of the file is torn or corrupt (also stored in r.Tail).
func (r *Reader) Next() (event.Event, error) {
	for {
		kind, payload, err := r.frame()
		if err != nil {
			return nil, err
		}
		ev, err := r.decode(kind, payload)
		if err != nil {
			return nil, r.damaged(err.Error())
		}
		if ev != nil {
			return ev, nil
		}
	}
}

func (r *Reader) damaged(reason string) error {
	r.Tail = &TailError{Offset: r.off, Reason: reason}
	return r.Tail
}

// frame reads one framed record and checks its CRC.
func (r *Reader) frame() (byte, []byte, error) {
	hdr := r.hdr[:]
	n, err := io.ReadFull(r.r, hdr)
	if err == io.EOF {
		return 0, nil, io.EOF
	}
	if err != nil {
		return 0, nil, r.damaged(fmt.Sprintf("incomplete record header (%d of %d bytes)", n, len(hdr)))
	}
	size := binary.LittleEndian.Uint32(hdr[0:])
	if size > maxPayload {
		return 0, nil, r.damaged(fmt.Sprintf("record length %d is implausible", size))
	}
	if cap(r.payload) < int(size) {
		r.payload = make([]byte, size)
	}
	payload := r.payload[:size]
	if n, err := io.ReadFull(r.r, payload); err != nil {
		return 0, nil, r.damaged(fmt.Sprintf("incomplete record (%d of %d payload bytes)", n, size))
	}
	crc := crc32.Update(0, castagnoli, hdr[8:9])
	crc = crc32.Update(crc, castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(hdr[4:]) {
		return 0, nil, r.damaged("checksum mismatch")
	}
	r.off += int64(len(hdr)) + int64(size)
	return hdr[8], payload, nil
}

// decode returns the event of a record, or nil for records that only feed
// the reader (stack definitions).
func (r *Reader) decode(kind byte, payload []byte) (event.Event, error) {
	if jsonKind(event.Kind(kind), r.version) {
		var ev event.Event
		switch event.Kind(kind) {
		case event.KindStart:
			ev = new(event.Start)
		case event.KindMemSnapshot:
			ev = new(event.MemSnapshot)
		case event.KindCgroupPath:
			ev = new(event.CgroupPath)
		case event.KindKernelReport:
			ev = new(event.KernelReport)
		case event.KindStall:
			ev = new(event.Stall)
		case event.KindMemcgState:
			ev = new(event.MemcgState)
		case event.KindTaskMemStalls:
			ev = new(event.TaskMemStalls)
		}
		if err := json.Unmarshal(payload, ev); err != nil {
			return nil, fmt.Errorf("%s record: %v", event.Kind(kind), err)
		}
		if ms, ok := ev.(*event.MemSnapshot); ok && ms.Snapshot == nil {
			return nil, errors.New("mem_snapshot record without a snapshot")
		}
		r.dec.lastTime = ev.When().UnixNano()
		return ev, nil
	}
	d := &r.dec
	d.buf, d.err = payload, nil
	var ev event.Event
	switch kind {
	case kindStack:
		ref := d.uvarint()
		n := d.uvarint()
		if n > uint64(len(d.buf)) {
			return nil, errors.New("stack record: frame count exceeds record")
		}
		frames := make([]string, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			frames = append(frames, string(d.bytes()))
		}
		if d.err != nil {
			return nil, fmt.Errorf("stack record: %v", d.err)
		}
		r.stacks[ref] = frames
		return nil, nil
	case byte(event.KindAllocFail):
		ev = &r.allocFail
		ref := d.allocFail(&r.allocFail)
		r.allocFail.Stack = nil
		if ref != 0 {
			s, ok := r.stacks[ref]
			if !ok {
				return nil, fmt.Errorf("alloc_fail record refers to unknown stack %d", ref)
			}
			r.allocFail.Stack = s
		}
	case byte(event.KindSlabCreate):
		ev = &r.slabCreate
		d.slabCreate(&r.slabCreate)
	case byte(event.KindNetnsCreate):
		ev = &r.netnsCreate
		d.netnsCreate(&r.netnsCreate)
	case byte(event.KindNsSyscall):
		ev = &r.nsSyscall
		d.nsSyscall(&r.nsSyscall)
	case byte(event.KindTick):
		ev = &r.tick
		d.tick(&r.tick)
	case byte(event.KindMemSnapshot):
		ms := d.memSnapshot()
		if d.err == nil {
			ev = ms
		}
	case byte(event.KindMemStalls):
		ms := d.memStalls()
		if d.err == nil {
			ev = ms
		}
	default:
		return nil, fmt.Errorf("unknown record kind %d", kind)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s record: %v", event.Kind(kind), d.err)
	}
	return ev, nil
}

// Source replays a trace as an event.Source.
type Source struct {
	Reader *Reader
	// Pace, when true, sleeps between events to replay at recorded speed.
	Pace bool
}

// Run emits every event of the trace. A damaged tail ends the replay
// without an error: the events before it were emitted, and r.Tail says
// where it stopped so the caller can warn.
func (s *Source) Run(ctx context.Context, emit func(event.Event)) error {
	var first, firstWall int64
	for {
		if err := ctx.Err(); err != nil {
			return nil
		}
		ev, err := s.Reader.Next()
		if err == io.EOF {
			return nil
		}
		var tail *TailError
		if errors.As(err, &tail) {
			return nil
		}
		if err != nil {
			return err
		}
		if s.Pace {
			pace(ctx, ev, &first, &firstWall)
		}
		emit(ev)
	}
}
