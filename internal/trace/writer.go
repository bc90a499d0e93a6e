package trace

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Writer records events to a trace file. It is safe for one producer plus
// its own flusher: everything buffered is written at least every
// FlushEvery, so a recorder killed with SIGKILL loses at most that much.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	bw     *bufio.Writer
	enc    encoder
	path   string
	stacks map[string]uint64 // frames joined -> stack ref
	file   countingWriter    // bytes that reached the file
	events uint64
	err    error // sticky: after a failed write nothing more is written

	stop chan struct{}
	done chan struct{}
}

// FlushEvery is how often buffered records reach the file.
const FlushEvery = time.Second

// Create creates (or truncates) path with mode 0600: recordings hold
// process names and cgroup paths.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create trace: %w", err)
	}
	// O_CREATE keeps the mode of an existing file: tighten it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("create trace: %w", err)
	}
	w := newWriter(f, path)
	go w.flushLoop()
	return w, nil
}

func newWriter(f *os.File, path string) *Writer {
	w := &Writer{
		f:      f,
		path:   path,
		stacks: map[string]uint64{},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	w.file.w = f
	w.bw = bufio.NewWriterSize(&w.file, 64<<10)
	var pre [preambleLen]byte
	copy(pre[:], Magic)
	binary.LittleEndian.PutUint16(pre[8:], Version)
	w.bw.Write(pre[:])
	return w
}

// flushLoop writes the buffer out every FlushEvery and syncs what reached
// the file: a write(2) alone sits in the page cache for up to
// dirty_expire_centisecs (30 s), which a power loss or a hard-locked node,
// the case a recorder is for, would take with it. The sync runs outside
// the lock, so writers do not wait for the disk; an idle file is not
// synced again.
func (w *Writer) flushLoop() {
	defer close(w.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	var synced int64
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if w.Flush() != nil {
				continue
			}
			w.mu.Lock()
			n := w.file.n
			w.mu.Unlock()
			if n != synced && w.f.Sync() == nil {
				synced = n
			}
		}
	}
}

// Write appends one event. After the first write error every call returns
// that error; what was flushed before it stays readable.
func (w *Writer) Write(ev event.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	kind := ev.Kind()
	if jsonKind(kind, Version) {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode %s: %w", kind, err)
		}
		// JSON records carry no delta time; keep the delta base in step.
		w.enc.lastTime = ev.When().UnixNano()
		w.frame(byte(kind), b)
		return w.fail()
	}
	var stackRef uint64
	if af, ok := ev.(*event.AllocFail); ok && len(af.Stack) > 0 {
		stackRef = w.stackRef(af.Stack)
	}
	w.enc.buf = w.enc.buf[:0]
	switch e := ev.(type) {
	case *event.AllocFail:
		w.enc.allocFail(e, stackRef)
	case *event.SlabCreate:
		w.enc.slabCreate(e)
	case *event.NetnsCreate:
		w.enc.netnsCreate(e)
	case *event.NsSyscall:
		w.enc.nsSyscall(e)
	case *event.Tick:
		w.enc.tick(e)
	case *event.MemStalls:
		w.enc.memStalls(e)
	case *event.MemSnapshot:
		if e.Snapshot == nil {
			return fmt.Errorf("trace: mem_snapshot without a snapshot")
		}
		w.enc.memSnapshot(e)
	default:
		return fmt.Errorf("trace: cannot record event kind %s", kind)
	}
	w.frame(byte(kind), w.enc.buf)
	return w.fail()
}

// stackRef returns the reference of a stack, writing its definition the
// first time: each stack is symbolized and stored once per file.
func (w *Writer) stackRef(frames []string) uint64 {
	key := strings.Join(frames, "\n")
	if ref, ok := w.stacks[key]; ok {
		return ref
	}
	ref := uint64(len(w.stacks) + 1) // 0 means "no stack"
	w.stacks[key] = ref
	var e encoder
	e.uvarint(ref)
	e.uvarint(uint64(len(frames)))
	for _, f := range frames {
		e.string(f)
	}
	w.frame(kindStack, e.buf)
	return ref
}

func (w *Writer) frame(kind byte, payload []byte) {
	var hdr [frameHeaderLen + 1]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, []byte{kind})
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(hdr[4:], crc)
	hdr[8] = kind
	_, err1 := w.bw.Write(hdr[:])
	_, err2 := w.bw.Write(payload)
	if err := errors.Join(err1, err2); err != nil && w.err == nil {
		// bufio wrote part of its buffer before failing: the file ends in a
		// torn record, which the reader reports and skips.
		w.err = fmt.Errorf("write trace %s: %w (the file may end in a torn record after byte %d; replay reads every record before it)", w.path, err, w.file.n)
		return
	}
	if kind != kindStack {
		w.events++
	}
}

// fail returns the sticky error, if any write so far failed.
func (w *Writer) fail() error { return w.err }

// Flush writes everything buffered to the file.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("write trace %s: %w (the file may end in a torn record after byte %d; replay reads every record before it)", w.path, err, w.file.n)
		return w.err
	}
	return nil
}

// Stats returns the events recorded and the bytes on disk so far.
func (w *Writer) Stats() (events uint64, bytes int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events, w.file.n + int64(w.bw.Buffered())
}

// Close flushes, syncs and closes the file. It returns the first error of
// the whole recording, so a disk that filled up is reported at the end too.
func (w *Writer) Close() error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	ferr := w.flushLocked()
	serr := w.f.Sync()
	cerr := w.f.Close()
	if ferr != nil {
		return ferr
	}
	return errors.Join(serr, cerr)
}

// countingWriter counts the bytes that reached the file, so an error can
// say up to where the recording is intact.
type countingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
