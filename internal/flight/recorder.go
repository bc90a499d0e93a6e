package flight

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/trace"
)

// Defaults of Options.
const (
	DefaultSegmentBytes = 64 << 20
	DefaultSegmentAge   = 10 * time.Minute
	DefaultRetainBytes  = 1 << 30
	DefaultRetainAge    = 24 * time.Hour
)

// RetryEvery is how often a paused recorder tries to open a new segment.
const RetryEvery = 5 * time.Second

// StateFunc returns what a new segment restates before its first event:
// the session's Start (nil before it), the cgroups not removed, and the
// latest snapshot (nil before the first). It is called from Write, on the
// caller's goroutine, so it may read state the caller does not lock.
type StateFunc func() (start *event.Start, cgroups []event.CgroupPath, snap *event.MemSnapshot)

// Options configure a Recorder. Zero fields take the defaults.
type Options struct {
	Dir          string        // the data directory; segments go to Dir/segments
	SegmentBytes int64         // rotate when the segment reaches this size
	SegmentAge   time.Duration // rotate when the segment is this old
	RetainBytes  int64         // keep the segments to this total
	RetainAge    time.Duration // delete segments whose newest event is older
	// State supplies each segment's preamble. Without it a segment begins
	// with the Start alone and does not name the cgroups seen before it.
	State StateFunc
	Now   func() time.Time // the clock, for tests; time.Now when nil
	// Logf receives the recorder's one-line reports (paused, resumed,
	// pruning failures); log.Printf when nil.
	Logf func(format string, args ...any)
}

// Stats are the recorder's counters since Open.
type Stats struct {
	Events   uint64 // events written to segments (a failing write may lose the last second's)
	Bytes    int64  // bytes written to segments, preambles included
	Dropped  uint64 // events dropped while paused
	Paused   bool   // a write failed and no segment could be opened since
	Segments int    // segments opened
	Current  string // the segment being written, "" when none
}

// segmentWriter is what a segment is written with: *trace.Writer, or a
// failing fake in tests.
type segmentWriter interface {
	Write(ev event.Event) error
	Flush() error
	Stats() (events uint64, bytes int64)
	Close() error
}

type openSegment struct {
	w      segmentWriter
	name   string
	opened time.Time
}

// Recorder writes the event stream to rotating segments. Write, Flush,
// Stats and Close may be called from different goroutines.
type Recorder struct {
	opt    Options
	segDir string
	lock   *os.File
	create func(path string) (segmentWriter, error)

	mu       sync.Mutex
	closed   bool
	start    *event.Start // the session's Start as written, nil before it
	seg      *openSegment // nil before the first event and while paused
	lastName time.Time    // the time in the newest segment name: new names sort after it
	paused   bool
	retryAt  time.Time
	stats    Stats
	closedN  int64 // bytes of the segments closed so far

	prune sync.Mutex     // one retention pass at a time
	bg    sync.WaitGroup // segments being synced and closed
}

var errClosed = errors.New("flight recorder: write after Close")

// errNoStart is a caller's mistake: the stream must begin with its Start.
var errNoStart = errors.New("flight recorder: event before the session's Start: write the Start first")

