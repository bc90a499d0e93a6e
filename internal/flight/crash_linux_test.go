package flight

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/testutil"
	"github.com/fragscope/fragscope/internal/trace"
)

const killChildEnv = "FLIGHT_KILL_CHILD"

// TestKillChild is the agent that TestSIGKILL kills: a tick every 2 ms
// (slow enough that only the once-a-second flush puts data on disk), a
// cgroup and a snapshot now and then, 8 KiB segments.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("run by TestSIGKILL")
	}
	m := &model{}
	r, err := Open(Options{Dir: dir, SegmentBytes: 8 << 10, State: m.State})
	if err != nil {
		t.Fatal(err)
	}
	write := func(ev event.Event) {
		if err := r.Write(ev); err != nil {
			t.Fatal(err)
		}
		m.add(ev)
	}
	st := start(0)
	st.Time = time.Now() // a restart is a new session
	write(st)
	fmt.Println("ready")
	for i := uint64(0); ; i++ {
		now := time.Now()
		if i%50 == 0 {
			write(cgroup(now, i, fmt.Sprintf("/kubepods/pod%d", i), false))
		}
		if i%100 == 0 {
			write(snap(now))
		}
		write(tick(now, i))
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSIGKILL kills a recording agent at 5 random moments. Each time the
// disk holds all but the last flush period; afterwards every segment
// replays alone (a torn tail is the only damage), a new Recorder starts a
// new segment, and the directory reads as one recording with every tick
// of every session once, in order.
func TestSIGKILL(t *testing.T) {
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	for run := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: child said %q (%v)", run, line, err)
		}
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		killed := time.Now()
		cmd.Process.Signal(syscall.SIGKILL)
		go io.Copy(io.Discard, out)
		cmd.Wait()

		var newest time.Time
		src, err := OpenDir(dir, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		src.Run(t.Context(), func(ev event.Event) { newest = ev.When() })
		if lag := killed.Sub(newest); lag > trace.FlushEvery+500*time.Millisecond {
			t.Errorf("run %d: newest event on disk %v before the kill, want at most the flush period %v", run, lag, trace.FlushEvery)
		}
	}

	segs, err := listSegments(filepath.Join(dir, segmentsDir))
	if err != nil {
		t.Fatal(err)
	}
	var torn, empty int
	for _, s := range segs {
		path := filepath.Join(dir, segmentsDir, s.name)
		if s.size == 0 {
			empty++ // killed between creating it and writing its preamble
			continue
		}
		evs, tail := readFile(t, path)
		if len(evs) == 0 || kinds(evs[:1]) != "start" {
			t.Errorf("segment %s does not begin with its Start", s.name)
		}
		if tail != nil {
			torn++
		}
	}
	if torn+empty > 5 {
		t.Errorf("%d torn and %d empty segments after 5 kills", torn, empty)
	}
	t.Logf("%d segments, %d with a torn tail, %d empty", len(segs), torn, empty)

	g := newRig(t, Options{Dir: dir})
	g.clock.t = time.Now()
	g.write(start(0), tick(g.clock.t, 0), tick(g.clock.t, 1))
	g.close()
	after := g.segments()
	if last := after[len(after)-1]; last.name <= segs[len(segs)-1].name {
		t.Errorf("restart wrote into %s, want a new segment after %s", last.name, segs[len(segs)-1].name)
	}
	if len(after) != len(segs)-empty+1 {
		t.Errorf("%d segments after a restart, want %d (empty ones removed, one new)", len(after), len(segs)-empty+1)
	}
	for _, s := range after[:len(after)-1] {
		if i := indexSegment(segs, s.name); i < 0 || segs[i].size != s.size {
			t.Errorf("segment %s changed by the restart", s.name)
		}
	}

	src, err := OpenDir(dir, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var sessions int
	var next uint64
	var bad []string
	src.Run(t.Context(), func(ev event.Event) {
		switch e := ev.(type) {
		case *event.Start:
			sessions++
			next = 0
		case *event.Tick:
			if e.Drops != next && len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("session %d: tick %d, want %d", sessions, e.Drops, next))
			}
			next = e.Drops + 1
		}
	})
	if sessions != 6 || len(bad) > 0 {
		t.Errorf("%d sessions, want 6; %s", sessions, strings.Join(bad, "; "))
	}
	for _, w := range src.Warnings() {
		if !strings.Contains(w, "damaged at byte") {
			t.Errorf("warning that is not a torn tail: %s", w)
		}
	}
}

func indexSegment(segs []segment, name string) int {
	for i, s := range segs {
		if s.name == name {
			return i
		}
	}
	return -1
}

// mountTmpfs mounts a tmpfs of size bytes for the test.
func mountTmpfs(t *testing.T, size int, flags uintptr) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// A real full disk: the recorder pauses with one line, drops and counts,
// leaves what is on disk readable, and resumes when space returns.
func TestDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 512<<10, 0)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 192<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	g := newRig(t, Options{Dir: filepath.Join(mnt, "data"), SegmentBytes: 64 << 10})
	g.clock.t = time.Now()
	g.write(start(0))
	for i := 1; !g.rec.Stats().Paused; i++ {
		if i > 1e6 {
			t.Fatal("a 512 KiB tmpfs never filled up")
		}
		at := g.clock.t.Add(time.Duration(i) * time.Millisecond)
		if i%20 == 0 {
			g.write(snap(at))
		}
		g.write(tick(at, uint64(i)))
	}
	for i := range 100 {
		g.write(tick(g.clock.t, uint64(i)))
	}
	st := g.rec.Stats()
	if st.Dropped < 101 || st.Current != "" {
		t.Errorf("stats while full %+v, want 101 or more dropped", st)
	}
	want := "flight recorder: " + g.dir + ": no space left on device: recording paused; free space or lower --retain-size"
	if logs := g.logged(); len(logs) != 1 || logs[0] != want {
		t.Fatalf("logged %q, want once %q", logs, want)
	}
	for _, s := range g.segments() {
		if evs, _ := readFile(t, filepath.Join(g.dir, segmentsDir, s.name)); len(evs) == 0 || kinds(evs[:1]) != "start" {
			t.Errorf("segment %s on the full disk does not replay", s.name)
		}
	}

	os.Remove(filler)
	g.clock.Add(RetryEvery)
	last := tick(g.clock.t, 1<<40)
	g.write(last)
	if st := g.rec.Stats(); st.Paused {
		t.Fatalf("still paused with space back: %+v", st)
	}
	if logs := g.logged(); len(logs) != 2 || !strings.Contains(logs[1], "recording resumed") {
		t.Fatalf("logged %q, want a resume line", logs)
	}
	g.close()
	got, warns := readDir(t, g.dir, time.Time{}, time.Time{})
	if len(warns) > 1 {
		t.Errorf("warnings %q, want at most the torn tail of the segment that hit the full disk", warns)
	}
	if got[len(got)-1] != render(t, last) {
		t.Errorf("recording ends with %.100s, want the event written after resuming", got[len(got)-1])
	}
}

func TestReadOnlyDataDir(t *testing.T) {
	mnt := mountTmpfs(t, 64<<10, syscall.MS_RDONLY)
	dir := filepath.Join(mnt, "data")
	_, err := Open(Options{Dir: dir})
	if want := "data dir " + dir + ": read-only file system: pass --data-dir on a writable disk"; err == nil || err.Error() != want {
		t.Errorf("Open on a read-only disk: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EROFS) {
		t.Error("the errno is not kept")
	}
}
