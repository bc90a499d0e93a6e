// Package vmtest boots real kernels under QEMU (TCG) with an initramfs
// holding fragscope, busybox and the guest workloads, runs one scenario
// per boot and reads the results back. The kernels, the initramfs and the
// guest side are made by the scripts in vmtest/ at the top of the
// repository; the tests (vm_test.go) run only with FRAGSCOPE_VMTEST=1 (see
// `make vmtest`).
//
// Transport: the guest's console is ttyS0 (kept in console.log); its
// results go to ttyS1 (results.txt) as gzip+base64 files between markers:
//
//	=== FRAGSCOPE-VMTEST FILE name ===
//	<base64 of the gzipped file>
//	=== FRAGSCOPE-VMTEST END name ===
//	...
//	=== FRAGSCOPE-VMTEST DONE rc=N ===
//
// A guest that hangs, panics or powers off without the DONE marker is an
// error naming the console log.
package vmtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kernel is a guest kernel as the vmtest scripts leave it in the cache.
type Kernel struct {
	Name    string // "debian-6.12", "faultinject"
	Dir     string
	Release string // uname -r
}

// LoadKernel reads a kernel directory printed by vmtest/fetch-kernels.sh
// or vmtest/build-kernel.sh.
func LoadKernel(name, dir string) (Kernel, error) {
	k := Kernel{Name: name, Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "vmlinuz")); err != nil {
		return k, fmt.Errorf("kernel %s: %w", name, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "release"))
	if err != nil {
		return k, fmt.Errorf("kernel %s: %w", name, err)
	}
	k.Release = strings.TrimSpace(string(b))
	return k, nil
}

// Boot describes one guest run.
type Boot struct {
	Kernel   Kernel
	Initrd   string
	Scenario string // vmtest/guest/scenario-<Scenario>.sh
	MemoryMB int    // default 512
	CPUs     int    // default 2
	Append   string // extra kernel command line
	// Files are added to the initramfs for this boot only, by path in the
	// guest ("vmtest/scenario-x.sh"): a second cpio archive appended to
	// Initrd, which the kernel unpacks over the first.
	Files   map[string][]byte
	Timeout time.Duration // default 10 minutes
	LogDir  string        // console.log, results.txt and qemu.log go here (kept)
	// MultiThread gives each vCPU its own host thread (MTTCG). Off by
	// default: under MTTCG the kernel's int3-based text patching, done when
	// tracepoints attach, raced and oopsed ("Oops: int3" in
	// syscall_exit_to_user_mode_prepare) on Debian 6.12.117 and on the
	// fault-injection kernel, so guests run their vCPUs round-robin in one
	// thread (-accel tcg,thread=single).
	MultiThread bool
	// Reuse parses the results.txt a previous run left in LogDir instead
	// of booting (to work on assertions without waiting for a guest).
	Reuse bool
}

// Result is what one guest run sent back.
type Result struct {
	Files    map[string][]byte // by name
	Order    []string          // file names in the order received
	RC       int               // the scenario script's exit status
	Console  string            // path of the serial console log
	Duration time.Duration
}

// File returns a result file or an error naming the console log.
func (r *Result) File(name string) ([]byte, error) {
	b, ok := r.Files[name]
	if !ok {
		return nil, fmt.Errorf("guest sent no %s (console: %s)", name, r.Console)
	}
	return b, nil
}

// QEMU is the emulator binary.
var QEMU = "qemu-system-x86_64"

