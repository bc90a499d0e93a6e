package vmtest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

//go:embed guest/scenario-nobpf.sh
var scenarioNoBPF []byte

// corpusReport returns a corpus log's kernel lines as the kernel printed
// them: lines with the syslog prefix, the prefix cut, the `#012` folding
// (the newlines inside one printk) split into records of their own.
func corpusReport(repo, file, prefix string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(repo, "testdata", "kmsg", file))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimRight(l, " \r"), prefix)
		if !ok {
			continue
		}
		for i, part := range strings.Split(rest, "#012") {
			if i > 0 {
				part = " " + strings.TrimSpace(part)
			}
			out = append(out, part)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("corpus %s: no line starts with %q", file, prefix)
	}
	return out, nil
}

// The report TestVMNoBPF writes: corpus 021, a 6.1 GFP_ATOMIC failure in
// an RX refill (testdata/kmsg/README.md: opportunistic). A report of the
// 6.x gfp layout, because a live session decodes /dev/kmsg's reports with
// the running kernel's gfp table: the seed's (001, 3.10's mode:0x10c0d0)
// would decode as 6.12 flags and lose its verdict.
const (
	reportFile   = "021-rpi-5395-armv7-6.1-rx-refill-syslog.log"
	reportPrefix = "Mar 22 21:11:57 dill kernel: "
)

