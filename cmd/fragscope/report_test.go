package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/flight"
	"github.com/fragscope/fragscope/internal/report/reporttest"
	"github.com/fragscope/fragscope/internal/testutil"
	"github.com/fragscope/fragscope/internal/trace"
)

// reportInputs are the real fixtures a report is drawn from, with the
// golden outline of each: the guest recordings, the recordings made on
// this machine, the synthetic seed recording and the seed's kernel log.
func reportInputs(t *testing.T) map[string]string {
	t.Helper()
	in := map[string]string{}
	for _, pat := range []string{filepath.Join(vmTracesDir, "*.trace"), filepath.Join(tracesDir, "*.fst")} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			base := strings.TrimSuffix(strings.TrimSuffix(f, ".fst"), ".trace")
			in[f] = base + ".report.txt"
		}
	}
	in[filepath.Join(kmsgCorpus, "001-seed-rhel7-nf_conntrack.log")] = "../../testdata/explain/001-seed-rhel7-nf_conntrack.report.txt"
	if len(in) < 9 {
		t.Fatalf("want the guest and host recordings and the seed log, found %v", in)
	}
	return in
}

// Every fixture renders into a self-contained page whose structure (the
// sections, every chart with its series, every incident card with its
// fields, the tables) is its golden outline.
func TestReportGolden(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for input, golden := range reportInputs(t) {
		t.Run(filepath.Base(input), func(t *testing.T) {
			out := filepath.Join(dir, filepath.Base(input)+".html")
			if b, err := exec.Command(bin, "report", "-o", out, input).CombinedOutput(); err != nil {
				t.Fatalf("report %s: %v\n%s", input, err, b)
			}
			doc, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range reporttest.SelfContained(doc) {
				t.Errorf("not self-contained: %s", p)
			}
			outline, err := reporttest.Outline(doc)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(outline, "MISSING") || strings.Contains(outline, "NO SVG") || strings.Contains(outline, "BAD") {
				t.Errorf("incomplete report:\n%s", outline)
			}
			testutil.Golden(t, golden, []byte(outline), *update)
		})
	}
}

// Every log of the kernel-log corpus (many kernels and mangled formats)
// renders a self-contained report whose cards are complete, with a zone
// picture for each incident whose Mem-Info had free-block lines: as many
// as `explain --json` shows.
func TestReportKmsgCorpus(t *testing.T) {
	bin := buildBinary(t)
	logs, err := filepath.Glob(filepath.Join(kmsgCorpus, "*.log"))
	if err != nil || len(logs) < 20 {
		t.Fatalf("want the corpus in %s, found %d (%v)", kmsgCorpus, len(logs), err)
	}
	pictures, want := 0, 0
	for _, l := range logs {
		js, err := exec.Command(bin, "explain", "--json", l).Output()
		if err != nil {
			t.Fatalf("explain %s: %v", l, err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(js), []byte("\n")) {
			var obj struct {
				Incident struct {
					Memory *struct {
						Zones []struct {
							FreeBlocks []uint64 `json:"free_blocks"`
						} `json:"zones"`
					} `json:"memory"`
				} `json:"incident"`
			}
			if json.Unmarshal(line, &obj) != nil || obj.Incident.Memory == nil {
				continue
			}
			for _, z := range obj.Incident.Memory.Zones {
				if slices.ContainsFunc(z.FreeBlocks, func(n uint64) bool { return n > 0 }) {
					want++
					break
				}
			}
		}
		doc, err := exec.Command(bin, "report", "-o", "-", l).Output()
		if err != nil {
			t.Errorf("report %s: %v", l, err)
			continue
		}
		outline, err := reporttest.Outline(doc)
		if err != nil {
			t.Fatal(err)
		}
		if p := reporttest.SelfContained(doc); len(p) > 0 || strings.Contains(outline, "MISSING") || strings.Contains(outline, "NO SVG") {
			t.Errorf("%s: %v\n%s", l, p, outline)
		}
		pictures += strings.Count(outline, "chart zones-")
	}
	if pictures != want || want < 5 {
		t.Errorf("%d zone pictures in the corpus' reports, want %d: one per incident with free blocks", pictures, want)
	}
}

// The failing clone's report holds what the incident was, and the
// fragmentation recording's heatmaps mark its failures: checked on the
// page itself, not only on the outline.
func TestReportContents(t *testing.T) {
	bin := buildBinary(t)
	clone, err := exec.Command(bin, "report", "-o", "-", filepath.Join(vmTracesDir, "failing-clone-faultinject.trace")).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unshare(CLONE_NEWNET) by fsworkload[124] failed with ENOMEM", "copy_net_ns",
		"hook fexit", "__alloc_pages_noprof", `id="heatmap-0-DMA32"`, `id="incident-1"`} {
		if !bytes.Contains(clone, []byte(want)) {
			t.Errorf("failing-clone report lacks %q", want)
		}
	}
	frag, err := exec.Command(bin, "report", "-o", "-", filepath.Join(vmTracesDir, "fragmentation-6.12.trace")).Output()
	if err != nil {
		t.Fatal(err)
	}
	outline, err := reporttest.Outline(frag)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`chart heatmap-0-DMA32`, `series "failed allocation" points`, `chart fragindex-0-DMA32`, `series "order 6"`, `chart extfrag`} {
		if !strings.Contains(outline, want) {
			t.Errorf("fragmentation report lacks %s:\n%s", want, outline)
		}
	}
	// Twice the same input: the same bytes (no clock, no map order).
	again, err := exec.Command(bin, "report", "-o", "-", filepath.Join(vmTracesDir, "fragmentation-6.12.trace")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frag, again) {
		t.Error("two reports of the same recording differ")
	}
}

