package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's kernel table is what vmtest/results.tsv (written by make
// vmtest) renders to: a README edited by hand, or results not carried into
// it, fail here. Plain `go test`, no VM.
func TestReadmeKernelTable(t *testing.T) {
	repo := filepath.Join("..", "..")
	rows, err := LoadResults(filepath.Join(repo, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s is missing or empty: run `sudo make vmtest`", ResultsFile)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadmeTable(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if want := RenderTable(rows); got != want {
		t.Errorf("README's kernel table differs from %s: run `go run ./internal/vmtest/cmd/matrix -w`\nREADME:\n%s\nresults:\n%s", ResultsFile, got, want)
	}
	// Every locked Debian kernel and the development VM are in it.
	lock, err := os.ReadFile(filepath.Join(repo, "vmtest", "kernels.lock"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range rows {
		have[r.Kernel] = true
	}
	for _, line := range strings.Split(string(lock), "\n") {
		if name, _, _ := strings.Cut(line, " "); strings.HasPrefix(name, "debian-") && !have[name] {
			t.Errorf("kernels.lock names %s, %s has no result for it", name, ResultsFile)
		}
	}
	if !have["dev-vm"] {
		t.Errorf("%s has no row for the development VM", ResultsFile)
	}
}

// Results survive a write and a read, and a run's rows replace only its
// own kernels'.
func TestResultsRoundTrip(t *testing.T) {
	old := []MatrixRow{
		{Kernel: "debian-6.1", Release: "6.1.0-57-amd64", Hook: "netns", Mechanism: "kprobe", Cell: "ok: inode 1", Date: "2026-12-01"},
		{Kernel: "debian-5.10", Release: "5.10.0-46-amd64", Hook: "slab_create", Mechanism: "fentry", Cell: "refused (expected): not supported", Date: "2026-12-01"},
	}
	fresh := []MatrixRow{{Kernel: "debian-6.1", Release: "6.1.0-57-amd64", Hook: "netns", Mechanism: "kprobe", Cell: "FAIL: no event", Date: "2026-12-02"}}
	var b bytes.Buffer
	if err := WriteResults(&b, MergeResults(old, fresh)); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadResults(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Kernel != "debian-5.10" || rows[1].Cell != "FAIL: no event" {
		t.Fatalf("rows %+v", rows)
	}
	table := RenderTable(rows)
	for _, want := range []string{"| Debian 5.10.0-46-amd64 |", "no [1]", "**FAIL** [2]", "[1] fentry: not supported", "[2] kprobe: no event", "last run 2026-12-02"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if _, err := ReadResults(strings.NewReader("a\tb\n")); err == nil {
		t.Error("a line of 2 fields was accepted")
	}
}
