package flight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/snapshot"
	"github.com/fragscope/fragscope/internal/trace"
)

// skew is how far event times may run behind the order they were written
// in (ringbuf events against ticks): segments are chosen for a window with
// this margin, so that an event just inside it is not left in an unread one.
const skew = 10 * time.Second

// DirSource reads a data directory's segments, in name order, as one
// recording. It is an event.Source.
type DirSource struct {
	dir          string
	segs         []segment
	since, until time.Time

	// Warn, when set, receives each warning as it happens (a damaged or
	// unreadable segment); Warnings returns them all after Run.
	Warn func(msg string)

	read, total atomic.Int64
	mu          sync.Mutex
	warnings    []string
}

// OpenDir lists the segments of a data directory for reading. since and
// until bound the events by When() (zero: unbounded); the recording then
// begins with the Start and the state as of since (the last path of each
// cgroup and the last snapshot before it).
func OpenDir(dir string, since, until time.Time) (*DirSource, error) {
	segDir := filepath.Join(dir, segmentsDir)
	segs, err := listSegments(segDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a fragscope data dir (no segments/ in it): pass the agent's --data-dir or a trace file", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read data dir: %w", err)
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("data dir %s has no recorded segments: is the agent running with --data-dir %s?", dir, dir)
	}
	s := &DirSource{dir: segDir, segs: segs, since: since, until: until}
	s.segs = s.window()
	for _, sg := range s.segs {
		s.total.Add(sg.size)
	}
	return s, nil
}

// Progress returns the bytes read so far and the total of the segments
// the window needs (known from OpenDir on); safe to call while Run runs.
func (s *DirSource) Progress() (read, total int64) { return s.read.Load(), s.total.Load() }

// Warnings returns the warnings of the last Run.
func (s *DirSource) Warnings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.warnings)
}

func (s *DirSource) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.warnings = append(s.warnings, msg)
	s.mu.Unlock()
	if s.Warn != nil {
		s.Warn(msg)
	}
}

// Run emits the recording. A damaged segment (the torn tail of a crash or
// a full disk) is a warning: its events before the damage are emitted and
// reading goes on with the next segment.
func (s *DirSource) Run(ctx context.Context, emit func(event.Event)) error {
	s.read.Store(0)
	j := joiner{since: s.since, until: s.until, emit: emit}
	var done int64
	for _, sg := range s.segs {
		if ctx.Err() != nil {
			return nil
		}
		s.readSegment(ctx, sg, &j, done)
		done += sg.size
		s.read.Store(done)
	}
	j.end()
	return nil
}

func (s *DirSource) readSegment(ctx context.Context, sg segment, j *joiner, done int64) {
	r, f, err := trace.Open(filepath.Join(s.dir, sg.name))
	if errors.Is(err, os.ErrNotExist) {
		s.warn("segment %s was pruned while reading: its events are missing", sg.name)
		return
	}
	if err != nil {
		s.warn("segment %s skipped: %v", sg.name, err)
		return
	}
	defer f.Close()
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return
		}
		ev, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			s.warn("segment %s: %v", sg.name, err)
			return
		}
		if n == 0 && ev.Kind() != event.KindStart {
			s.warn("segment %s skipped: it does not begin with a start record", sg.name)
			return
		}
		j.add(ev)
		s.read.Store(done + r.Offset())
	}
}

// window returns the segments that can hold events of [since, until]. Each
// segment restates the state at its creation, so the ones wholly before
// since need not be read.
func (s *DirSource) window() []segment {
	if s.since.IsZero() && s.until.IsZero() {
		return s.segs
	}
	first := make([]time.Time, len(s.segs))
	for i, sg := range s.segs {
		first[i] = firstEvent(filepath.Join(s.dir, sg.name))
	}
	lo := 0
	if !s.since.IsZero() {
		for i, t := range first {
			if !t.IsZero() && t.Before(s.since.Add(-skew)) {
				lo = i
			}
		}
	}
	hi := len(s.segs)
	if !s.until.IsZero() {
		for i := lo + 1; i < len(first); i++ {
			if first[i].After(s.until.Add(skew)) {
				hi = i
				break
			}
		}
	}
	return s.segs[lo:hi]
}