// Open prepares the data directory and applies retention. The first segment
// is created by the first Write, which must be the session's Start unless
// Options.State already has one.
func Open(opt Options) (*Recorder, error) {
	if opt.Dir == "" {
		return nil, errors.New("flight recorder: no data dir: pass --data-dir")
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = DefaultSegmentBytes
	}
	if opt.SegmentAge <= 0 {
		opt.SegmentAge = DefaultSegmentAge
	}
	if opt.RetainBytes <= 0 {
		opt.RetainBytes = DefaultRetainBytes
	}
	if opt.RetainAge <= 0 {
		opt.RetainAge = DefaultRetainAge
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logf == nil {
		opt.Logf = log.Printf
	}
	segDir := filepath.Join(opt.Dir, segmentsDir)
	if err := os.MkdirAll(segDir, 0o700); err != nil {
		return nil, dataDirError(opt.Dir, err)
	}
	if err := checkWritable(segDir); err != nil {
		return nil, dataDirError(opt.Dir, err)
	}
	lock, err := lockDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	r := &Recorder{opt: opt, segDir: segDir, lock: lock, create: createTrace}
	segs, err := listSegments(segDir)
	if err != nil {
		r.unlock()
		return nil, dataDirError(opt.Dir, err)
	}
	for _, s := range segs {
		if s.size == 0 {
			// Killed between creating it and the first write: it holds
			// nothing, and the lock says no one is writing it.
			os.Remove(filepath.Join(segDir, s.name))
		}
	}
	if n := len(segs); n > 0 {
		r.lastName, _ = segmentTime(segs[n-1].name)
	}
	r.retain("")
	return r, nil
}

func createTrace(path string) (segmentWriter, error) { return trace.Create(path) }

// Dir is the data directory.
func (r *Recorder) Dir() string { return r.opt.Dir }

// Write appends ev to the current segment, opening or rotating segments as
// needed. Write failures never come back from it: the recorder pauses,
// reports once through Logf, drops events and retries every RetryEvery.
// The errors it returns are the caller's mistakes (no Start first, Write
// after Close, an event the trace format cannot hold).
func (r *Recorder) Write(ev event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	now := r.opt.Now()
	if st, ok := ev.(*event.Start); ok {
		return r.writeStart(st, now)
	}
	if r.paused && !r.resume(now) {
		r.stats.Dropped++
		return nil
	}
	if r.seg != nil && r.due(now) {
		r.rotate(now)
		if r.paused {
			r.stats.Dropped++
			return nil
		}
	}
	if r.seg == nil {
		if err := r.openSegment(now); err != nil {
			if errors.Is(err, errNoStart) {
				return err
			}
			r.pause(err, now)
			r.stats.Dropped++
			return nil
		}
	}
	if err := r.seg.w.Write(ev); err != nil {
		// A failed write leaves the writer's error sticky; an event it
		// could not encode does not.
		if ferr := r.seg.w.Flush(); ferr == nil {
			return fmt.Errorf("flight recorder: %w", err)
		}
		r.pause(err, now)
		r.stats.Dropped++
		return nil
	}
	r.stats.Events++
	return nil
}

// writeStart begins a segment with a new session's Start; the repeated
// Start of the session being written is already at the head of its segment.
func (r *Recorder) writeStart(st *event.Start, now time.Time) error {
	if r.start != nil && sameSession(r.start, st) {
		return nil
	}
	c := *st
	c.Hooks = slices.Clone(st.Hooks)
	c.GFPFlags = slices.Clone(st.GFPFlags)
	c.Migratetypes = slices.Clone(st.Migratetypes)
	c.Preamble = 0
	r.start = &c
	if r.seg != nil {
		r.closeSegment(now)
	}
	if r.paused {
		return nil // the next segment, once one opens, begins with it
	}
	if err := r.openSegment(now); err != nil {
		r.pause(err, now)
		return nil
	}
	r.stats.Events++
	return nil
}

// due reports whether the current segment is full or old enough to rotate.
func (r *Recorder) due(now time.Time) bool {
	_, n := r.seg.w.Stats()
	return n >= r.opt.SegmentBytes || now.Sub(r.seg.opened) >= r.opt.SegmentAge
}

// rotate closes the current segment, opens the next and prunes.
func (r *Recorder) rotate(now time.Time) {
	if !r.closeSegment(now) {
		return
	}
	if err := r.openSegment(now); err != nil {
		r.pause(err, now)
		return
	}
	r.retain(r.seg.name)
}

// closeSegment flushes the current segment and syncs and closes it in the
// background: fsync of a full segment must not hold up the caller. It
// reports false when the flush failed and the recorder paused.
func (r *Recorder) closeSegment(now time.Time) bool {
	old := r.seg
	if err := old.w.Flush(); err != nil {
		r.pause(err, now)
		return false
	}
	r.seg = nil
	r.retire(old, true)
	return true
}

// retire accounts a segment that is no longer written and closes it in the
// background; a close error is reported only when nothing failed before.
func (r *Recorder) retire(s *openSegment, report bool) {
	_, n := s.w.Stats()
	r.closedN += n
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		if err := s.w.Close(); err != nil && report {
			r.opt.Logf("flight recorder: close segment %s: %v", s.name, err)
		}
	}()
}

// openSegment creates a segment and writes its preamble: the Start, the
// live cgroups and the latest snapshot. The preamble is flushed at once, so
// a segment on disk is self-contained from its first second, and a disk
// that is still full is found here rather than a second later.
func (r *Recorder) openSegment(now time.Time) error {
	var start *event.Start
	var cgroups []event.CgroupPath
	var snap *event.MemSnapshot
	if r.opt.State != nil {
		start, cgroups, snap = r.opt.State()
	}
	head := r.start
	if head == nil {
		head = start
	}
	if head == nil {
		return errNoStart
	}
	if r.start == nil {
		// Attached mid-session: the model's Start is the session's, and a
		// Start event repeating it later must not open another segment.
		c := *head
		c.Preamble = 0
		r.start = &c
	}
	if start != nil && !sameSession(start, head) {
		// The caller's model is of another session than the one written.
		cgroups, snap = nil, nil
	}
	live := make([]event.CgroupPath, 0, len(cgroups))
	for _, c := range cgroups {
		if !c.Removed {
			live = append(live, c)
		}
	}
	if snap != nil && snap.Snapshot == nil {
		snap = nil
	}
	h := *head
	h.Preamble = len(live)
	if snap != nil {
		h.Preamble++
	}

	name := r.nextName(now)
	path := filepath.Join(r.segDir, name)
	w, err := r.create(path)
	if err != nil {
		return err
	}
	err = w.Write(&h)
	for i := 0; i < len(live) && err == nil; i++ {
		err = w.Write(&live[i])
	}
	if snap != nil && err == nil {
		err = w.Write(snap)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		w.Close()
		os.Remove(path) // a partial preamble replays as nothing useful
		return err
	}
	r.seg = &openSegment{w: w, name: name, opened: now}
	r.stats.Segments++
	return nil
}