// An agent's data dir is read as one recording, and --since/--until cut
// it: the failing clone written by a flight recorder, as the agent writes
// it, reports the same incident, and a window before it holds none.
func TestReportDataDir(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	r, f, err := trace.Open(filepath.Join(vmTracesDir, "failing-clone-faultinject.trace"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var clock time.Time
	rec, err := flight.Open(flight.Options{Dir: dir, Now: func() time.Time { return clock }, RetainAge: 100 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&trace.Source{Reader: r}).Run(context.Background(), func(ev event.Event) {
		if w := ev.When(); w.After(clock) {
			clock = w
		}
		if err := rec.Write(ev); err != nil {
			t.Fatal(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := exec.Command(bin, "report", "-o", "-", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(whole, []byte("data dir <b>")) || !bytes.Contains(whole, []byte(`id="incident-1"`)) {
		t.Errorf("data dir report lacks its kind or the incident:\n%.600s", whole)
	}
	before, err := exec.Command(bin, "report", "-o", "-", "--until", "2026-11-27T14:02:10Z", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(before, []byte(`id="incident-1"`)) || !bytes.Contains(before, []byte("--until 2026-11-27T14:02:10Z")) {
		t.Errorf("a window ending before the incident shows it, or its title lacks the window:\n%.600s", before)
	}
}

// Bad input: one line naming the problem, non-zero exit, nothing written.
func TestReportErrors(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "-o", filepath.Join(dir, "x.html")}, "exactly one RECORDING"},
		{[]string{"report", "-o", filepath.Join(dir, "x.html"), filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"report", "-o", filepath.Join(dir, "x.html"), vmTracesDir}, "not an agent data dir"},
		{[]string{"report", "-o", filepath.Join(dir, "no", "x.html"), filepath.Join(vmTracesDir, "fragmentation-6.12.trace")}, "writable -o FILE"},
		{[]string{"report", "-o", filepath.Join(dir, "x.html"), "--since", "1h", filepath.Join(kmsgCorpus, "001-seed-rhel7-nf_conntrack.log")}, "kernel log"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: exit 0", tc.args)
			continue
		}
		if !strings.Contains(string(out), tc.want) || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Errorf("%v: want one line with %q, got %q", tc.args, tc.want, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed reports left files: %v", ents)
	}
}