// Scenario 5: BPF really refused. Debian 6.12 booted with
// lockdown=confidentiality: the lockdown LSM (in Debian's CONFIG_LSM, and
// initialised early) denies LOCKDOWN_BPF_READ_KERNEL, so the verifier finds
// no bpf_probe_read_kernel for tracing programs (kernel/trace/bpf_trace.c
// bpf_tracing_func_proto) and every CO-RE read is rejected; kprobes
// (LOCKDOWN_KPROBES) and tracefs (LOCKDOWN_TRACEFS) are denied too. No hook
// loads: `fragscope watch` must say so in one line and go on with procfs
// snapshots and the kernel's reports from /dev/kmsg. The guest writes the
// seed's report into /dev/kmsg (only root can; the kernel serves it back
// as a record of its log) and the incident must carry the corpus README's
// verdict for it, fragmentation.
func TestVMNoBPF(t *testing.T) {
	e := getEnv(t)
	k := e.kernel(t, "debian-6.12")
	report, err := corpusReport(e.repo, reportFile, reportPrefix)
	if err != nil {
		t.Fatal(err)
	}
	res := e.bootWith(t, Boot{
		Kernel: k, Scenario: "nobpf", MemoryMB: 512,
		Append: "lockdown=confidentiality",
		Files: map[string][]byte{
			"vmtest/scenario-nobpf.sh": scenarioNoBPF,
			"vmtest/nobpf-report.txt":  []byte(strings.Join(report, "\n") + "\n"),
		},
	})
	ld, err := res.File("lockdown.txt")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest:\n%s", ld)
	if !strings.Contains(string(ld), "[confidentiality]") {
		t.Fatalf("the guest is not locked down for confidentiality:\n%s", ld)
	}
	if d, err := res.File("doctor.txt"); err == nil {
		t.Logf("fragscope doctor under lockdown=confidentiality:\n%s", d)
	}
	var rows []matrixRow
	defer func() { writeMatrix(t, e, "matrix-nobpf.md", rows) }()

	// a) lockdown=confidentiality: the verifier refuses every program that
	// reads kernel memory (bpf_probe_read*, which CO-RE reads compile to),
	// tracefs is empty; what is left still runs.
	lk := loadSession(t, res, "lockdown")
	t.Logf("watch's stderr under lockdown (verifier logs cut):\n%s", attachLines(lk.stderr))
	// --verbose: the verifier's whole log on stderr, after the one-line
	// reasons; never in a reason (start record, recording).
	for _, hook := range []string{"page_alloc", "netns"} {
		head := "fragscope: verifier log of " + hook + " via "
		i := strings.Index(lk.stderr, head)
		if i < 0 || strings.Count(lk.stderr[i:], "\n  ") < 5 {
			t.Errorf("lockdown --verbose: no verifier log of %s on stderr", hook)
		}
	}
	for _, hs := range lk.start().Hooks {
		if strings.Contains(hs.Reason, "\n") || len(hs.Reason) > 1200 {
			t.Errorf("lockdown: %s reason is not one line: %q", hs.Hook, hs.Reason)
		}
	}
	for _, hook := range []string{"page_alloc", "alloc_fexit", "slab_create", "netns"} {
		h := lk.hook(hook)
		if h.Attached || !strings.Contains(h.Reason, "cannot use helper bpf_probe_read") {
			t.Errorf("lockdown: %s attached=%v via %s; want refused by the verifier for bpf_probe_read: %.300q", hook, h.Attached, h.Mechanism, h.Reason)
		}
		rows = append(rows, matrixRow{k.Release + " lockdown=confidentiality", hook, "auto", "refused: verifier, no bpf_probe_read (LOCKDOWN_BPF_READ_KERNEL)"})
	}
	if h := lk.hook("ns_syscall"); h.Attached {
		t.Errorf("lockdown: ns_syscall attached via %s with tracefs locked down", h.Mechanism)
	} else {
		rows = append(rows, matrixRow{k.Release + " lockdown=confidentiality", "ns_syscall", "tracepoint", "refused: " + firstLine(h.Reason)})
	}
	// mm_page_alloc_extfrag's raw_tp program only counts (no kernel
	// memory read): lockdown leaves it alone.
	h := lk.hook("extfrag")
	cell := "attached via " + h.Mechanism
	if !h.Attached {
		cell = "refused: " + firstLine(h.Reason)
	}
	t.Logf("lockdown: extfrag %s", cell)
	rows = append(rows, matrixRow{k.Release + " lockdown=confidentiality", "extfrag", "auto", cell})
	if h := lk.hook("kmsg"); !h.Attached {
		t.Errorf("lockdown: /dev/kmsg not followed: %s", h.Reason)
	}
	checkReplay(t, e, lk)

	// b) bpf(2) refused by a seccomp filter: no BPF at all.
	s := loadSession(t, res, "nobpf")
	t.Logf("watch's stderr under the seccomp filter:\n%s", s.stderr)
	var cannot []string
	for _, l := range strings.Split(s.stderr, "\n") {
		if strings.Contains(l, "BPF cannot run") {
			cannot = append(cannot, l)
		}
	}
	if len(cannot) != 1 || !strings.Contains(cannot[0], "bpf(2) refused by this process's seccomp filter") || !strings.Contains(cannot[0], "/dev/kmsg") {
		t.Errorf("want one line saying BPF cannot run, naming the seccomp filter and /dev/kmsg, have %q", cannot)
	}
	var kmsgHook bool
	for _, h := range s.start().Hooks {
		switch {
		case h.Hook == "kmsg":
			kmsgHook = h.Attached && h.Mechanism == "devkmsg"
		case h.Attached || !strings.Contains(h.Reason, "bpf(2) refused"):
			t.Errorf("under the seccomp filter, %s: attached=%v via %s, reason %q", h.Hook, h.Attached, h.Mechanism, h.Reason)
		}
	}
	if !kmsgHook {
		t.Errorf("the start object has no attached kmsg source: %+v", s.start().Hooks)
	}
	rows = append(rows, matrixRow{k.Release + " + seccomp refusing bpf(2)", "all", "auto", "BPF cannot run: procfs snapshots and /dev/kmsg"})

	// The procfs timeline: interval snapshots with free blocks.
	var snaps int
	for _, o := range OfType(s.objs, "mem_snapshot") {
		if o.Reason != "interval" {
			continue
		}
		if z := targetZone(o.Zones); z != nil && len(z.FreeBlocks) > 0 && z.FreePages > 0 {
			if snaps == 0 {
				t.Logf("first interval snapshot, zone %s: %d pages free, free blocks %v", z.Zone, z.FreePages, z.FreeBlocks)
			}
			snaps++
		}
	}
	if snaps < 3 {
		t.Errorf("%d interval snapshots with free blocks, want a procfs timeline (>= 3)", snaps)
	}

	// The kernel's report, all 14 records of it (two opens), and its
	// incident: closed by the kernel log, the RX refill, opportunistic.
	if c, _ := res.File("nobpf-kmsg-count.out"); strings.TrimSpace(string(c)) != "4" {
		t.Errorf("dmesg lines of the written report: %q, want 4 (the failure line, and the 3 bcmgenet frames the second open wrote)", c)
	}
	var mine []*Incident
	for _, o := range OfType(s.objs, "incident") {
		js, _ := json.Marshal(o.Incident)
		t.Logf("incident: %s", js)
		if o.Incident.Task.Comm == "ksoftirqd/0" {
			mine = append(mine, o.Incident)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("want one incident of the report's task (ksoftirqd/0), have %d", len(mine))
	}
	inc := mine[0]
	var kmsgAlloc bool
	for _, a := range inc.Allocs {
		kmsgAlloc = kmsgAlloc || (a.Order == 0 && a.GFP == 0xa20 && a.Hook == "kmsg" && len(a.Stack) > 0)
	}
	if inc.ClosedBy != "kernel_log" || inc.Verdict.Cause != "opportunistic" ||
		!strings.Contains(strings.Join(inc.Chain, " "), "bcmgenet_rx_refill") || !kmsgAlloc {
		t.Errorf("incident closed by %q, verdict %q, chain %v, allocs %+v: want kernel_log, opportunistic, the RX refill, the order-0 0xa20 failure from kmsg",
			inc.ClosedBy, inc.Verdict.Cause, inc.Chain, inc.Allocs)
	}
	t.Logf("verdict: %s %v", inc.Verdict.Cause, inc.Verdict.Reasons)
	checkReplay(t, e, s)
}

// attachLines keeps fragscope's "attached"/"NOT attached" lines, each cut
// to its first line (a verifier refusal carries the verifier's log).
func attachLines(stderr string) string {
	var b strings.Builder
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "fragscope: ") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(l, ":")
}

// The report TestVMNoBPF writes, checked without a guest: 14 records,
// more than one open of /dev/kmsg may write.
func TestNoBPFReportLines(t *testing.T) {
	lines, err := corpusReport(filepath.Join("..", ".."), reportFile, reportPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 14 || !strings.HasPrefix(lines[0], "ksoftirqd/0: page allocation failure: order:0, mode:0xa20(GFP_ATOMIC)") {
		t.Errorf("%d lines, first %q", len(lines), lines[0])
	}
}
