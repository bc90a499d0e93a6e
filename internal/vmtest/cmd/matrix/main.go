// Command matrix prints the README's kernel table made from
// vmtest/results.tsv (what `make vmtest` measured), or with -w writes it
// into README.md between its markers. TestReadmeKernelTable fails when the
// two disagree.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fragscope/fragscope/internal/vmtest"
)

func main() {
	write := flag.Bool("w", false, "rewrite the table in README.md instead of printing it")
	repo := flag.String("repo", ".", "repository root")
	flag.Parse()
	rows, err := vmtest.LoadResults(filepath.Join(*repo, vmtest.ResultsFile))
	if err != nil {
		fail(err)
	}
	if len(rows) == 0 {
		fail(fmt.Errorf("%s has no results: run `sudo make vmtest` first", vmtest.ResultsFile))
	}
	table := vmtest.RenderTable(rows)
	if !*write {
		fmt.Print(table)
		return
	}
	path := filepath.Join(*repo, "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	out, err := vmtest.ReplaceReadmeTable(string(b), table)
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "matrix: %v\n", err)
	os.Exit(1)
}
