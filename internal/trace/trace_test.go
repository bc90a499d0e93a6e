package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// record writes evs to a new trace file and returns its path and bytes.
func record(t testing.TB, evs []event.Event) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.fst")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// readAll returns JSON renderings of every event (events are reused by the
// reader, so they are captured as text) and the reader's tail error.
func readAll(t testing.TB, b []byte) ([]string, *TailError) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		var tail *TailError
		if errors.As(err, &tail) {
			return out, tail
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, render(t, ev))
	}
}

func render(t testing.TB, ev event.Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// Tick.Allocs is not in its JSON form: add it.
	if tk, ok := ev.(*event.Tick); ok {
		a, _ := json.Marshal(tk.Allocs)
		b = append(b, a...)
	}
	return ev.Kind().String() + " " + string(b)
}

func TestRoundTripSession(t *testing.T) {
	evs := aggtest.Session()
	_, b := record(t, evs)
	got, tail := readAll(t, b)
	if tail != nil {
		t.Fatalf("clean file reported damaged: %v", tail)
	}
	if len(got) != len(evs) {
		t.Fatalf("read %d events, wrote %d", len(got), len(evs))
	}
	for i, ev := range evs {
		if want := render(t, ev); got[i] != want {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
	t.Logf("%d events in %d bytes (%.1f bytes/event)", len(evs), len(b), float64(len(b))/float64(len(evs)))
}

func TestFileMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.fst")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

// Every prefix of a valid file (a recorder killed at any byte) reads
// without panic, returns every complete record, and reports a torn tail.
func TestEveryTruncationReplays(t *testing.T) {
	evs := aggtest.Session()
	_, b := record(t, evs)
	full, _ := readAll(t, b)
	for cut := preambleLen; cut < len(b); cut++ {
		got, tail := readAll(t, b[:cut])
		if tail == nil && cut != len(b) {
			// A cut exactly between records is a clean, shorter file.
			if !boundary(t, b, cut) {
				t.Fatalf("cut at %d: no damage reported", cut)
			}
		}
		if tail != nil && (tail.Offset > int64(cut) || tail.Offset < preambleLen) {
			t.Fatalf("cut at %d: tail offset %d", cut, tail.Offset)
		}
		for i := range got {
			if got[i] != full[i] {
				t.Fatalf("cut at %d: event %d differs", cut, i)
			}
		}
	}
}

// boundary reports whether cut falls between two records of b.
func boundary(t *testing.T, b []byte, cut int) bool {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for r.off < int64(cut) {
		if _, _, err := r.frame(); err != nil {
			return false
		}
	}
	return r.off == int64(cut)
}

func TestCorruptByteStopsWithOffset(t *testing.T) {
	_, b := record(t, aggtest.Session())
	full, _ := readAll(t, b)
	bad := append([]byte(nil), b...)
	bad[len(bad)/2] ^= 0x40
	got, tail := readAll(t, bad)
	if tail == nil {
		t.Fatal("flipped bit not detected")
	}
	if !strings.Contains(tail.Error(), "byte") {
		t.Errorf("error does not name the offset: %v", tail)
	}
	for i := range got {
		if got[i] != full[i] {
			t.Fatalf("event %d before the damage differs", i)
		}
	}
	if len(got) == 0 || len(got) >= len(full) {
		t.Errorf("read %d of %d events before the damage", len(got), len(full))
	}
}

func TestNotATrace(t *testing.T) {
	for _, in := range []string{"", "hello", "FRAGSCOP\x09\x00\x00\x00\x00\x00\x00\x00"} {
		_, err := NewReader(strings.NewReader(in))
		if err == nil {
			t.Errorf("NewReader(%q) accepted", in)
		}
	}
}

// A full disk: the write error is clear, sticky, and names the intact
// prefix; Close reports it too.
func TestDiskFull(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("/dev/full: %v", err)
	}
	w := newWriter(f, "/dev/full")
	go w.flushLoop()
	var werr error
	for _, ev := range aggtest.Session() {
		if werr = w.Write(ev); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = w.Flush()
	}
	if werr == nil || !strings.Contains(werr.Error(), "no space left on device") {
		t.Fatalf("write to a full disk: %v", werr)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "replay reads every record before it") {
		t.Errorf("Close after disk full: %v", err)
	}
}

func TestSourcePaces(t *testing.T) {
	evs := []event.Event{
		&event.Tick{Time: aggtest.At(0)},
		&event.Tick{Time: aggtest.At(150 * time.Millisecond)},
	}
	path, _ := record(t, evs)
	r, f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	n := 0
	if err := (&Source{Reader: r, Pace: true}).Run(t.Context(), func(event.Event) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 2 || time.Since(start) < 140*time.Millisecond {
		t.Errorf("paced replay: %d events in %v", n, time.Since(start))
	}
}

func FuzzReader(f *testing.F) {
	_, b := record(f, aggtest.Session())
	f.Add(b)
	f.Add(b[:len(b)/3])
	f.Add([]byte(Magic + "\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\x7f\x00\x00\x00\x00\x02"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		for i := 0; i < 1<<16; i++ { // bounded: no input may loop forever
			if _, err := r.Next(); err != nil {
				return
			}
		}
	})
}

func TestKindsCovered(t *testing.T) {
	// Every event kind the live source emits must be recordable.
	kinds := map[event.Kind]bool{}
	for _, ev := range aggtest.Session() {
		kinds[ev.Kind()] = true
	}
	for _, k := range []event.Kind{event.KindStart, event.KindAllocFail, event.KindSlabCreate, event.KindNetnsCreate, event.KindNsSyscall, event.KindTick, event.KindMemSnapshot} {
		if !kinds[k] {
			t.Errorf("fixture session lacks %s: the round trip does not cover it", k)
		}
	}
	// CgroupPath is not in the fixture: check it on its own.
	cg := &event.CgroupPath{Time: aggtest.At(time.Second), ID: 1001, Path: "/kubepods/burstable/pod1", Removed: true}
	_, b := record(t, []event.Event{aggtest.Start(), cg})
	got, tail := readAll(t, b)
	if tail != nil || len(got) != 2 || got[1] != render(t, cg) {
		t.Errorf("cgroup_path round trip: %v %v", got, tail)
	}
}

// The sandbox guess and the runtime's names ride on their events through a
// recording; an NsSyscall without a guess stays byte for byte what it was.
func TestRoundTripContainerAttribution(t *testing.T) {
	at := aggtest.T0
	plain := &event.NsSyscall{Time: at.Add(time.Second), Task: event.Task{PID: 7, TID: 8, Comm: "containerd", CgroupID: 3},
		Syscall: "unshare", Flags: 0x40000000, Errno: -28, Enter: at, Latency: time.Millisecond}
	guessed := *plain
	guessed.Sandbox = &event.SandboxGuess{PodUID: "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", PodName: "db-0", PodNamespace: "shop",
		SandboxID: "abc", Candidates: 2, Why: "the newest NOTREADY sandbox"}
	runc := *plain
	runc.Task.Comm = "runc:[1:CHILD]"
	runc.Runc = &event.RuncTask{ID: "ctr2", StateRoot: "/tmp/state"}
	both := guessed
	both.Runc = runc.Runc
	evs := []event.Event{
		&event.CgroupPath{Time: at, ID: 3, Path: "/fsns/web1", Runtime: "containerd", ContainerID: "web1", ContainerName: "web1", RuntimeNamespace: "fsns"},
		plain, &guessed, plain, &runc, &both,
	}
	_, b := record(t, evs)
	got, tail := readAll(t, b)
	if tail != nil || len(got) != len(evs) {
		t.Fatalf("read %d events (%v), wrote %d", len(got), tail, len(evs))
	}
	for i, ev := range evs {
		if want := render(t, ev); got[i] != want {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
	var e1, e2 encoder
	e1.nsSyscall(plain)
	e2.nsSyscall(&guessed)
	if !bytes.HasPrefix(e2.buf, e1.buf) || len(e2.buf) == len(e1.buf) {
		t.Errorf("the guess is not appended to the old payload: %x vs %x", e1.buf, e2.buf)
	}
}