// firstEvent returns the time of a segment's first event after its
// preamble, zero when it has none or cannot be read.
func firstEvent(path string) time.Time {
	r, f, err := trace.Open(path)
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	ev, err := r.Next()
	if err != nil {
		return time.Time{}
	}
	st, ok := ev.(*event.Start)
	if !ok {
		return time.Time{}
	}
	for i := 0; i <= st.Preamble; i++ {
		if ev, err = r.Next(); err != nil {
			return time.Time{}
		}
	}
	return ev.When()
}

// joiner turns the segments' records into one recording: a continuing
// session's Start and the preamble records that restate what was already
// emitted are dropped; events outside [since, until] are folded into the
// state that is emitted before the first event inside it.
type joiner struct {
	since, until time.Time
	emit         func(event.Event)

	start    *event.Start // the session being read
	cgroups  map[uint64]event.CgroupPath
	snap     *event.MemSnapshot
	preamble int  // records of the current segment's preamble still to come
	begun    bool // the session's Start and state have been emitted
	any      bool // anything was emitted
}

func (j *joiner) add(ev event.Event) {
	if j.cgroups == nil {
		j.cgroups = map[uint64]event.CgroupPath{}
	}
	inPreamble := j.preamble > 0
	if inPreamble {
		j.preamble--
	}
	switch e := ev.(type) {
	case *event.Start:
		j.preamble = e.Preamble
		if j.start != nil && sameSession(j.start, e) {
			return
		}
		c := *e
		c.Preamble = 0
		j.start, j.cgroups, j.snap, j.begun = &c, map[uint64]event.CgroupPath{}, nil, false
		if j.inRange(e.Time) {
			j.begin()
		}
		return
	case *event.CgroupPath:
		if old, ok := j.cgroups[e.ID]; ok && inPreamble && samePath(old, *e) {
			return
		}
		if j.start != nil && !j.begun && j.inRange(e.Time) {
			j.begin()
		}
		j.cgroups[e.ID] = *e
		// Once begun, a path is needed by whatever follows, whatever its time.
		if j.begun && (j.until.IsZero() || !e.Time.After(j.until)) {
			j.out(e)
		}
		return
	case *event.MemSnapshot:
		if inPreamble && j.snap != nil && !e.When().After(j.snap.When()) {
			return
		}
		// A capture at a failure is that failure's, not the state of a
		// window beginning after it (and one node's zones only).
		if e.Reason != snapshot.ReasonAtFailure && (j.snap == nil || !e.When().Before(j.snap.When())) {
			defer func() { j.snap = e }() // after begin, which emits the state before e
		}
	}
	if j.start == nil || !j.inRange(ev.When()) {
		return
	}
	if !j.begun {
		j.begin()
	}
	j.out(ev)
}

func (j *joiner) inRange(t time.Time) bool {
	return !t.Before(j.since) && (j.until.IsZero() || !t.After(j.until))
}

// begin emits the session's Start and the state as of now.
func (j *joiner) begin() {
	j.begun = true
	j.out(j.start)
	for _, id := range slices.Sorted(maps.Keys(j.cgroups)) {
		if c := j.cgroups[id]; !c.Removed {
			j.out(&c)
		}
	}
	if j.snap != nil {
		j.out(j.snap)
	}
}

func (j *joiner) out(ev event.Event) {
	j.any = true
	j.emit(ev)
}

// end emits the Start and state of a window that holds no event, so that
// even an empty window is a recording that begins with its Start.
func (j *joiner) end() {
	if !j.any && j.start != nil && (j.until.IsZero() || !j.start.Time.After(j.until)) {
		j.begin()
	}
}

func samePath(a, b event.CgroupPath) bool {
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}
