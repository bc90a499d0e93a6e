package view_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/view"
)

func top(t *testing.T, opt view.TopOptions) string {
	var out bytes.Buffer
	run(t, view.NewTop(&out, opt), aggtest.Kubelet())
	return out.String()
}

func TestTopGolden(t *testing.T) {
	golden(t, "kubelet.top.txt", []byte(top(t, view.TopOptions{Limit: 10})))
	golden(t, "kubelet.top-highorder.txt", []byte(top(t, view.TopOptions{Sort: aggregate.SortHighOrder, Limit: 3})))
	golden(t, "kubelet.top.ndjson", []byte(top(t, view.TopOptions{Sort: aggregate.SortUnmovable, Limit: 4, JSON: true})))
}

func TestTopTerminal(t *testing.T) {
	for _, tty := range []bool{false, true} {
		out := top(t, view.TopOptions{TTY: tty, Limit: 10})
		if got := strings.Count(out, "\x1b[H\x1b[2J"); (tty && got != 3) || (!tty && got != 0) {
			t.Errorf("tty=%v: %d screen clears", tty, got)
		}
		for _, line := range strings.Split(strings.ReplaceAll(out, "\x1b[H\x1b[2J", ""), "\n") {
			if len(line) > 100 {
				t.Errorf("tty=%v: line of %d columns: %q", tty, len(line), line)
			}
		}
		final := out[strings.Index(out, "fragscope top session summary"):]
		for _, want := range []string{
			"!! 7 allocations not attributed to a cgroup (kernel cgroup map full)",
			"cgroups by fragmenting extfrag fallbacks, 5 of 5 shown; counts: session",
		} {
			if !strings.Contains(final, want) {
				t.Errorf("tty=%v: final ranking lacks %q\n%s", tty, want, final)
			}
		}
		for _, row := range [][]string{
			// Tied at 60 fragmenting with the CRI-O container: more unmovable high-order allocations.
			{"1", "...ntainerd-3c1d9a8b7c6d.scope", "containerd", "3c1d9a8b7c6d", "6d1c3a0e", "burstable", "60", "24", "0"},
			{"2", ".../crio-f00dfeedf00d.scope", "cri-o", "f00dfeedf00d", "0a1b2c3d", "guaranteed", "60", "10", "2", "removed"},
			{"3", "cgroup", "id", "2005", "0", "1", "0"},
			// kubelet's cgroupfs driver does not name the runtime.
			{"4", ".../pod9b2e7f40/a0b1c2d3e4f5", "a0b1c2d3e4f5", "9b2e7f40", "besteffort", "0", "0", "1"},
			{"5", ".../containerd.service", "0", "0", "0"},
		} {
			if !containsLine(final, row) {
				t.Errorf("tty=%v: final ranking lacks the row %q:\n%s", tty, row, final)
			}
		}
	}
}

func TestTopJSON(t *testing.T) {
	out := top(t, view.TopOptions{Sort: aggregate.SortFailures, Limit: 2, JSON: true})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d objects, want 3 intervals and the final one:\n%s", len(lines), out)
	}
	type counts struct {
		Fragmenting, Fallbacks, Failures uint64
		UnmovableHighOrder               uint64 `json:"unmovable_high_order"`
		HighOrder                        uint64 `json:"high_order"`
	}
	var objs []struct {
		Type, Time, Sort string
		Final            bool
		Seq              uint64
		CgroupsActive    int    `json:"cgroups_active"`
		CgroupOverflow   uint64 `json:"cgroup_overflow"`
		Cgroups          []struct {
			Rank      int
			ID        uint64 `json:"cgroup_id"`
			Path      string `json:"cgroup_path"`
			Removed   bool
			Container struct {
				Runtime     string
				ContainerID string `json:"container_id"`
				PodUID      string `json:"pod_uid"`
				QoS         string
				Driver      string
			}
			counts
			Interval *counts
		}
	}
	if err := json.Unmarshal([]byte("["+strings.Join(lines, ",")+"]"), &objs); err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		if o.Type != "top" || o.Sort != "failures" || o.Final != (i == 3) || len(o.Cgroups) != 2 || o.CgroupsActive != 5 {
			t.Errorf("object %d: type %q sort %q final %v, %d of %d cgroups", i, o.Type, o.Sort, o.Final, len(o.Cgroups), o.CgroupsActive)
		}
	}
	last := objs[3]
	if last.Seq != 3 || last.CgroupOverflow != 7 || last.Time != "2017-03-02T10:00:03Z" {
		t.Errorf("final object: seq %d, overflow %d, time %s", last.Seq, last.CgroupOverflow, last.Time)
	}
	first := last.Cgroups[0]
	if first.Rank != 1 || first.ID != aggtest.CRIOCgroup || first.Path != aggtest.CRIOPath || !first.Removed ||
		first.Container.Runtime != "cri-o" || first.Container.PodUID != aggtest.GuaranteedUID ||
		first.Container.ContainerID != aggtest.CRIOContainerID || first.Container.QoS != "guaranteed" ||
		first.Container.Driver != "systemd" || first.Failures != 2 || first.Fragmenting != 60 ||
		first.Interval == nil || *first.Interval != (counts{}) {
		t.Errorf("final ranking's first row = %+v", first)
	}
	// After interval 2, the cgroupfs pod's failure is in the interval counts.
	second := objs[1].Cgroups[1]
	if second.ID != aggtest.CgroupfsCgroup || second.Interval == nil || second.Interval.Failures != 1 || second.Interval.HighOrder != 64 {
		t.Errorf("interval 2, second row = %+v", second)
	}
}

