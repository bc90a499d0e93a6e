package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"github.com/fragscope/fragscope/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func requireRoot(tb testing.TB) { testutil.RequireRoot(tb) }

// Black box: the built binary, --ready-file and --json, a failing unshare
// made after the ready file appears, and the NDJSON it prints.
func TestWatchJSONBlackBox(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	ready := filepath.Join(t.TempDir(), "ready")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "watch", "--json", "--duration", "4s", "--interval", "500ms", "--ready-file", ready)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("ready file never written; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	exec.Command("unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_net_namespaces; unshare -n true").Run()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch exited with %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "page_alloc   attached via") {
		t.Errorf("attach report missing from stderr:\n%s", stderr.String())
	}

	types := map[string]int{}
	var first, last string
	var sawENOSPC bool
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line is not JSON: %v: %.200s", err, sc.Text())
		}
		typ, _ := obj["type"].(string)
		if _, err := time.Parse(time.RFC3339Nano, obj["time"].(string)); err != nil {
			t.Errorf("%s: bad time %v", typ, obj["time"])
		}
		types[typ]++
		if first == "" {
			first = typ
		}
		last = typ
		if typ == "ns_syscall" && obj["syscall"] == "unshare" && obj["errno_name"] == "ENOSPC" &&
			strings.Contains(obj["namespace_flags"].(string), "CLONE_NEWNET") {
			sawENOSPC = true
		}
	}
	if first != "start" || last != "summary" {
		t.Errorf("stream runs %s .. %s, want start .. summary", first, last)
	}
	if types["interval"] < 4 || types["mem_snapshot"] < 2 {
		t.Errorf("object counts %v: want >= 4 intervals over 4s at 500ms and snapshots", types)
	}
	if !sawENOSPC {
		t.Errorf("no failed unshare(CLONE_NEWNET) ENOSPC in the stream; types %v", types)
	}
}

// snapshot needs no BPF: it answers the order-6 question on the seed's
// failing node, read from a fixture tree.
func TestSnapshotSeedIncident(t *testing.T) {
	bin := buildBinary(t)
	root := "../../testdata/procfs/incident-failing"
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("fixture tree %s: %v", root, err)
	}
	out, err := exec.Command(bin, "snapshot", "--root", root, "--order", "6").CombinedOutput()
	if err != nil {
		t.Fatalf("snapshot: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("Normal")) || !bytes.Contains(out, []byte("fragmentation")) {
		t.Errorf("snapshot output lacks the Normal zone's fragmentation verdict:\n%s", out)
	}
}
