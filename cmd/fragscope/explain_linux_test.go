package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/testutil"
)

// kmsgReport is corpus log 021's report (a 6.1 arm RX refill failure),
// with a comm of its own so the test finds its incident among real ones.
func kmsgReport(comm string) []string {
	return []string{
		comm + ": page allocation failure: order:0, mode:0xa20(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0",
		"CPU: 0 PID: 4242 Comm: " + comm + " Tainted: P         C O       6.1.20-1-rpi-ARCH #1",
		"Hardware name: BCM2711",
		" unwind_backtrace from show_stack+0x18/0x1c",
		" show_stack from dump_stack_lvl+0x90/0xac",
		" dump_stack_lvl from warn_alloc+0x110/0x1b0",
		" warn_alloc from __alloc_pages+0xef8/0x1044",
		" __alloc_pages from new_slab+0x384/0x43c",
		" new_slab from ___slab_alloc+0x3e8/0xa0c",
		" ___slab_alloc from kmem_cache_alloc+0x470/0x4d4",
		" kmem_cache_alloc from __netdev_alloc_skb+0xe4/0x198",
		" __netdev_alloc_skb from bcmgenet_rx_refill+0x38/0x1ec",
		" bcmgenet_rx_refill from bcmgenet_rx_poll+0x1d4/0x468",
		" bcmgenet_rx_poll from __napi_poll.constprop.0+0x34/0x1d0",
		" __napi_poll.constprop.0 from net_rx_action+0x1a8/0x3a0",
		" net_rx_action from __do_softirq+0x130/0x3b0",
	}
}

// writeKmsg writes each line as one record into /dev/kmsg, which the
// kernel then serves back to every reader as a real record of its log. The
// kernel lets an open /dev/kmsg write 10 records per 5 s (devkmsg_write's
// ratelimit, printk.devkmsg=ratelimit by default), so every 10 lines get
// an open of their own.
func writeKmsg(t *testing.T, lines []string) {
	t.Helper()
	for len(lines) > 0 {
		n := min(len(lines), 10)
		f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
		if err != nil {
			t.Fatalf("open /dev/kmsg for writing: %v", err)
		}
		for _, l := range lines[:n] {
			if _, err := fmt.Fprintf(f, "<4>%s\n", l); err != nil {
				f.Close()
				t.Fatalf("write /dev/kmsg: %v", err)
			}
		}
		f.Close()
		lines = lines[n:]
	}
}

// With BPF turned off (--hooks none, as on a node without BTF or with bpf(2)
// refused), watch says so in one line, keeps the procfs timeline and turns
// a kernel report into an incident. No real printable page allocation
// failure can be made safely here: the memcg workload's failures are charge
// failures, which warn_alloc never prints, and a real order-N failure needs
// the node's memory exhausted or fragmented. So the test writes a corpus
// report into /dev/kmsg as root; the kernel serves it back as a record of
// its own log, read through the same follower as a real one.
func TestWatchWithoutBPFFollowsKmsg(t *testing.T) {
	testutil.RequireRoot(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	rec := filepath.Join(dir, "rec.fst")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "watch", "--hooks", "none", "--json", "--duration", "6s",
		"--ready-file", ready, "--record", rec)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("watch never became ready; stderr:\n%s", stderr.String())
		}
	}
	comm := fmt.Sprintf("fskmsg%d", os.Getpid()%100000)
	writeKmsg(t, kmsgReport(comm))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "BPF cannot run (--hooks none)"); n != 1 {
		t.Errorf("want one line saying BPF is off, got %d in:\n%s", n, stderr.String())
	}
	var snapshots, incidents int
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var line struct {
			Type     string `json:"type"`
			Reason   string `json:"reason"`
			Incident struct {
				ClosedBy string   `json:"closed_by"`
				Chain    []string `json:"chain"`
				Task     struct{ Comm string }
				Verdict  struct{ Cause string }
			} `json:"incident"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		switch {
		case line.Type == "mem_snapshot" && line.Reason == "interval":
			snapshots++
		case line.Type == "incident" && line.Incident.Task.Comm == comm:
			incidents++
			inc := line.Incident
			if inc.ClosedBy != "kernel_log" || inc.Verdict.Cause != "opportunistic" ||
				!strings.Contains(strings.Join(inc.Chain, " "), "bcmgenet_rx_refill") {
				t.Errorf("incident closed by %s, verdict %s, chain %v: want kernel_log, opportunistic, the RX refill",
					inc.ClosedBy, inc.Verdict.Cause, inc.Chain)
			}
		}
	}
	if snapshots < 3 || incidents != 1 {
		t.Errorf("%d interval snapshots and %d incidents of %s, want a procfs timeline and one incident", snapshots, incidents, comm)
	}
	// The recording replays into the same incident.
	out, err := exec.Command(bin, "incidents", "--json", rec).Output()
	if err != nil || !bytes.Contains(out, []byte(`"comm":"`+comm+`"`)) {
		t.Errorf("incidents of the recording: %v, want the %s incident:\n%s", err, comm, out)
	}
}
