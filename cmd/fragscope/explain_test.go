package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/testutil"
)

const (
	kmsgCorpus  = "../../testdata/kmsg"
	explainGold = "../../testdata/explain"
)

// Every log of the kernel-log corpus explains into its golden text and
// JSON (go test ./cmd/fragscope -run TestExplainGolden -update, then review
// the diff).
func TestExplainGolden(t *testing.T) {
	bin := buildBinary(t)
	logs, err := filepath.Glob(filepath.Join(kmsgCorpus, "*.log"))
	if err != nil || len(logs) < 20 {
		t.Fatalf("want the kernel-log corpus in %s, found %d (%v)", kmsgCorpus, len(logs), err)
	}
	for _, log := range logs {
		name := strings.TrimSuffix(filepath.Base(log), ".log")
		for _, mode := range []struct {
			suffix string
			args   []string
		}{{".txt", nil}, {".json", []string{"--json"}}} {
			// Run from the corpus directory so the file name in the output is the bare name.
			cmd := exec.Command(bin, append(append([]string{"explain"}, mode.args...), filepath.Base(log))...)
			cmd.Dir = kmsgCorpus
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("explain %s: %v", log, err)
			}
			golden(t, filepath.Join(explainGold, name+mode.suffix), out)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	testutil.Golden(t, path, got, *update)
}

// disagree lists the corpus rows where explain's verdict differs from the
// README table's on purpose, with the log's own reason; the test checks
// the verdict stays what is argued here, so a change is noticed.
var disagree = map[string]struct{ got, why string }{
	"007-spl-217-splat-per-cpu-3.8": {"opportunistic", "mode 0x10d0 on 3.8 is GFP_KERNEL|__GFP_NORETRY " +
		"(___GFP_NORETRY 0x1000 in 3.x include/linux/gfp.h): a no-retry attempt, whatever the cut Mem-Info"},
	"010-unixse-593335-csky-cma-order10-4.9": {"opportunistic", "the Normal free-list line is cut before " +
		"its first column, so no free block count is in the log; the request is GFP_ATOMIC, which the " +
		"table calls opportunistic; the CMA-only blocks are the question's prose, not the log's"},
	"025-x86-pagealloc-dma-oom-2.6.24-wrapped-frames": {"unknown", "the parser reads no Mem-Info zone " +
		"from this 2.6.24 dump (internal/kmsg), so ZONE_DMA's numbers are not there to judge"},
}

// Each corpus log's verdict is the one the README table expects from the
// log's numbers (or the one argued in disagree).
func TestExplainCorpusVerdicts(t *testing.T) {
	bin := buildBinary(t)
	want := readCorpusTable(t)
	if len(want) < 20 {
		t.Fatalf("read %d rows from the corpus README's table, want every log", len(want))
	}
	for name, exp := range want {
		out, err := exec.Command(bin, "explain", "--json", filepath.Join(kmsgCorpus, name+".log")).Output()
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		got := fileVerdict(t, out)
		if d, ok := disagree[name]; ok {
			if got != d.got {
				t.Errorf("%s: verdict %q, want %q as argued (%s); the README says %q", name, got, d.got, d.why, exp)
			}
			continue
		}
		if got != exp {
			t.Errorf("%s: verdict %q, the README table expects %q", name, got, exp)
		}
	}
}

// fileVerdict is the verdict of a log's first incident that is about a
// failure (not a lone Mem-Info excerpt or a suppressed-reports line), else
// of its first; "" for a log with none.
func fileVerdict(t *testing.T, out []byte) string {
	var first, main string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Type     string `json:"type"`
			Incident struct {
				Verdict struct{ Cause string } `json:"verdict"`
				Kernel  *struct{ What string } `json:"kernel_log"`
			} `json:"incident"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		if line.Type != "incident" {
			continue
		}
		c := line.Incident.Verdict.Cause
		if first == "" {
			first = c
		}
		if k := line.Incident.Kernel; main == "" && k != nil && k.What != "Mem-Info excerpt" && k.What != "suppressed reports" {
			main = c
		}
	}
	if main != "" {
		return main
	}
	return first
}

var boldRE = regexp.MustCompile(`\*\*([^*]+)\*\*`)

// readCorpusTable reads the expected verdict of each log from the README's
// table: the first bold phrase of the last column when it is a verdict;
// the phrases the table uses for failures that are no page shortage
// ("vmalloc space", "not a buddy shortage", "not a memory shortage") are
// unknown, whose reasons say so; "no report" is no incident; a phrase
// followed by "-> VERDICT" is that verdict.
func readCorpusTable(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join(kmsgCorpus, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	verdicts := []string{"fragmentation", "exhaustion", "memcg_limit", "opportunistic", "unknown"}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| 0") {
			continue
		}
		cells := strings.Split(line, " | ")
		name := strings.TrimPrefix(cells[0], "| ")
		last := cells[len(cells)-1]
		m := boldRE.FindStringSubmatchIndex(last)
		if m == nil {
			t.Fatalf("README row %s has no bold verdict", name)
		}
		phrase := last[m[2]:m[3]]
		v := ""
		switch {
		case contains(verdicts, phrase):
			v = phrase
		case phrase == "no report":
		case strings.Contains(phrase, "vmalloc space") || strings.Contains(phrase, "not a buddy shortage") ||
			strings.Contains(phrase, "not a memory shortage"):
			v = "unknown"
		default:
			rest := last[m[1]:]
			for _, x := range verdicts {
				if strings.HasPrefix(strings.TrimSpace(rest), "-> "+x) {
					v = x
				}
			}
			if v == "" {
				t.Fatalf("README row %s: cannot read a verdict from %q", name, phrase)
			}
		}
		out[name] = v
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// A recording made by explain replays into the same incidents.
func TestExplainRecordReplays(t *testing.T) {
	bin := buildBinary(t)
	log := filepath.Join(kmsgCorpus, "001-seed-rhel7-nf_conntrack.log")
	rec := filepath.Join(t.TempDir(), "seed.fst")
	direct, err := exec.Command(bin, "explain", "--json", "--record", rec, log).Output()
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := exec.Command(bin, "incidents", "--json", rec).Output()
	if err != nil {
		t.Fatal(err)
	}
	a, b := bytes.Split(direct, []byte("\n")), bytes.Split(replayed, []byte("\n"))
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || !bytes.Equal(a[i], b[i]) {
			t.Fatalf("incidents --json of explain's recording differs from explain --json at line %d", i+1)
		}
	}
}

// The seed's own log is the incident fragscope exists for.
func TestExplainSeed(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "explain", "--json", filepath.Join(kmsgCorpus, "001-seed-rhel7-nf_conntrack.log")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		Incident struct {
			Chain   []string `json:"chain"`
			Verdict struct{ Cause string }
			Memory  struct {
				Order int
				Zones []struct {
					Name    string `json:"zone"`
					Largest int    `json:"largest_free_order"`
				}
			}
			NextSteps []string `json:"next_steps"`
		}
	}
	if err := json.Unmarshal(bytes.SplitN(out, []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	inc := first.Incident
	if inc.Verdict.Cause != "fragmentation" || inc.Memory.Order != 6 {
		t.Errorf("verdict %s for order %d, want fragmentation for order 6", inc.Verdict.Cause, inc.Memory.Order)
	}
	normal := -2
	for _, z := range inc.Memory.Zones {
		if z.Name == "Normal" {
			normal = z.Largest
		}
	}
	if normal != 5 {
		t.Errorf("Normal's largest free order %d, want 5", normal)
	}
	chain := strings.Join(inc.Chain, " -> ")
	for _, want := range []string{"clone", "copy_net_ns", "nf_conntrack_init_net", "kmem_cache_create(nf_conntrack_ffff8803eef66180)"} {
		if !strings.Contains(chain, want) {
			t.Errorf("chain %q lacks %s", chain, want)
		}
	}
	if steps := strings.Join(inc.NextSteps, "\n"); !strings.Contains(steps, "cgroup.memory=nokmem") || !strings.Contains(steps, "per-memcg") {
		t.Errorf("next steps lack the per-memcg cache advice:\n%s", steps)
	}
}

// explain reads stdin with '-', and names a missing file in one line.
func TestExplainInputs(t *testing.T) {
	bin := buildBinary(t)
	f, err := os.Open(filepath.Join(kmsgCorpus, "001-seed-rhel7-nf_conntrack.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "explain", "--json", "-")
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil || !bytes.Contains(out, []byte(`"cause":"fragmentation"`)) {
		t.Errorf("explain - : %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "explain", "/nonexistent/kern.log").CombinedOutput()
	if err == nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "/nonexistent/kern.log") {
		t.Errorf("a missing file: err %v, want one line naming it, got %q", err, out)
	}
}