// Run boots the guest and waits for it to power off. KVM does not work on
// the machines this runs on (emulation failures), TCG does.
func (b Boot) Run(ctx context.Context) (*Result, error) {
	if b.MemoryMB == 0 {
		b.MemoryMB = 512
	}
	if b.CPUs == 0 {
		b.CPUs = 2
	}
	if b.Timeout == 0 {
		b.Timeout = 10 * time.Minute
	}
	if err := os.MkdirAll(b.LogDir, 0o755); err != nil {
		return nil, err
	}
	console := filepath.Join(b.LogDir, "console.log")
	results := filepath.Join(b.LogDir, "results.txt")
	qlog := filepath.Join(b.LogDir, "qemu.log")
	if b.Reuse {
		if res, err := parseResultsFile(results, console); err == nil {
			return res, nil
		}
	}
	for _, f := range []string{console, results} {
		os.Remove(f)
	}
	if len(b.Files) > 0 {
		initrd := filepath.Join(b.LogDir, "initrd.gz")
		if err := appendInitrd(initrd, b.Initrd, b.Files); err != nil {
			return nil, err
		}
		b.Initrd = initrd
	}
	appendLine := strings.TrimSpace("console=ttyS0 panic=-1 quiet fragscope.scenario=" + b.Scenario + " " + b.Append)
	accel := "tcg,thread=single"
	if b.MultiThread {
		accel = "tcg"
	}
	args := []string{
		"-accel", accel, "-cpu", "max",
		"-smp", strconv.Itoa(b.CPUs), "-m", fmt.Sprintf("%dM", b.MemoryMB),
		"-nographic", "-monitor", "none", "-no-reboot",
		"-kernel", filepath.Join(b.Kernel.Dir, "vmlinuz"),
		"-initrd", b.Initrd,
		"-append", appendLine,
		"-serial", "file:" + console,
		"-serial", "file:" + results,
	}
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, QEMU, args...)
	lf, err := os.Create(qlog)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	fmt.Fprintf(lf, "%s %s\n", QEMU, strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	res := &Result{Console: console, Duration: time.Since(start)}
	if ctx.Err() == context.DeadlineExceeded {
		return res, fmt.Errorf("%s guest (scenario %s) did not finish within %v: hang? console log: %s", b.Kernel.Name, b.Scenario, b.Timeout, console)
	}
	if runErr != nil {
		return res, fmt.Errorf("qemu: %v (qemu log: %s, console log: %s)", runErr, qlog, console)
	}
	f, err := os.Open(results)
	if err != nil {
		return res, fmt.Errorf("no results from the %s guest: %v (console log: %s)", b.Kernel.Name, err, console)
	}
	defer f.Close()
	files, order, rc, done, perr := ParseResults(f)
	res.Files, res.Order, res.RC = files, order, rc
	if perr != nil {
		return res, fmt.Errorf("%s guest results: %v (console log: %s)", b.Kernel.Name, perr, console)
	}
	if !done {
		why := "powered off early"
		if c, err := os.ReadFile(console); err == nil && bytes.Contains(c, []byte("Kernel panic")) {
			why = "kernel panic"
		}
		return res, fmt.Errorf("%s guest (scenario %s) ended without the DONE marker (%s): console log: %s", b.Kernel.Name, b.Scenario, why, console)
	}
	for _, name := range order {
		_ = os.WriteFile(filepath.Join(b.LogDir, filepath.Base(name)), files[name], 0o644)
	}
	return res, nil
}

// appendInitrd writes base followed by a gzipped newc cpio archive of
// files (mode 0755, root-owned, in sorted order) to out. Linux unpacks
// concatenated archives in order (Documentation/driver-api/early-userspace/
// buffer-format.rst), so the files join, or replace, base's.
func appendInitrd(out, base string, files map[string][]byte) error {
	b, err := os.ReadFile(base)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Write(b)
	zw := gzip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := 0x7f000
	entry := func(name string, mode uint32, data []byte) {
		ino++
		fmt.Fprintf(zw, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		zw.Write(append([]byte(name), 0))
		pad := func(n int) { zw.Write(make([]byte, (4-n%4)%4)) }
		pad(110 + len(name) + 1)
		zw.Write(data)
		pad(len(data))
	}
	for _, n := range names {
		entry(strings.TrimPrefix(n, "/"), 0o100755, files[n])
	}
	entry("TRAILER!!!", 0, nil)
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func parseResultsFile(path, console string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files, order, rc, done, err := ParseResults(f)
	if err != nil || !done {
		return nil, fmt.Errorf("incomplete results in %s: %v", path, err)
	}
	return &Result{Files: files, Order: order, RC: rc, Console: console}, nil
}

const marker = "=== FRAGSCOPE-VMTEST "

// ParseResults reads the guest's result stream. done reports whether the
// DONE marker (with the scenario's exit status rc) was seen. Carriage
// returns a tty may add are ignored.
func ParseResults(r io.Reader) (files map[string][]byte, order []string, rc int, done bool, err error) {
	files = map[string][]byte{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur string
	var body strings.Builder
	in := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		rest, isMarker := strings.CutPrefix(line, marker)
		if !isMarker {
			if in {
				body.WriteString(line)
			}
			continue
		}
		rest = strings.TrimSuffix(rest, " ===")
		switch {
		case strings.HasPrefix(rest, "FILE "):
			cur, in = strings.TrimPrefix(rest, "FILE "), true
			body.Reset()
		case strings.HasPrefix(rest, "END "):
			name := strings.TrimPrefix(rest, "END ")
			if !in || name != cur {
				return files, order, rc, false, fmt.Errorf("END %s without FILE", name)
			}
			data, derr := decodeFile(body.String())
			if derr != nil {
				return files, order, rc, false, fmt.Errorf("file %s: %v", name, derr)
			}
			if _, dup := files[name]; !dup {
				order = append(order, name)
			}
			files[name] = data
			in = false
		case strings.HasPrefix(rest, "DONE rc="):
			rc, err = strconv.Atoi(strings.TrimPrefix(rest, "DONE rc="))
			return files, order, rc, err == nil, err
		}
	}
	if in {
		return files, order, rc, false, fmt.Errorf("file %s cut off", cur)
	}
	return files, order, rc, false, sc.Err()
}

func decodeFile(b64 string) ([]byte, error) {
	gz, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(zr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return out, err
}
