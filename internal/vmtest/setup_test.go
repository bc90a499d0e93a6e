package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

const howToRun = "the VM tests boot real kernels under QEMU (tens of minutes; kernels cached in " +
	"$FRAGSCOPE_VMTEST_CACHE, default /var/cache/fragscope-vmtest): run them with `sudo make vmtest` " +
	"or `FRAGSCOPE_VMTEST=1 go test ./internal/vmtest -run VM -v -timeout 80m`"

// requireVM skips unless FRAGSCOPE_VMTEST=1. Under CI=true with
// FRAGSCOPE_VMTEST=1 whatever is missing is a failure, never a skip.
func requireVM(t testing.TB) {
	t.Helper()
	if os.Getenv("FRAGSCOPE_VMTEST") != "1" {
		t.Skip(howToRun)
	}
}

func missing(t testing.TB, format string, a ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}

// env is what every VM test shares: the kernels, one initramfs, a host
// fragscope for replays, and the directory the guests' logs are kept in.
type env struct {
	repo      string
	out       string
	initrd    string
	fragscope string
	kernels   map[string]Kernel
	err       error
}

var (
	envOnce   sync.Once
	sharedEnv env

	timesMu sync.Mutex
	times   []timing
)

type timing struct {
	what string
	d    time.Duration
}

func addTime(what string, d time.Duration) {
	timesMu.Lock()
	defer timesMu.Unlock()
	times = append(times, timing{what, d})
}

func TestMain(m *testing.M) {
	start := time.Now()
	code := m.Run()
	if len(times) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "vmtest times:\n")
		for _, t := range times {
			fmt.Fprintf(&b, "  %-50s %7.1fs\n", t.what, t.d.Seconds())
		}
		fmt.Fprintf(&b, "  %-50s %7.1fs\n", "total (go test)", time.Since(start).Seconds())
		fmt.Print(b.String())
		if sharedEnv.out != "" {
			_ = os.WriteFile(filepath.Join(sharedEnv.out, "times.txt"), []byte(b.String()), 0o644)
		}
	}
	os.Exit(code)
}

