package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/trace"
)

// kubeletTrace records aggtest.Kubelet: kubelet-shaped cgroup paths of
// both drivers, per-cgroup counter deltas, a cgroup removed mid-session.
func kubeletTrace(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubelet.synthetic.fst")
	w, err := trace.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range aggtest.Kubelet() {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// `replay --top` reproduces `fragscope top` from a recording, byte for
// byte on every run.
func TestReplayTopGolden(t *testing.T) {
	bin := buildBinary(t)
	traces := map[string]string{
		"seed-incident": filepath.Join(tracesDir, seedTrace),
		"kubelet":       kubeletTrace(t),
	}
	for name, tr := range traces {
		for _, mode := range []struct {
			suffix string
			args   []string
		}{
			{".top.txt", []string{"replay", "--top", tr}},
			{".top-failures.txt", []string{"replay", "--top", "--summary", "--sort", "failures", "--limit", "3", tr}},
			{".top.ndjson", []string{"replay", "--top", "--json", "--sort", "unmovable", tr}},
		} {
			t.Run(name+mode.suffix, func(t *testing.T) {
				out, err := exec.Command(bin, mode.args...).Output()
				if err != nil {
					t.Fatalf("%v: %v", mode.args, err)
				}
				again, err := exec.Command(bin, mode.args...).Output()
				if err != nil || !bytes.Equal(out, again) {
					t.Errorf("%v: two replays differ (err %v)", mode.args, err)
				}
				golden := filepath.Join("testdata", "top", name+mode.suffix)
				if *update {
					if err := os.WriteFile(golden, out, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if !bytes.Equal(out, want) {
					t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", mode.args, golden, out)
				}
			})
		}
	}
}

func TestReplayTopFlags(t *testing.T) {
	bin := buildBinary(t)
	tr := filepath.Join(tracesDir, seedTrace)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--sort", "failures", tr}, "use them with --top"},
		{[]string{"replay", "--top", "--sort", "memory", tr}, `sort key "memory"`},
		{[]string{"replay", "--top", "--limit", "-1", tr}, "--limit"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err %v, output %q; want an error saying %q", tc.args, err, out, tc.want)
		}
	}
	out, err := exec.Command(bin, "replay", "--top", "--summary", "--limit", "1", kubeletTrace(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	if strings.Count(text, "\n") != 8 || !strings.Contains(text, "1 of 5 shown") || !strings.Contains(text, "containerd 3c1d9a8b7c6d 6d1c3a0e burstable") {
		t.Errorf("replay --top --summary --limit 1:\n%s", text)
	}
}
