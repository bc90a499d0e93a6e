package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
)

// Recording while watching: replaying the file gives the very NDJSON the
// live session printed, summary included, and twice the same bytes.
func TestReplayReproducesLive(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	file, ready := filepath.Join(dir, "s.fst"), filepath.Join(dir, "ready")
	var live, stderr bytes.Buffer
	cmd := exec.Command(bin, "watch", "--json", "--record", file, "--duration", "3s", "--interval", "500ms", "--ready-file", ready)
	cmd.Stdout, cmd.Stderr = &live, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitReady(t, cmd, ready, &stderr)
	exec.Command("unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_net_namespaces; unshare -n true").Run()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch: %v\n%s", err, stderr.String())
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("trace mode %v, want 0600", st.Mode().Perm())
	}
	replay := func() []byte {
		out, err := exec.Command(bin, "replay", "--json", file).Output()
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		return out
	}
	r1, r2 := replay(), replay()
	if !bytes.Equal(r1, r2) {
		t.Error("two replays of one file differ")
	}
	if !bytes.Equal(live.Bytes(), r1) {
		t.Errorf("replay differs from the live stream:\nlive:\n%s\nreplay:\n%s", live.String(), r1)
	}
	if !bytes.Contains(r1, []byte(`"errno_name":"ENOSPC"`)) {
		t.Error("the failed unshare is not in the replay")
	}
	sum, err := exec.Command(bin, "replay", "--summary", file).Output()
	if err != nil || !bytes.Contains(sum, []byte("unshare")) {
		t.Errorf("replay --summary: %v\n%s", err, sum)
	}
	exp, err := exec.Command(bin, "export", "--format", "jsonl", file).Output()
	if err != nil || !bytes.HasPrefix(exp, []byte(`{"type":"start"`)) || !bytes.Contains(exp, []byte(`"type":"ns_syscall"`)) {
		t.Errorf("export: %v\n%.300s", err, exp)
	}
}

// A recorder killed with SIGKILL at random moments leaves files that replay,
// holding every tick flushed before the kill (flushes come every second).
func TestRecorderSIGKILL(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	const runs = 5
	for i := 0; i < runs; i++ {
		dir := t.TempDir()
		file, ready := filepath.Join(dir, "k.fst"), filepath.Join(dir, "ready")
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "record", "-o", file, "--interval", "100ms", "--ready-file", ready)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitReady(t, cmd, ready, &stderr)
		alive := 1200*time.Millisecond + time.Duration(rand.IntN(2000))*time.Millisecond
		time.Sleep(alive)
		killed := time.Now()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		out, err := exec.Command(bin, "export", "--format", "jsonl", file).CombinedOutput()
		if err != nil {
			t.Fatalf("run %d (killed after %v): export failed: %v\n%s", i, alive, err, out)
		}
		// Flushes come every second: the newest tick in the file is at most
		// a second (plus scheduling slack) older than the kill.
		last := newestTick(t, bin, file)
		if lag := killed.Sub(last); last.IsZero() || lag > 1500*time.Millisecond {
			t.Errorf("run %d: killed after %v, newest tick on disk %v before the kill (want <= 1.5s: flushes every second)", i, alive, lag)
		}
		if !strings.HasPrefix(string(out), `{"type":"start"`) {
			t.Errorf("run %d: replay does not start with the header:\n%.200s", i, out)
		}
	}
}

func TestReplayBadInput(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("definitely not a trace"), 0o600)
	for _, args := range [][]string{
		{"replay", junk},
		{"replay", filepath.Join(dir, "missing")},
		{"replay"},
		{"export", "--format", "csv", junk},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v succeeded", args)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "fragscope: ") {
			t.Errorf("%v: want one error line, got:\n%s", args, out)
		}
	}
}
