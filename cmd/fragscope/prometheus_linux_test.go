package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/workload"
)

// promQuery runs an instant query against Prometheus' HTTP API and returns
// the result vector's values.
func promQuery(t *testing.T, base, q string) []float64 {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, r.Error)
	}
	var out []float64
	for _, s := range r.Data.Result {
		var f float64
		fmt.Sscan(s.Value[1].(string), &f)
		out = append(out, f)
	}
	return out
}

// A real Prometheus scraping the agent every second on loopback sees every
// required family, and a positive allocation rate under a packet-ring load;
// promtool accepts a live scrape.
func TestPrometheusScrapesAgent(t *testing.T) {
	requireRoot(t)
	prom := requireTool(t, "prometheus", "prometheus")
	promtool := requireTool(t, "promtool", "prometheus")
	bin := buildBinary(t)
	dir := t.TempDir()
	a := startAgent(t, bin, filepath.Join(dir, "data"), "--interval", "1s")

	_, body := a.get("/metrics")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on a live scrape: %v\n%s", err, out)
	}

	promAddr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fragscope
    static_configs:
      - targets: [%q]
`, a.addr)), 0o600)
	p := exec.Command(prom, "--config.file", cfg, "--storage.tsdb.path", filepath.Join(dir, "tsdb"),
		"--web.listen-address", promAddr)
	var promLog strings.Builder
	p.Stdout, p.Stderr = &promLog, &promLog
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { p.Process.Kill(); p.Wait() }()
	base := "http://" + promAddr

	stop := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(stop) {
			t.Fatalf("Prometheus never ready:\n%s", promLog.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		if vals := promQuery(t, base, `up{job="fragscope"}`); len(vals) == 1 && vals[0] == 1 {
			break
		}
		if time.Now().After(stop) {
			t.Fatalf("Prometheus never scraped the agent:\n%s", promLog.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Load: rings of order-6 blocks for a few scrapes.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if fd, err := workload.PacketRing(256<<10, 4); err == nil {
			unix.Close(fd)
		}
	}
	enospcUnshare()
	time.Sleep(3 * time.Second)

	for _, fam := range []string{
		"fragscope_free_blocks", "fragscope_fragmentation_index", "fragscope_unusable_index",
		"fragscope_zone_free_bytes", "fragscope_zone_watermark_bytes", "fragscope_page_allocations_total",
		"fragscope_page_allocation_failures_total", "fragscope_extfrag_fallbacks_total",
		"fragscope_slab_cache_creations_total", "fragscope_netns_creations_total",
		"fragscope_namespace_syscall_failures_total", "fragscope_incidents_total",
		"fragscope_cgroup_unmovable_high_order_allocations_total", "fragscope_cgroup_fragmenting_fallbacks_total",
		"fragscope_cgroup_allocation_failures_total", "fragscope_events_dropped_total",
		"fragscope_hook_attached", "fragscope_build_info", "process_cpu_seconds_total", "go_goroutines",
	} {
		if vals := promQuery(t, base, "count("+fam+")"); len(vals) != 1 || vals[0] < 1 {
			t.Errorf("Prometheus has no samples of %s", fam)
		}
	}
	if vals := promQuery(t, base, `sum(rate(fragscope_page_allocations_total{order="6",migratetype="unmovable"}[10s]))`); len(vals) != 1 || vals[0] <= 0 {
		t.Errorf("rate of order-6 unmovable allocations under the ring load = %v, want > 0", vals)
	}
	if vals := promQuery(t, base, `sum(fragscope_incidents_total{verdict="namespace_limit"})`); len(vals) != 1 || vals[0] < 1 {
		t.Errorf("incidents_total{verdict=namespace_limit} = %v after an ENOSPC unshare", vals)
	}
	checkDashboardQueries(t, base)
	a.stop(t)
}
