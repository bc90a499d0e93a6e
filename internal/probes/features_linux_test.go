package probes

import (
	"os"
	"path/filepath"
	"testing"
)

// The bracketed word of securityfs' lockdown file is the level in force.
func TestLockdownLevel(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"[none] integrity confidentiality\n": "none",
		"none integrity [confidentiality]\n": "confidentiality",
		"garbled\n":                          "",
	} {
		p := filepath.Join(dir, "lockdown")
		os.WriteFile(p, []byte(content), 0o600)
		if got := lockdownLevel(p); got != want {
			t.Errorf("lockdownLevel(%q) = %q, want %q", content, got, want)
		}
	}
	if got := lockdownLevel(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("no lockdown LSM: %q, want empty", got)
	}
}