// The watch screens and summary rank the top fragmenters; interval and
// summary objects carry a "cgroups" ranking.
func TestTopFragmentersInWatch(t *testing.T) {
	var out bytes.Buffer
	run(t, view.NewTerminal(&out, false), aggtest.Kubelet())
	text := out.String()
	sum := text[strings.Index(text, "fragscope session summary"):]
	for _, want := range []string{
		"TOP FRAGMENTERS (session)\n  FRAG fragmenting fallbacks  UNMOV unmovable order>=3  FAIL failures\n" +
			"  by fragmenting extfrag fallbacks\n",
		"  by unmovable allocations of order >= 3\n",
		"!! 7 allocations not attributed to a cgroup (kernel cgroup map full)",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	screen2 := strings.Split(text, strings.Repeat("-", 100)+"\n")[2]
	if !strings.Contains(screen2, "TOP FRAGMENTERS (this interval/session)") ||
		!strings.Contains(screen2, "containerd 3c1d9a8b7c6d 6d1c3a0e burstable  10/60  0/24  0/0\n") {
		t.Errorf("interval 2 screen lacks the top fragmenters:\n%s", screen2)
	}
	for _, line := range strings.Split(text[strings.Index(text, "-----"):], "\n") {
		if len(line) > 100 {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}

	out.Reset()
	run(t, view.NewJSON(&out), aggtest.Kubelet())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	var sumObj struct {
		Type           string
		CgroupOverflow uint64 `json:"cgroup_overflow"`
		Cgroups        []struct {
			Rank        int
			ID          uint64 `json:"cgroup_id"`
			Fragmenting uint64
			Interval    *json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sumObj); err != nil {
		t.Fatal(err)
	}
	if sumObj.Type != "summary" || sumObj.CgroupOverflow != 7 || len(sumObj.Cgroups) != 5 ||
		sumObj.Cgroups[0].ID != aggtest.ContainerdCgroup || sumObj.Cgroups[0].Fragmenting != 60 ||
		sumObj.Cgroups[1].ID != aggtest.CRIOCgroup || sumObj.Cgroups[0].Interval != nil {
		t.Errorf("summary cgroups = %+v", sumObj)
	}
}

func TestTopPodNames(t *testing.T) {
	evs := aggtest.Kubelet()
	for _, ev := range evs {
		if p, ok := ev.(*event.CgroupPath); ok && p.ID == aggtest.ContainerdCgroup {
			p.PodName, p.PodNamespace = "web-7d9c6b5f4-x2x9q", "shop"
		}
	}
	var text, js bytes.Buffer
	run(t, view.NewTop(&text, view.TopOptions{Limit: 1}), evs)
	run(t, view.NewTop(&js, view.TopOptions{Limit: 1, JSON: true}), evs)
	if !strings.Contains(text.String(), "containerd 3c1d9a8b7c6d shop/web-7d9c6b5f4-x2x9q burstable") {
		t.Errorf("pod name missing from the table:\n%s", text.String())
	}
	if !strings.Contains(js.String(), `"pod_uid":"`+aggtest.BurstableUID+`","pod_name":"web-7d9c6b5f4-x2x9q","pod_namespace":"shop"`) {
		t.Errorf("pod name missing from the JSON:\n%s", js.String())
	}
}
