package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/fragscope/fragscope/internal/probes"
)

// ResultsFile is where `make vmtest` keeps the kernel x hook x mechanism
// results, relative to the repository; the README's kernel table is made
// from it (RenderTable, `go run ./internal/vmtest/cmd/matrix -w`).
const ResultsFile = "vmtest/results.tsv"

// The README's table sits between these lines.
const (
	TableBegin = "<!-- kernel table: made from vmtest/results.tsv by `go run ./internal/vmtest/cmd/matrix -w`; do not edit -->"
	TableEnd   = "<!-- end of kernel table -->"
)

// matrixHooks and hookMechanisms are the probes package's own lists.
var (
	matrixHooks    = hookNames()
	hookMechanisms = mechanismNames()
)

func hookNames() []string {
	var out []string
	for _, h := range probes.AllHooks {
		out = append(out, string(h))
	}
	return out
}

func mechanismNames() map[string][]string {
	out := map[string][]string{}
	for h, ms := range probes.Mechanisms {
		for _, m := range ms {
			out[string(h)] = append(out[string(h)], string(m))
		}
	}
	return out
}

// MatrixRow is one kernel x hook x mechanism result. Cell is "ok: evidence",
// "refused (expected): reason" or "FAIL: why".
type MatrixRow struct {
	Kernel    string // debian-5.10, faultinject, dev-vm
	Release   string // uname -r
	Hook      string
	Mechanism string
	Cell      string
	Date      string // of the run, YYYY-MM-DD
}

// Result is the first word of Cell: ok, refused or FAIL.
func (r MatrixRow) Result() string {
	switch {
	case strings.HasPrefix(r.Cell, "ok"):
		return "ok"
	case strings.HasPrefix(r.Cell, "refused"):
		return "refused"
	}
	return "FAIL"
}

// Detail is Cell without its first word.
func (r MatrixRow) Detail() string {
	_, d, _ := strings.Cut(r.Cell, ": ")
	return d
}

// ReadResults parses a results file.
func ReadResults(r io.Reader) ([]MatrixRow, error) {
	var rows []MatrixRow
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("%s line %d: %d fields, want 7 (kernel, release, hook, mechanism, result, detail, date)", ResultsFile, n, len(f))
		}
		row := MatrixRow{Kernel: f[0], Release: f[1], Hook: f[2], Mechanism: f[3], Date: f[6]}
		switch f[4] {
		case "ok", "FAIL":
			row.Cell = f[4] + ": " + f[5]
		case "refused":
			row.Cell = "refused (expected): " + f[5]
		default:
			return nil, fmt.Errorf("%s line %d: result %q, want ok, refused or FAIL", ResultsFile, n, f[4])
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// WriteResults writes rows in table order.
func WriteResults(w io.Writer, rows []MatrixRow) error {
	SortRows(rows)
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "# Kernel x hook x mechanism results of `make vmtest` (internal/vmtest), one line each:")
	fmt.Fprintln(b, "# kernel, release, hook, mechanism, result (ok, refused, FAIL), evidence or reason, date.")
	fmt.Fprintln(b, "# Written by the VM tests; the README's kernel table is made from it (go run ./internal/vmtest/cmd/matrix -w).")
	for _, r := range rows {
		clean := strings.NewReplacer("\t", " ", "\n", " ").Replace
		fmt.Fprintf(b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kernel, r.Release, r.Hook, r.Mechanism, r.Result(), clean(r.Detail()), r.Date)
	}
	return b.Flush()
}

// MergeResults replaces old's rows of every kernel in fresh by fresh's.
func MergeResults(old, fresh []MatrixRow) []MatrixRow {
	kernels := map[string]bool{}
	for _, r := range fresh {
		kernels[r.Kernel] = true
	}
	var out []MatrixRow
	for _, r := range old {
		if !kernels[r.Kernel] {
			out = append(out, r)
		}
	}
	return append(out, fresh...)
}

// kernelRank orders kernels: Debian by version, then the fault-injection
// kernel, then the development VM.
func kernelRank(name string) (int, []int) {
	switch {
	case strings.HasPrefix(name, "debian-"):
		var v []int
		for _, p := range strings.Split(strings.TrimPrefix(name, "debian-"), ".") {
			n, _ := strconv.Atoi(p)
			v = append(v, n)
		}
		return 0, v
	case name == "faultinject":
		return 1, nil
	}
	return 2, nil
}

func index(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return len(list)
}