// script runs one of the vmtest/ scripts, returning its stdout lines.
func script(repo, name string, args ...string) ([]string, error) {
	cmd := exec.Command(filepath.Join(repo, "vmtest", name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	addTime("vmtest/"+name, time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("vmtest/%s: %v\n%s", name, err, stderr.String())
	}
	return strings.Fields(stdout.String()), nil
}

func getEnv(t testing.TB) *env {
	t.Helper()
	requireVM(t)
	return setupEnv(t)
}

// cachedEnv is a benchmark's env: `make bench` runs it without
// FRAGSCOPE_VMTEST=1, and then only where the kernels it names are in the
// vmtest cache already (fetch-kernels.sh --cached: no apt, no network),
// skipping otherwise; with FRAGSCOPE_VMTEST=1 it is getEnv's.
func cachedEnv(t testing.TB, kernels ...string) *env {
	t.Helper()
	if os.Getenv("FRAGSCOPE_VMTEST") == "1" {
		return getEnv(t)
	}
	if _, err := exec.LookPath(QEMU); err != nil {
		t.Skipf("%s not found (apt-get install qemu-system-x86): %v", QEMU, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("vmtest/mkinitramfs.sh makes device nodes: run as root")
	}
	args := append([]string{"--cached"}, kernels...)
	if _, err := script(repoDir(), "fetch-kernels.sh", args...); err != nil {
		t.Skipf("guest kernels not cached: %s (`make vmtest-kernels` fetches them)", strings.Join(strings.Fields(err.Error()), " "))
	}
	return setupEnv(t, args...)
}

// repoDir is the repository's top, from this package's directory.
func repoDir() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// setupEnv makes the shared env once: the kernels (fetch-kernels.sh with
// fetchArgs), the initramfs, the output directory.
func setupEnv(t testing.TB, fetchArgs ...string) *env {
	t.Helper()
	if _, err := exec.LookPath(QEMU); err != nil {
		missing(t, "%s not found (apt-get install qemu-system-x86): %v", QEMU, err)
	}
	envOnce.Do(func() {
		e := &sharedEnv
		e.repo = repoDir()
		e.out = os.Getenv("FRAGSCOPE_VMTEST_OUT")
		if e.out == "" {
			e.out = filepath.Join(os.TempDir(), "fragscope-vmtest", time.Now().UTC().Format("20060102-150405"))
		}
		if err := os.MkdirAll(e.out, 0o755); err != nil {
			e.err = err
			return
		}
		dirs, err := script(e.repo, "fetch-kernels.sh", fetchArgs...)
		if err != nil {
			e.err = err
			return
		}
		e.kernels = map[string]Kernel{}
		for _, d := range dirs {
			name := filepath.Base(d)
			if b, err := os.ReadFile(filepath.Join(d, "name")); err == nil {
				name = strings.TrimSpace(string(b)) // locked/<name>-<key>
			}
			k, err := LoadKernel(name, d)
			if err != nil {
				e.err = err
				return
			}
			e.kernels[k.Name] = k
		}
		e.initrd = filepath.Join(e.out, "initrd.gz")
		if _, err := script(e.repo, "mkinitramfs.sh", append([]string{e.initrd}, dirs...)...); err != nil {
			e.err = err
			return
		}
		// mkinitramfs.sh leaves the guests' fragscope here: replays use
		// the very binary that recorded.
		e.fragscope = filepath.Join(e.out, "fragscope")
	})
	if sharedEnv.err != nil {
		missing(t, "vmtest set-up: %v", sharedEnv.err)
	}
	t.Logf("guest logs and results: %s", sharedEnv.out)
	return &sharedEnv
}

func (e *env) kernel(t testing.TB, name string) Kernel {
	t.Helper()
	k, ok := e.kernels[name]
	if !ok {
		missing(t, "kernel %s not fetched (have %v)", name, keys(e.kernels))
	}
	return k
}

var (
	faultOnce   sync.Once
	faultKernel Kernel
	faultErr    error
)

// faultInjectionKernel builds (or takes from the cache) the kernel of
// vmtest/build-kernel.sh. `make vmtest` builds it before the tests, so here
// it is normally a cache hit.
func (e *env) faultInjectionKernel(t *testing.T) Kernel {
	t.Helper()
	faultOnce.Do(func() {
		dirs, err := script(e.repo, "build-kernel.sh")
		if err != nil {
			faultErr = err
			return
		}
		if len(dirs) == 0 {
			faultErr = fmt.Errorf("build-kernel.sh printed no directory")
			return
		}
		faultKernel, faultErr = LoadKernel("faultinject", dirs[len(dirs)-1])
	})
	if faultErr != nil {
		missing(t, "fault-injection kernel: %v", faultErr)
	}
	return faultKernel
}

// boot runs one scenario and fails the test with the console log's path
// when the guest does not finish it.
func (e *env) boot(t testing.TB, k Kernel, scenario string, memMB int) *Result {
	t.Helper()
	return e.bootWith(t, Boot{Kernel: k, Scenario: scenario, MemoryMB: memMB})
}

func (e *env) bootWith(t testing.TB, b Boot) *Result {
	t.Helper()
	k, scenario, memMB := b.Kernel, b.Scenario, b.MemoryMB
	dir := filepath.Join(e.out, k.Name+"-"+scenario)
	b.Initrd, b.LogDir, b.Reuse = e.initrd, dir, os.Getenv("FRAGSCOPE_VMTEST_REUSE") == "1"
	res, err := b.Run(context.Background())
	if memMB == 0 {
		memMB = 512
	}
	if res != nil {
		addTime(fmt.Sprintf("boot %s %s (%d MiB)", k.Name, scenario, memMB), res.Duration)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s: guest ran %.1fs, %d result files in %s", k.Name, scenario, res.Duration.Seconds(), len(res.Files), dir)
	if res.RC != 0 {
		t.Errorf("scenario script exited %d; its log:\n%s", res.RC, res.Files["scenario.log"])
	}
	return res
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// replay runs the host's fragscope on a recording made in a guest.
func (e *env) replay(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(e.fragscope, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fragscope %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// saveFixture copies a guest recording to testdata/vm when
// FRAGSCOPE_VMTEST_SAVE=1 (committed fixtures are not rewritten by a
// normal run).
func (e *env) saveFixture(t *testing.T, name string, data []byte) {
	t.Helper()
	if os.Getenv("FRAGSCOPE_VMTEST_SAVE") != "1" {
		return
	}
	dir := filepath.Join(e.repo, "testdata", "vm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved testdata/vm/%s (%d bytes)", name, len(data))
}

// debianKernels lists the fetched Debian kernels, oldest first.
func (e *env) debianKernels() []string {
	var rows []MatrixRow
	for name := range e.kernels {
		if strings.HasPrefix(name, "debian-") {
			rows = append(rows, MatrixRow{Kernel: name})
		}
	}
	SortRows(rows)
	var out []string
	for _, r := range rows {
		out = append(out, r.Kernel)
	}
	return out
}

// saveResults merges one test's rows into vmtest/results.tsv (rows of the
// kernels it ran replace theirs) and regenerates nothing else: the README
// table follows with `go run ./internal/vmtest/cmd/matrix -w`, and
// TestReadmeKernelTable says when it has not.
func (e *env) saveResults(t *testing.T, what string, rows []MatrixRow) {
	t.Helper()
	if len(rows) == 0 {
		return
	}
	date := time.Now().UTC().Format("2006-01-02")
	for i := range rows {
		rows[i].Date = date
	}
	resultsMu.Lock()
	defer resultsMu.Unlock()
	path := filepath.Join(e.repo, ResultsFile)
	old, err := LoadResults(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	var b bytes.Buffer
	if err := WriteResults(&b, MergeResults(old, rows)); err != nil {
		t.Error(err)
		return
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("%s: %d results written to %s", what, len(rows), ResultsFile)
}

var resultsMu sync.Mutex
