package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
)

// promtool lints an exposition with Prometheus's own checker (Debian's
// prometheus package installs it). Missing, it skips, except under CI,
// whose script installs it.
func promtool(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found: CI installs the prometheus package for it")
		}
		t.Skip("promtool not found (apt-get install prometheus)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

func TestPromtool(t *testing.T) {
	for name, st := range map[string]*lockedState{
		"seed":    {s: State{Agg: newAgg(aggtest.Session()...), Incidents: map[string]uint64{"fragmentation": 1}}},
		"kubelet": {s: State{Agg: newAgg(aggtest.Kubelet()...)}},
		"empty":   {},
	} {
		t.Run(name, func(t *testing.T) { promtool(t, exposition(t, NewRegistry(st, Options{}))) })
	}
}
