package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strings"
	"testing"
)

func encode(t *testing.T, s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	enc := base64.StdEncoding.EncodeToString(b.Bytes())
	// busybox base64 wraps at 76 columns; a tty may add \r.
	var out strings.Builder
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc + "\n")
	return out.String()
}

// The guest's result stream: files between markers, then DONE.
func TestParseResults(t *testing.T) {
	long := strings.Repeat(`{"type":"interval"}`+"\n", 200)
	stream := "noise\n=== FRAGSCOPE-VMTEST FILE a.ndjson ===\n" + encode(t, long) +
		"=== FRAGSCOPE-VMTEST END a.ndjson ===\n" +
		"=== FRAGSCOPE-VMTEST FILE b.out ===\r\n" + encode(t, "rc=0\n") + "=== FRAGSCOPE-VMTEST END b.out ===\r\n" +
		"=== FRAGSCOPE-VMTEST DONE rc=3 ===\n"
	files, order, rc, done, err := ParseResults(strings.NewReader(stream))
	if err != nil || !done || rc != 3 {
		t.Fatalf("rc=%d done=%v err=%v", rc, done, err)
	}
	if strings.Join(order, ",") != "a.ndjson,b.out" || string(files["a.ndjson"]) != long || string(files["b.out"]) != "rc=0\n" {
		t.Errorf("files %v %q", order, files["b.out"])
	}
	objs, err := ParseNDJSON(files["a.ndjson"])
	if err != nil || len(objs) != 200 || objs[199].Line != 200 {
		t.Errorf("ndjson: %d objects, %v", len(objs), err)
	}
}

// A guest that died mid-file or before DONE is reported as such.
func TestParseResultsCutOff(t *testing.T) {
	_, _, _, done, err := ParseResults(strings.NewReader("=== FRAGSCOPE-VMTEST FILE a ===\nH4sI\n"))
	if done || err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("cut-off file: done=%v err=%v", done, err)
	}
	_, _, _, done, err = ParseResults(strings.NewReader("=== FRAGSCOPE-VMTEST FILE a ===\n" + encode(t, "x") + "=== FRAGSCOPE-VMTEST END a ===\n"))
	if done || err != nil {
		t.Errorf("no DONE: done=%v err=%v", done, err)
	}
}

func TestTargetZone(t *testing.T) {
	if z := targetZone([]Zone{{Zone: "DMA", ManagedPages: 3840}, {Zone: "DMA32", ManagedPages: 50000}, {Zone: "Normal"}}); z == nil || z.Zone != "DMA32" {
		t.Errorf("small guest: %v", z)
	}
	if z := targetZone([]Zone{{Zone: "DMA", ManagedPages: 1}, {Zone: "DMA32", ManagedPages: 1}, {Zone: "Normal", ManagedPages: 1}, {Zone: "Movable"}}); z == nil || z.Zone != "Normal" {
		t.Errorf("large machine: %v", z)
	}
}

func TestParseBench(t *testing.T) {
	out := "goos: linux\nBenchmarkCompactionHooks-2   \t       1\t9876543210 ns/op\t        85.20 fentry:compact_fexit6-ns/event\t  3.000 compactions/round\nPASS\n"
	m, why := parseBench(out, "BenchmarkCompactionHooks")
	if why != "" || len(m) != 2 || m["fentry:compact_fexit6-ns/event"] != 85.2 || m["compactions/round"] != 3 {
		t.Errorf("parseBench: %v, %q", m, why)
	}
	if _, why := parseBench("--- SKIP: BenchmarkCompactionHooks\n", "BenchmarkCompactionHooks"); !strings.Contains(why, "SKIP") {
		t.Errorf("a skipped guest benchmark: %q", why)
	}
	if _, why := parseBench("PASS\n", "BenchmarkCompactionHooks"); why == "" {
		t.Error("no result line accepted")
	}
}

// The misses fragscope reports on stderr (internal/source checkMisses), the
// last report of each program counting, only the programs asked for.
func TestProgramMisses(t *testing.T) {
	stderr := "fragscope: page_alloc   attached via tp_btf     kmem/mm_page_alloc\n" +
		"fragscope: the kernel skipped runs of BPF programs already running on their CPU (recursion misses, so far): page_alloc_btf 1; what they count is short by as many\n" +
		"fragscope: the kernel skipped runs of BPF programs already running on their CPU (recursion misses, so far): extfrag_btf 4, page_alloc_btf 2; what they count is short by as many\n"
	if n := programMisses(stderr, "page_alloc_"); n != 2 {
		t.Errorf("page_alloc misses %d, want 2 (the last report)", n)
	}
	if n := programMisses(stderr, "extfrag_"); n != 4 {
		t.Errorf("extfrag misses %d, want 4", n)
	}
	if n := programMisses("fragscope: recorded 19 events\n", "page_alloc_"); n != 0 {
		t.Errorf("no report: %d misses", n)
	}
}