// SortRows sorts by kernel, hook and mechanism order.
func SortRows(rows []MatrixRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Kernel != b.Kernel {
			ra, va := kernelRank(a.Kernel)
			rb, vb := kernelRank(b.Kernel)
			if ra != rb {
				return ra < rb
			}
			for k := 0; k < len(va) && k < len(vb); k++ {
				if va[k] != vb[k] {
					return va[k] < vb[k]
				}
			}
			return a.Kernel < b.Kernel
		}
		if a.Hook != b.Hook {
			return index(matrixHooks, a.Hook) < index(matrixHooks, b.Hook)
		}
		ms := hookMechanisms[a.Hook]
		return index(ms, a.Mechanism) < index(ms, b.Mechanism)
	})
}

// kernelLabel names a kernel as the table does: the development VM's
// sandbox kernel is not Debian's of the same version.
func kernelLabel(r MatrixRow) string {
	switch {
	case strings.HasPrefix(r.Kernel, "debian-"):
		return "Debian " + r.Release
	case r.Kernel == "faultinject":
		return r.Release + " built with fault injection (`vmtest/faultinject.config`; auto mode only)"
	case r.Kernel == "dev-vm":
		return r.Release + ": this project's development VM (a sandbox build, natively; not Debian's kernel of that version)"
	}
	return r.Kernel + " " + r.Release
}

// RenderTable is the README's kernel table: one row per kernel, one
// column per hook, its mechanisms' results in the hook's order ("—" where
// a mechanism was not run), and the reasons of refusals and failures as
// numbered notes below.
func RenderTable(rows []MatrixRow) string {
	rows = append([]MatrixRow(nil), rows...)
	SortRows(rows)
	var b strings.Builder
	b.WriteString("| kernel |")
	for _, h := range matrixHooks {
		fmt.Fprintf(&b, " %s %s |", h, strings.Join(hookMechanisms[h], " / "))
	}
	b.WriteString("\n|---|")
	for range matrixHooks {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	var notes []string
	note := func(text string) int {
		for i, n := range notes {
			if n == text {
				return i + 1
			}
		}
		notes = append(notes, text)
		return len(notes)
	}
	var kernels []string
	byKernel := map[string]map[string]MatrixRow{}
	last := ""
	for _, r := range rows {
		if byKernel[r.Kernel] == nil {
			byKernel[r.Kernel] = map[string]MatrixRow{}
			kernels = append(kernels, r.Kernel)
		}
		byKernel[r.Kernel][r.Hook+"/"+r.Mechanism] = r
		if r.Date > last {
			last = r.Date
		}
	}
	for _, k := range kernels {
		cells := byKernel[k]
		var any MatrixRow
		for _, r := range cells {
			any = r
			break
		}
		fmt.Fprintf(&b, "| %s |", kernelLabel(any))
		for _, h := range matrixHooks {
			var parts []string
			for _, m := range hookMechanisms[h] {
				r, ok := cells[h+"/"+m]
				switch {
				case !ok:
					parts = append(parts, "—")
				case r.Result() == "ok":
					parts = append(parts, "ok")
				case r.Result() == "refused":
					parts = append(parts, fmt.Sprintf("no [%d]", note(m+": "+r.Detail())))
				default:
					parts = append(parts, fmt.Sprintf("**FAIL** [%d]", note(m+": "+r.Detail())))
				}
			}
			fmt.Fprintf(&b, " %s |", strings.Join(parts, " / "))
		}
		b.WriteString("\n")
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "[%d] %s  \n", i+1, n)
		}
	}
	fmt.Fprintf(&b, "\nok = attached as forced and saw the workload (evidence in `%s`; on the development VM: `fragscope doctor` loaded and attached it); no = refused, for the reason given; last run %s.\n", ResultsFile, last)
	return b.String()
}

// ReadmeTable returns the table between TableBegin and TableEnd in a README.
func ReadmeTable(readme string) (string, error) {
	_, rest, ok := strings.Cut(readme, TableBegin+"\n")
	if !ok {
		return "", fmt.Errorf("README has no line %q", TableBegin)
	}
	table, _, ok := strings.Cut(rest, TableEnd)
	if !ok {
		return "", fmt.Errorf("README has no line %q", TableEnd)
	}
	return table, nil
}

// ReplaceReadmeTable puts table between the markers.
func ReplaceReadmeTable(readme, table string) (string, error) {
	before, rest, ok := strings.Cut(readme, TableBegin+"\n")
	if !ok {
		return "", fmt.Errorf("README has no line %q", TableBegin)
	}
	_, after, ok := strings.Cut(rest, TableEnd)
	if !ok {
		return "", fmt.Errorf("README has no line %q", TableEnd)
	}
	return before + TableBegin + "\n" + table + TableEnd + after, nil
}

// LoadResults reads the results file at path; a missing file is no rows.
func LoadResults(path string) ([]MatrixRow, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadResults(f)
}
