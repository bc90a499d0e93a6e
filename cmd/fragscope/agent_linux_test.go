package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/workload"
)

// agentProc is a running `fragscope agent` on a free loopback port.
type agentProc struct {
	cmd     *exec.Cmd
	addr    string
	dataDir string
	stderr  *bytes.Buffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startAgent(t *testing.T, bin, dataDir string, extra ...string) *agentProc {
	t.Helper()
	a := &agentProc{addr: freeAddr(t), dataDir: dataDir, stderr: &bytes.Buffer{}}
	args := append([]string{"agent", "--data-dir", dataDir, "--listen", a.addr, "--interval", "200ms", "--log-format", "json"}, extra...)
	a.cmd = exec.Command(bin, args...)
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			a.cmd.Process.Kill()
			a.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := a.get("/readyz"); code == http.StatusOK {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never ready; stderr:\n%s", a.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *agentProc) get(path string) (int, string) {
	resp, err := http.Get("http://" + a.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample returns the value of the series whose name and labels match
// (every label given must match; others are ignored), summed over matches.
func sample(t *testing.T, exposition, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, k+`="`+v+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		sum += f
		found = true
	}
	return sum, found
}

func (a *agentProc) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	err := a.cmd.Wait()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, a.stderr.String())
	}
	return took
}