// nextName names a new segment after every existing one, even when the
// clock went back since the last was created.
func (r *Recorder) nextName(now time.Time) string {
	t := now.UTC()
	if !t.After(r.lastName) {
		t = r.lastName.Add(time.Nanosecond)
	}
	r.lastName = t
	return segmentName(t)
}

// pause stops recording after a write error: the failed segment is closed
// (what reached the disk stays readable) and the error is reported once.
func (r *Recorder) pause(err error, now time.Time) {
	if r.seg != nil {
		r.retire(r.seg, false)
		r.seg = nil
	}
	r.retryAt = now.Add(RetryEvery)
	if r.paused {
		return
	}
	r.paused = true
	r.opt.Logf("%s", pauseMessage(r.opt.Dir, err))
}

// resume tries, at most every RetryEvery, to prune and open a new segment.
func (r *Recorder) resume(now time.Time) bool {
	if now.Before(r.retryAt) {
		return false
	}
	r.retryAt = now.Add(RetryEvery)
	r.retain("")
	if err := r.openSegment(now); err != nil {
		return false
	}
	r.paused = false
	r.opt.Logf("flight recorder: %s: recording resumed in %s after %d dropped events", r.opt.Dir, r.seg.name, r.stats.Dropped)
	return true
}

func pauseMessage(dir string, err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Sprintf("flight recorder: %s: %v: recording paused; retrying every %s", dir, err, RetryEvery)
	}
	fix := fmt.Sprintf("check the disk (dmesg); retrying every %s", RetryEvery)
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT:
		fix = "free space or lower --retain-size"
	case syscall.EROFS:
		fix = "remount it read-write or pass --data-dir"
	}
	return fmt.Sprintf("flight recorder: %s: %v: recording paused; %s", dir, errno, fix)
}

// Flush writes what the current segment buffers to disk, so that a reader
// of the directory (Pin) sees every event written so far.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seg == nil {
		return nil
	}
	if err := r.seg.w.Flush(); err != nil {
		r.pause(err, r.opt.Now())
		return fmt.Errorf("flight recorder: %w", err)
	}
	return nil
}

// Pin flushes the current segment and writes the window [from, to] of the
// data directory to outPath (see Pin).
func (r *Recorder) Pin(outPath string, from, to time.Time) error {
	r.Flush()
	return Pin(r.opt.Dir, outPath, from, to)
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Paused = r.paused
	s.Bytes = r.closedN
	if r.seg != nil {
		_, n := r.seg.w.Stats()
		s.Bytes += n
		s.Current = filepath.Join(r.segDir, r.seg.name)
	}
	return s
}

// Close syncs and closes the current segment and releases the directory.
// It returns the current segment's write error, if any.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	var err error
	if r.seg != nil {
		err = r.seg.w.Close()
		r.seg = nil
	}
	r.mu.Unlock()
	r.bg.Wait()
	r.unlock()
	return err
}

func (r *Recorder) unlock() {
	if r.lock != nil {
		r.lock.Close()
	}
}

// sameSession reports whether two Starts open the same session: an agent
// restart makes a new Start with another time.
func sameSession(a, b *event.Start) bool {
	return a.BootID == b.BootID && a.Hostname == b.Hostname && a.Time.Equal(b.Time)
}

// retain deletes the oldest segments while the directory holds more than
// RetainBytes or the oldest's newest event is older than RetainAge. It
// never deletes keep (the segment being written) or anything newer.
func (r *Recorder) retain(keep string) {
	r.prune.Lock()
	defer r.prune.Unlock()
	segs, err := listSegments(r.segDir)
	if err != nil {
		r.opt.Logf("flight recorder: prune %s: %v", r.segDir, err)
		return
	}
	var total int64
	for _, s := range segs {
		total += s.size
	}
	cutoff := r.opt.Now().Add(-r.opt.RetainAge)
	for _, s := range segs {
		if keep != "" && s.name >= keep {
			return
		}
		if total <= r.opt.RetainBytes && !s.mod.Before(cutoff) {
			return
		}
		if err := os.Remove(filepath.Join(r.segDir, s.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.opt.Logf("flight recorder: prune %s: %v", s.name, err)
			return
		}
		total -= s.size
	}
}
