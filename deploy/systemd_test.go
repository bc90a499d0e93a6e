package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const unitPath = "systemd/fragscope.service"

// unitSettings returns the [Service] settings of the unit, each key's values
// in order.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q: not key=value", unitPath, line)
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

func TestSystemdUnitSettings(t *testing.T) {
	s := unitSettings(t)
	one := func(k string) string {
		if len(s[k]) != 1 {
			t.Errorf("%s: %d values, want 1", k, len(s[k]))
			return ""
		}
		return s[k][0]
	}
	// The pod's capabilities less SYS_RESOURCE, which LimitMEMLOCK replaces.
	var want []string
	for _, c := range wantCaps {
		if c != "SYS_RESOURCE" {
			want = append(want, "CAP_"+string(c))
		}
	}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		if got := strings.Fields(one(k)); !slices.Equal(got, want) {
			t.Errorf("%s=%v, want %v", k, got, want)
		}
	}
	for k, v := range map[string]string{
		"User": "root", "NoNewPrivileges": "yes", "LimitMEMLOCK": "infinity",
		"StateDirectory": "fragscope", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "ProtectControlGroups": "yes", "ProtectKernelModules": "yes",
		"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
		"Restart": "on-failure", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	} {
		if got := one(k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	// Each hides what the agent reads: /proc/kallsyms, CAP_SYSLOG, the
	// global /proc files.
	for _, k := range []string{"ProtectKernelTunables", "ProtectKernelLogs", "ProcSubset", "DynamicUser"} {
		if _, ok := s[k]; ok {
			t.Errorf("%s= set: see the comment in %s", k, unitPath)
		}
	}
	exec := one("ExecStart")
	if !strings.HasPrefix(exec, "/usr/local/bin/fragscope agent ") || !strings.Contains(exec, " --data-dir=/var/lib/fragscope") {
		t.Errorf("ExecStart=%s: want /usr/local/bin/fragscope agent with --data-dir=/var/lib/fragscope (StateDirectory)", exec)
	}
}

// TestSystemdAnalyze runs `systemd-analyze verify` on the unit (pointed at a
// stand-in binary, which verify requires to exist) and logs the exposure
// score of `systemd-analyze security --offline=yes`.
func TestSystemdAnalyze(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not found: apt-get install systemd")
		}
		t.Skip("systemd-analyze not found: install the Debian package systemd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fragscope")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "fragscope.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/local/bin/fragscope"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	// verify exits 0 on some warnings (an unknown key, say); any line about
	// this unit counts as a failure.
	if err != nil || bytes.Contains(out, []byte("fragscope.service")) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if len(out) > 0 {
		t.Logf("systemd-analyze verify (other units):\n%s", out)
	}
	out, err = exec.Command(sa, "security", "--offline=yes", unit).CombinedOutput()
	if err != nil {
		// --offline needs systemd 250+; the score is informative only.
		t.Logf("systemd-analyze security --offline=yes: %v\n%s", err, lastLine(out))
		return
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+ \S+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security --offline=yes: exposure %s", m[1])
	} else {
		t.Logf("systemd-analyze security: %s", lastLine(out))
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