// ensureSampleReady waits until the scrape shows a condition, since counter
// deltas arrive with the next tick.
func waitMetric(t *testing.T, a *agentProc, name string, labels map[string]string, atLeast float64) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := a.get("/metrics")
		v, _ := sample(t, body, name, labels)
		if v >= atLeast {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want >= %v", name, labels, v, atLeast)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The agent as a user runs it: up, scraped, packet rings and an ENOSPC
// unshare move its counters, the incident is kept with its recording, which
// replays alone to the namespace_limit verdict; SIGTERM ends it at once.
func TestAgentLive(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, bin, dataDir, "--incident-after", "1s", "--node-name", "node-a")

	if code, body := a.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	_, body := a.get("/metrics")
	for _, fam := range []string{"fragscope_free_blocks", "fragscope_build_info", "fragscope_hook_attached", "process_resident_memory_bytes", "go_goroutines",
		"fragscope_recorder_paused", "fragscope_recorder_written_bytes_total", "fragscope_incident_pin_failures_total"} {
		if _, ok := sample(t, body, fam, nil); !ok {
			t.Errorf("no %s in the first scrape", fam)
		}
	}
	before, _ := sample(t, body, "fragscope_page_allocations_total", map[string]string{"order": "6", "migratetype": "unmovable"})

	fd, err := workload.PacketRing(256<<10, 16) // 16 order-6 unmovable blocks
	if err != nil {
		t.Fatalf("packet ring: %v", err)
	}
	unix.Close(fd)
	waitMetric(t, a, "fragscope_page_allocations_total", map[string]string{"order": "6", "migratetype": "unmovable"}, before+16)

	out, _ := exec.Command("unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_net_namespaces; unshare -n true").CombinedOutput()
	if !strings.Contains(string(out), "No space left") {
		t.Fatalf("the ENOSPC workload did not fail as expected: %s", out)
	}
	waitMetric(t, a, "fragscope_namespace_syscall_failures_total", map[string]string{"syscall": "unshare", "errno": "ENOSPC"}, 1)
	waitMetric(t, a, "fragscope_incidents_total", map[string]string{"verdict": "namespace_limit"}, 1)

	// The JSON at once, the recording once --incident-after has passed.
	var jsonFile, traceFile string
	// Other tests may make failures too (the agent sees the whole node):
	// each joins the group and moves its pin --incident-after later.
	deadline := time.Now().Add(30 * time.Second)
	for traceFile == "" {
		js, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*namespace_limit*.json"))
		fs, _ := filepath.Glob(filepath.Join(dataDir, "incidents", "*namespace_limit*.fst"))
		if len(js) > 0 && len(fs) > 0 {
			jsonFile, traceFile = js[0], fs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("incident not kept: %v %v\n%s", js, fs, a.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The last incident's report on the listen address (docs/report.md).
	if code, body := a.get("/report"); code != http.StatusOK || !strings.Contains(body, `data-cause="namespace_limit"`) ||
		!strings.Contains(body, "<svg") {
		t.Errorf("/report: %d, want the HTML report with the namespace_limit card:\n%.400s", code, body)
	}
	if took := a.stop(t); took > 2*time.Second {
		t.Errorf("SIGTERM to exit took %v, want < 2s", took)
	}

	kept, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := exec.Command(bin, "incidents", "--json", traceFile).Output()
	if err != nil {
		t.Fatalf("incidents on the pinned recording: %v", err)
	}
	if !bytes.Contains(replayed, []byte(`"cause":"namespace_limit"`)) {
		t.Errorf("pinned recording does not replay to namespace_limit:\n%s", replayed)
	}
	if !bytes.Contains(replayed, bytes.TrimSpace(kept)) {
		t.Errorf("the kept JSON is not the object `incidents --json` prints for its recording:\nkept:\n%s\nreplayed:\n%s", kept, replayed)
	}
	// The data dir replays as one recording too, with the node's name.
	whole, err := exec.Command(bin, "replay", dataDir, "--json").Output()
	if err != nil {
		t.Fatalf("replay of the data dir: %v", err)
	}
	if !bytes.Contains(whole, []byte(`"hostname":"node-a"`)) || !bytes.Contains(whole, []byte(`"errno_name":"ENOSPC"`)) {
		t.Errorf("data dir replay lacks the node name or the failure:\n%.400s", whole)
	}
	// --since/--until cut it: a window ending before the first incident
	// holds none, one starting at it holds it, and both begin with a Start.
	var first struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(bytes.SplitN(kept, []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	cut := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"incidents", dataDir, "--json"}, args...)...).Output()
		if err != nil {
			t.Fatalf("incidents %v: %v", args, err)
		}
		return out
	}
	// The kept incident by its own time: other packages' tests, run beside
	// this one, make failures of their own that the agent keeps too.
	own := []byte(`"type":"incident","time":"` + first.Time.Format(time.RFC3339Nano) + `"`)
	if out := cut("--until", first.Time.Add(-time.Millisecond).Format(time.RFC3339Nano)); bytes.Contains(out, own) {
		t.Errorf("--until before the incident still shows it:\n%.300s", out)
	}
	if out := cut("--since", first.Time.Add(-time.Millisecond).Format(time.RFC3339Nano)); !bytes.Contains(out, own) {
		t.Errorf("--since just before the incident lost it")
	}
	if out := cut("--since", "1h"); !bytes.Contains(out, own) {
		t.Errorf("--since 1h (a duration before now) lost the incident")
	}

	// Log: JSON lines, a start-up line naming hooks, one incident line naming the files.
	var sawStart, sawIncident bool
	for _, line := range strings.Split(strings.TrimSpace(a.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		switch rec["msg"] {
		case "fragscope agent starting":
			_, sawStart = rec["attached"].(map[string]any)
		case "incident":
			sawIncident = rec["recording"] == traceFile && rec["json"] == jsonFile
		}
	}
	if !sawStart || !sawIncident {
		t.Errorf("log lacks the start-up line (%v) or the incident line naming its files (%v):\n%s", sawStart, sawIncident, a.stderr.String())
	}
}

// Bad set-up fails before attaching, in one line naming the fix.
func TestAgentBadSetup(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, c := range []struct {
		args []string
		want *regexp.Regexp
	}{
		{[]string{"agent", "--data-dir", t.TempDir(), "--listen", busy.Addr().String()}, regexp.MustCompile(`--listen .*address already in use`)},
		{[]string{"agent", "--data-dir", filepath.Join(file, "sub")}, regexp.MustCompile(`data dir`)},
		{[]string{"record", "-o", filepath.Join(file, "sub", "x.fst")}, regexp.MustCompile(`create trace`)},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !c.want.MatchString(lines[0]) {
			t.Errorf("%v: err %v, want one line matching %v, got:\n%s", c.args, err, c.want, out)
		}
		if strings.Contains(string(out), "attached") {
			t.Errorf("%v: hooks were attached before the set-up error", c.args)
		}
	}
}
