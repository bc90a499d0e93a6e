package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/workload"
)

// enospcUnshare makes one failed unshare(CLONE_NEWNET): an incident.
func enospcUnshare() {
	exec.Command("unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_net_namespaces; unshare -n true").Run()
}

func segments(t *testing.T, dataDir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dataDir, "segments", "*.fst"))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// replayOK replays one file or data dir: it must exit 0 and may warn only
// about a torn tail.
func replayOK(t *testing.T, bin, path string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "replay", "--json", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("replay %s: %v\n%s", path, err, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		// A crash or a full disk leaves an incomplete last record; anything
		// else (a bad checksum mid-file, a bad header) is damage.
		if line != "" && !strings.Contains(line, "incomplete record") && !strings.Contains(line, "torn") {
			t.Errorf("replay %s: unexpected warning %q", path, line)
		}
	}
	return stdout.Bytes()
}

// An agent killed with SIGKILL at random moments, five times over one data
// dir: every segment and every pinned incident replays, each restart opens
// a new segment, and the dir reads as one recording with every session.
func TestAgentSIGKILL(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	const runs = 5
	for i := 0; i < runs; i++ {
		before := len(segments(t, dataDir))
		a := startAgent(t, bin, dataDir, "--incident-after", "200ms", "--segment-size", "16384")
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // a busy node: rings and failing clones until the kill
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if fd, err := workload.PacketRing(256<<10, 4); err == nil {
					unix.Close(fd)
				}
				enospcUnshare()
				time.Sleep(50 * time.Millisecond)
			}
		}()
		time.Sleep(1200*time.Millisecond + time.Duration(rand.IntN(2000))*time.Millisecond)
		killed := time.Now()
		a.cmd.Process.Signal(syscall.SIGKILL)
		a.cmd.Wait()
		close(stop)
		<-done
		// At most the last flush period (1 s) is lost: the newest tick in the
		// data dir is that close to the kill.
		if lag := killed.Sub(newestTick(t, bin, dataDir)); lag > 1500*time.Millisecond {
			t.Errorf("run %d: newest tick on disk %v before the kill, want <= 1.5s (flushes every second)", i, lag)
		}
		if after := len(segments(t, dataDir)); after <= before {
			t.Fatalf("run %d: %d segments after the run, %d before: the agent did not start a new one", i, after, before)
		}
	}
	for _, seg := range segments(t, dataDir) {
		if out := replayOK(t, bin, seg); !bytes.HasPrefix(out, []byte(`{"type":"start"`)) {
			t.Errorf("segment %s does not replay alone from its Start:\n%.200s", seg, out)
		}
	}
	pinned, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*.fst"))
	if len(pinned) == 0 {
		t.Fatal("no incident was pinned in five runs")
	}
	for _, p := range pinned {
		out, err := exec.Command(bin, "incidents", "--json", p).Output()
		if err != nil || !bytes.Contains(out, []byte(`"cause":"namespace_limit"`)) {
			t.Errorf("pinned %s: %v\n%.300s", p, err, out)
		}
	}
	t.Logf("%d segments, %d pinned incidents after %d kills", len(segments(t, dataDir)), len(pinned), runs)
	whole := replayOK(t, bin, dataDir)
	if n := bytes.Count(whole, []byte(`{"type":"start"`)); n != runs {
		t.Errorf("the data dir reads as %d sessions, want %d (one per agent run)", n, runs)
	}
	// And the agent still starts on it, clearing what a kill left half
	// written (a kill during a JSON write or a pin leaves a .tmp).
	a := startAgent(t, bin, dataDir)
	a.stop(t)
	for _, leftover := range must(filepath.Glob(filepath.Join(dataDir, "incidents", "*.tmp"))) {
		t.Errorf("half-written incident file left behind after a restart: %s", leftover)
	}
}

// newestTick is the time of the last tick in a recording.
func newestTick(t *testing.T, bin, path string) time.Time {
	t.Helper()
	out, err := exec.Command(bin, "export", "--format", "jsonl", path).Output()
	if err != nil {
		t.Fatalf("export %s: %v", path, err)
	}
	var last time.Time
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, `{"type":"tick"`) {
			continue
		}
		var obj struct {
			Event struct {
				Time time.Time `json:"time"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatal(err)
		}
		last = obj.Event.Time
	}
	return last
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Retention: a tiny size bound over a busy run keeps the segments under the
// bound (plus the segment being written), the oldest going first, and the
// kept incidents untouched.
func TestAgentRetention(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	const segSize, retain = 8 << 10, 32 << 10
	a := startAgent(t, bin, dataDir, "--segment-size", "8192", "--retain-size", "32768", "--incident-after", "100ms")
	enospcUnshare()
	var first string
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if fd, err := workload.PacketRing(256<<10, 4); err == nil {
			unix.Close(fd)
		}
		enospcUnshare()
		if segs := segments(t, dataDir); first == "" && len(segs) > 0 {
			first = segs[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.stop(t)
	var total int64
	segs := segments(t, dataDir)
	for _, s := range segs {
		st, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	t.Logf("after the run: %d segments, %d bytes (bound %d)", len(segs), total, retain)
	// The bound applies to closed segments; the one being written may add
	// up to a segment and a flush period's worth.
	if total > retain+2*segSize {
		t.Errorf("segments hold %d bytes in %d files, bound %d (+ the open segment)", total, len(segs), retain)
	}
	if len(segs) > 0 && segs[0] == first {
		t.Errorf("the oldest segment %s survived a run that wrote %d bytes over a %d bound", first, total, retain)
	}
	// Overlapping windows share one kept group: one JSON line per incident.
	inc, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*.json"))
	fst, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*.fst"))
	lines := 0
	for _, j := range inc {
		b, _ := os.ReadFile(j)
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines < 2 || len(fst) < 1 {
		t.Errorf("kept incidents: %d in %d JSON files, %d recordings; segment retention must not delete them", lines, len(inc), len(fst))
	}
	for _, p := range fst {
		if out, err := exec.Command(bin, "incidents", "--json", p).Output(); err != nil || !bytes.Contains(out, []byte("namespace_limit")) {
			t.Errorf("kept incident %s does not replay: %v", p, err)
		}
	}
}

// A full disk: the agent says so in one line, keeps serving metrics, loses
// nothing already on disk, and records again once there is room.
func TestAgentDiskFull(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	dataDir := filepath.Join(mnt, "data")
	a := startAgent(t, bin, dataDir, "--segment-size", "16384", "--incident-after", "100ms")

	busy := func(until func() bool, limit time.Duration) bool {
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			if until() {
				return true
			}
			if fd, err := workload.PacketRing(256<<10, 4); err == nil {
				unix.Close(fd)
			}
			enospcUnshare()
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}
	full := func() bool { return strings.Contains(a.stderr.String(), "recording paused") }
	if !busy(full, 20*time.Second) {
		t.Fatalf("the 64 KiB data dir never filled:\n%s", a.stderr.String())
	}
	if n := strings.Count(a.stderr.String(), "no space left on device"); n != 1 {
		t.Errorf("the full disk was reported %d times, want once:\n%s", n, a.stderr.String())
	}
	if code, body := a.get("/metrics"); code != 200 || !strings.Contains(body, "fragscope_page_allocations_total") {
		t.Errorf("metrics while the disk is full: %d", code)
	} else if v, _ := sample(t, body, "fragscope_recorder_paused", nil); v != 1 {
		t.Errorf("fragscope_recorder_paused = %v while the disk is full, want 1", v)
	}
	onDisk := segments(t, dataDir)
	for _, seg := range onDisk {
		replayOK(t, bin, seg)
	}

	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
	resumed := func() bool {
		return strings.Contains(a.stderr.String(), "recording resumed") && len(segments(t, dataDir)) > len(onDisk)
	}
	if !busy(resumed, 20*time.Second) {
		t.Fatalf("recording did not resume once there was room:\n%s", a.stderr.String())
	}
	busy(func() bool { return false }, time.Second)
	{
		_, body := a.get("/metrics")
		if v, _ := sample(t, body, "fragscope_recorder_paused", nil); v != 0 {
			t.Errorf("fragscope_recorder_paused = %v after recording resumed, want 0", v)
		}
		if v, _ := sample(t, body, "fragscope_recorder_events_dropped_total", nil); v == 0 {
			t.Error("no dropped events counted for the time the disk was full")
		}
	}
	a.stop(t)
	for _, seg := range onDisk {
		if _, err := os.Stat(seg); err != nil {
			t.Errorf("segment written before the disk filled is gone: %v", err)
		}
	}
	for _, seg := range segments(t, dataDir) {
		replayOK(t, bin, seg)
	}
	t.Logf("log:\n%s", a.stderr.String())
}
